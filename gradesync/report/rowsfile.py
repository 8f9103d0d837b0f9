"""``rows.json``: a run's rows as typed columns, for programs (the web app's Result page) rather than Excel.

``reconciliation.csv`` is for people: numbers formatted, booleans as yes/no, formulas neutralised, a
BOM for Excel. Reading it back would mean guessing every type again. A run directory therefore also
holds ``rows.json``, written by :func:`write_rows` and read by :func:`read_rows` — the only reader:

    {"format": "gradesync-rows", "version": 1, "rows": N,
     "columns": {"status": {"type": "text", "values": ["updated", "conflict"], "codes": [0, 0, 1]},
                 "after_points": {"type": "float", "values": [9.5, null]},
                 "clear": {"type": "bool", "values": [0, 1]}, ...}}

Text columns are stored once per distinct value (``values``) with one small integer per row
(``codes``), so a million rows naming a few thousand students stay compact; a missing number is
``null``. Only the columns in :data:`ROW_TYPES` are kept (what a page shows of each row).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pandas as pd

from gradesync.files import atomic_write
from gradesync.report.summary import text_value

__all__ = ["ROWS_FORMAT", "ROWS_NAME", "ROW_TYPES", "RowsFileError", "read_rows", "write_rows"]

ROWS_NAME = "rows.json"
ROWS_FORMAT = "gradesync-rows"
ROWS_VERSION = 1

#: column → type, in the order written
ROW_TYPES: dict[str, str] = {
    "row_key": "int",
    "source_file": "text",
    "source_sheet": "text",
    "source_row": "int",
    "source_column": "text",
    "class_key": "text",
    "class_id": "text",
    "class_name": "text",
    "assignment_key": "text",
    "assignment_id": "text",
    "assignment_name": "text",
    "student_key": "text",
    "user_id": "text",
    "student_name": "text",
    "submission_id": "text",
    "points_raw": "text",
    "before_points": "float",
    "desired_points": "float",
    "after_points": "float",
    "max_points": "float",
    "action": "text",
    "status": "text",
    "reason": "text",
    "message": "text",
    "note": "text",
    "request_id": "text",
    "clear": "bool",
    "decrease": "bool",
    "excuse": "bool",
    "returned": "bool",
}


class RowsFileError(ValueError):
    """``rows.json`` is missing, damaged or of an unknown format."""


def _text(series: pd.Series) -> dict[str, Any]:
    codes, uniques = pd.factorize(series.astype(object), use_na_sentinel=False)
    return {"type": "text", "values": [text_value(u) for u in uniques], "codes": codes.tolist()}


def _column(series: pd.Series, kind: str) -> dict[str, Any]:
    if kind == "text":
        return _text(series)
    if kind == "float":
        values = pd.to_numeric(series, errors="coerce").astype("float64").to_numpy()
        return {"type": "float", "values": values.tolist()}  # NaN is written as null
    if kind == "bool":
        return {
            "type": "bool",
            "values": series.fillna(False).astype(bool).to_numpy().astype(np.int8).tolist(),
        }
    numbers = pd.to_numeric(series, errors="coerce").fillna(0).astype("int64")
    return {"type": "int", "values": numbers.to_numpy().tolist()}


def write_rows(rows: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``rows`` (plan or reconciliation rows) as ``rows.json``, atomically; returns its path."""
    target = Path(path)
    columns = {name: _column(rows[name], kind) for name, kind in ROW_TYPES.items() if name in rows.columns}
    data = msgspec.json.encode(
        {"format": ROWS_FORMAT, "version": ROWS_VERSION, "rows": len(rows), "columns": columns}
    )
    return atomic_write(target, data)


def _values(column: dict[str, Any], n: int, name: str) -> np.ndarray:
    kind, values = column.get("type"), column.get("values")
    if not isinstance(values, list):
        raise RowsFileError(f"column {name!r} has no values")
    if kind == "text":
        codes = np.asarray(column.get("codes", []), dtype=np.int64)
        if len(codes) != n or (n and (codes.min() < 0 or codes.max() >= len(values))):
            raise RowsFileError(f"column {name!r} has codes that do not fit its values")
        return np.asarray([str(v) for v in values] or [""], dtype=object)[codes]
    if len(values) != n:
        raise RowsFileError(f"column {name!r} has {len(values)} values for {n} rows")
    if kind == "float":
        return np.asarray([np.nan if v is None else v for v in values], dtype="float64")
    if kind == "bool":
        return np.asarray(values, dtype=bool)
    if kind == "int":
        return np.asarray(values, dtype="int64")
    raise RowsFileError(f"column {name!r} has an unknown type {kind!r}")


def read_rows(path: str | os.PathLike[str], columns: Iterable[str] | None = None) -> pd.DataFrame:
    """The rows :func:`write_rows` wrote, with their types (text as ``object``, missing numbers NaN).
    ``columns`` reads only those (absent ones are skipped). Raises :class:`RowsFileError`."""
    try:
        data = msgspec.json.decode(Path(path).read_bytes())
    except (OSError, msgspec.DecodeError) as e:
        raise RowsFileError(f"{Path(path).name} cannot be read: {e}") from None
    if not isinstance(data, dict) or data.get("format") != ROWS_FORMAT or data.get("version") != ROWS_VERSION:
        raise RowsFileError(f"{Path(path).name} is not a rows file of this version")
    n, found = data.get("rows"), data.get("columns")
    if not isinstance(n, int) or not isinstance(found, dict):
        raise RowsFileError(f"{Path(path).name} has no row count or columns")
    wanted = list(found) if columns is None else [c for c in columns if c in found]
    return pd.DataFrame({name: _values(found[name], n, name) for name in wanted}, index=pd.RangeIndex(n))
