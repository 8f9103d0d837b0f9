"""A plan as its file holds it: the header's values, and the rows as one array per column.

Each column of ``PLAN_COLUMNS`` becomes a :class:`Column` in one of three forms:

* **values**: every row's own value (``row_key``, ``source_row``, and text columns whose values are
  mostly distinct, such as submission and outcome ids);
* **dictionary and codes**: the column's distinct values in the order the rows first show them, and
  one number per row saying which of them the row holds (class and assignment ids, names, actions,
  points…);
* **constant**: a dictionary of one value and no codes, when every row holds that value (an empty
  ``note``).

A missing value is ``None`` in a text column (``null`` in the file) and NaN in a number column (also
``null``); ``""`` is a value like any other, so an empty text and a missing one stay apart. Numbers
are told apart by their bits, so ``-0.0`` stays ``-0.0``. The form depends only on the column's
values, so the same rows always encode the same way: the plan digest (``digest.py``) hashes these
columns, the plan file (``planfile.py``) writes them, and a plan read back from its file encodes to
the same columns again.

Pure: frames in, arrays out; each column is encoded at once (no Python code per row).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd

from gradesync.models import PLAN_COLUMNS, ROSTER_GAP_KEYS, InputFile, Plan

__all__ = [
    "DISTINCT_SHARE",
    "INPUT_KEYS",
    "SAMPLE_ROWS",
    "Column",
    "PlanFormatError",
    "column_array",
    "column_codes",
    "decode_column",
    "encode_column",
    "encode_columns",
    "frame_from_columns",
    "header_values",
    "json_value",
]

SAMPLE_ROWS = 1_000  # a text column mostly distinct in its first rows is kept value by value
DISTINCT_SHARE = 2  # more than rows / DISTINCT_SHARE distinct values: the values form is smaller
INPUT_KEYS: tuple[str, ...] = tuple(f.name for f in fields(InputFile))


class PlanFormatError(ValueError):
    """A plan document that does not hold what its format allows (the message says where)."""


# ---------------------------------------------------------------------------------------------
# the header
# ---------------------------------------------------------------------------------------------
def json_value(v: Any) -> Any:
    """A value as JSON holds it: NaN → None, numpy scalars → Python ones."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


def header_values(plan: Plan) -> dict[str, Any]:
    """Every value of the plan besides its rows, its digest and its summary, as JSON-ready data in
    the file's order (a plan read back from its file gives the same values)."""
    return {
        "plan_id": plan.plan_id,
        "created_at": plan.created_at,
        "graph_base_url": plan.graph_base_url,
        "config_hash": plan.config_hash,
        "strict": bool(plan.strict),
        "inputs": [{k: json_value(getattr(i, k)) for k in INPUT_KEYS} for i in plan.inputs],
        "warnings": [str(w) for w in plan.warnings],
        "read_at": {str(k): str(v) for k, v in sorted(plan.read_at.items())},
        "undo_of": str(plan.undo_of or ""),
        "roster_gaps": [{k: json_value(g.get(k)) for k in ROSTER_GAP_KEYS} for g in plan.roster_gaps],
    }


# ---------------------------------------------------------------------------------------------
# the columns
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Column:
    """One plan column: ``values`` (one per row), or a ``dictionary`` and ``codes`` (one per row,
    into the dictionary; None when the dictionary holds the one value every row has)."""

    dtype: str  # its PLAN_COLUMNS type: "int64", "float64", "bool" or "object"
    rows: int
    values: np.ndarray | None = None
    dictionary: np.ndarray | None = None
    codes: np.ndarray | None = None  # the smallest unsigned type that holds every code

    @property
    def form(self) -> str:
        if self.values is not None:
            return "values"
        return "dictionary" if self.codes is not None else "constant"

    def dictionary_list(self) -> list[Any]:
        """The dictionary as JSON-ready values (NaN → None)."""
        assert self.dictionary is not None
        return _plain_list(self.dictionary, self.dtype)

    def values_list(self) -> list[Any]:
        """The values as JSON-ready values (NaN → None)."""
        assert self.values is not None
        return _plain_list(self.values, self.dtype)


def _plain_list(values: np.ndarray, dtype: str) -> list[Any]:
    items: list[Any] = values.tolist()
    if dtype == "float64":
        nan = np.isnan(values)
        if np.isinf(values).any():
            raise ValueError("a plan column holds an infinite number, which a plan file cannot hold")
        if nan.any():
            items = [None if v != v else v for v in items]  # noqa: PLR0124 (NaN is the one value != itself)
    return items


def _code_type(size: int) -> type[np.unsignedinteger[Any]]:
    if size <= 1 << 8:
        return np.uint8
    if size <= 1 << 16:
        return np.uint16
    return np.uint32


def _coded(codes: np.ndarray, dictionary: np.ndarray, dtype: str, n: int) -> Column:
    if len(dictionary) == 1:
        return Column(dtype, n, dictionary=dictionary)
    return Column(dtype, n, dictionary=dictionary, codes=codes.astype(_code_type(len(dictionary))))


def _none_for_missing(values: np.ndarray) -> np.ndarray:
    missing = pd.isna(values)
    if not missing.any():
        return values
    out = values.copy()
    out[missing] = None
    return out


def _text_column(values: np.ndarray) -> Column:
    n = len(values)
    sample = values[:SAMPLE_ROWS]
    seen = len(pd.unique(sample))
    if len(sample) == SAMPLE_ROWS and seen > SAMPLE_ROWS // DISTINCT_SHARE:
        return Column("object", n, values=_none_for_missing(values))  # ids: no hashing of every row
    if seen == 1 and isinstance(values[0], str) and (values == values[0]).all():  # one text throughout
        return Column("object", n, dictionary=values[:1].copy())
    codes, uniq = pd.factorize(values, use_na_sentinel=True)  # None and NaN → -1
    if len(uniq) > max(1, n // DISTINCT_SHARE):
        return Column("object", n, values=_none_for_missing(values))
    dictionary = np.empty(len(uniq), dtype=object)
    dictionary[:] = list(uniq)
    if (codes < 0).any():  # missing values: one more dictionary entry, None, after the others
        first_missing = int(np.argmax(codes < 0))
        at = int(np.max(codes[:first_missing], initial=-1)) + 1  # in the order the rows show it
        dictionary = np.concatenate([dictionary[:at], np.array([None], dtype=object), dictionary[at:]])
        codes = np.where(codes < 0, at, codes + (codes >= at))
    return _coded(codes, dictionary, "object", n)


def encode_column(series: pd.Series, dtype: str) -> Column:
    """One column in its plan-file form (see the module docstring)."""
    n = len(series)
    if dtype == "object":
        return _text_column(series.to_numpy(dtype=object))
    if dtype == "float64":
        floats = series.to_numpy(dtype="float64")
        floats = np.where(np.isnan(floats), np.nan, floats)  # every NaN alike
        codes, uniq = pd.factorize(floats.view(np.int64))  # by bits: -0.0 is not 0.0
        if len(uniq) > max(1, n // DISTINCT_SHARE):
            return Column(dtype, n, values=floats)
        return _coded(codes, np.asarray(uniq, dtype=np.int64).view(np.float64), dtype, n)
    array = series.to_numpy(dtype=dtype)
    codes, uniq = pd.factorize(array)
    if len(uniq) > max(1, n // DISTINCT_SHARE):
        return Column(dtype, n, values=array)
    return _coded(codes, np.asarray(uniq, dtype=dtype), dtype, n)


def encode_columns(rows: pd.DataFrame) -> dict[str, Column]:
    """Every plan column of ``rows``, in ``PLAN_COLUMNS`` order."""
    return {name: encode_column(rows[name], dtype) for name, dtype in PLAN_COLUMNS.items()}


# ---------------------------------------------------------------------------------------------
# reading: the lists a JSON decoder gives → a column's arrays
# ---------------------------------------------------------------------------------------------
def _array(items: Sequence[Any], dtype: str, what: str) -> np.ndarray:
    """``items`` as an array of ``dtype`` (the reader's schema already checked each JSON type)."""
    if dtype == "object":
        out = np.empty(len(items), dtype=object)
        out[:] = items
        return out
    try:
        return np.array(items, dtype=dtype)  # a float column's None → NaN
    except (TypeError, ValueError, OverflowError) as e:
        raise PlanFormatError(f"{what} holds a value that does not fit ({e})") from None


def decode_column(
    name: str,
    rows: int,
    *,
    values: Sequence[Any] | None = None,
    dictionary: Sequence[Any] | None = None,
    codes: Sequence[int] | None = None,
) -> Column:
    """The column ``name`` as a plan file states it; PlanFormatError when its parts do not fit."""
    dtype = PLAN_COLUMNS[name]
    what = f'column "{name}"'
    if values is not None:
        if dictionary is not None or codes is not None:
            raise PlanFormatError(f"{what} has both values and a dictionary")
        if len(values) != rows:
            raise PlanFormatError(f"{what} has {len(values)} values for {rows} rows")
        return Column(dtype, rows, values=_array(values, dtype, what))
    if dictionary is None:
        raise PlanFormatError(f"{what} has neither values nor a dictionary")
    table = _array(dictionary, dtype, f"{what}'s dictionary")
    if codes is None:
        if len(table) != 1:
            raise PlanFormatError(f"{what} has a dictionary of {len(table)} values and no codes")
        return Column(dtype, rows, dictionary=table)
    if len(codes) != rows:
        raise PlanFormatError(f"{what} has {len(codes)} codes for {rows} rows")
    numbers = _array(codes, "int64", f"{what}'s codes")
    if len(numbers) and (int(numbers.min()) < 0 or int(numbers.max()) >= len(table)):
        raise PlanFormatError(f"{what} has a code outside its dictionary of {len(table)} values")
    return Column(dtype, rows, dictionary=table, codes=numbers.astype(_code_type(len(table))))


def column_array(column: Column) -> np.ndarray:
    """Every row's value."""
    if column.values is not None:
        return column.values
    assert column.dictionary is not None
    if column.codes is None:
        return np.repeat(column.dictionary, column.rows)
    return np.asarray(column.dictionary[column.codes])


def column_codes(column: Column) -> tuple[np.ndarray, np.ndarray]:
    """(a code per row, the distinct values they point into), whatever the column's form."""
    if column.values is not None:
        codes, uniq = pd.factorize(column.values, use_na_sentinel=False)
        return codes, np.asarray(uniq, dtype=column.values.dtype)
    assert column.dictionary is not None
    if column.codes is None:
        return np.zeros(column.rows, dtype=np.intp), column.dictionary
    return column.codes, column.dictionary


def frame_from_columns(columns: Mapping[str, Column]) -> pd.DataFrame:
    """The plan rows (``PLAN_COLUMNS``, in order) from their columns."""
    data = {
        name: pd.Series(column_array(columns[name]), dtype=dtype, copy=False)
        for name, dtype in PLAN_COLUMNS.items()
    }
    return pd.DataFrame(data, copy=False)
