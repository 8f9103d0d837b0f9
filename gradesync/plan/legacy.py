"""Plan files of schema 1 and 2, as a JSON decoder gives them → a Plan (pure: data in, data out).

Those files hold one JSON object per row (``"rows"``) and the writes again (``"operations"``), which
must agree with the rows (a file whose operations were edited is refused). Version 1 lacks the row
columns ``excuse``, ``last_written_points`` and ``override_policy`` (they take ``V1_DEFAULTS``);
files written before plans had an id, a digest or read times lack those keys. Their digest is the
plain sha256 of ``digest.legacy_digest``: ``apply`` accepts such a plan only with the digest a
reviewer approved.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pandas as pd

from gradesync.models import PLAN_COLUMNS, ROSTER_GAP_KEYS, InputFile, Operation, Plan
from gradesync.plan.encoding import INPUT_KEYS, PlanFormatError, json_value

__all__ = ["LEGACY_TOP_KEYS", "OPERATION_KEYS", "V1_DEFAULTS", "operation_record", "plan_from_legacy"]

# row columns a version-1 plan file does not have, and the value they take when one is read
V1_DEFAULTS: dict[str, Any] = {"excuse": False, "last_written_points": None, "override_policy": ""}
LEGACY_TOP_KEYS: tuple[str, ...] = (
    "schema_version",
    "plan_id",
    "created_at",
    "graph_base_url",
    "config_hash",
    "digest",
    "strict",
    "inputs",
    "warnings",
    "read_at",
    "summary",
    "operations",
    "rows",
    "roster_gaps",
)
# files written before plans had an id, a digest or read times lack them
OPTIONAL_TOP_KEYS = frozenset({"plan_id", "digest", "read_at", "undo_of"})
OPERATION_KEYS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Operation))
ROW_KEYS: tuple[str, ...] = tuple(PLAN_COLUMNS)


def _require(cond: bool, what: str) -> None:
    if not cond:
        raise PlanFormatError(what)


def operation_record(op: Operation) -> dict[str, Any]:
    """An operation as the older files list it."""
    return {k: json_value(getattr(op, k).value if k == "action" else getattr(op, k)) for k in OPERATION_KEYS}


def _column(col: str, dtype: str, values: list[Any]) -> np.ndarray:
    if dtype == "float64":
        return np.array([math.nan if v is None else float(v) for v in values], dtype="float64")
    if dtype == "int64":
        _require(all(type(v) is int for v in values), f'column "{col}" holds a value that is not an integer')
        return np.array(values, dtype="int64")
    if dtype == "bool":
        _require(all(type(v) is bool for v in values), f'column "{col}" holds a value that is not true/false')
        return np.array(values, dtype=bool)
    _require(
        all(v is None or isinstance(v, str) for v in values), f'column "{col}" holds a value that is not text'
    )
    arr = np.empty(len(values), dtype=object)
    arr[:] = values
    return arr


def _frame_from_records(records: Any, version: int) -> pd.DataFrame:
    _require(isinstance(records, list), '"rows" is not a list')
    if version == 1:
        records = [{**V1_DEFAULTS, **r} if isinstance(r, dict) else r for r in records]
    for i, r in enumerate(records):
        _require(isinstance(r, dict), f"rows[{i}] is not an object")
        _require(tuple(r) == ROW_KEYS or set(r) == set(ROW_KEYS), f"rows[{i}] does not have the plan columns")
    data: dict[str, pd.Series] = {}
    for col, dtype in PLAN_COLUMNS.items():
        try:
            arr = _column(col, dtype, [r[col] for r in records])
        except (TypeError, ValueError, OverflowError) as e:
            if isinstance(e, PlanFormatError):
                raise
            raise PlanFormatError(f'column "{col}": {e}') from None
        data[col] = pd.Series(arr, dtype=dtype, copy=False)
    rows = pd.DataFrame(data, copy=False)
    _require(
        rows["row_key"].is_monotonic_increasing and rows["row_key"].is_unique,
        "rows are not ordered by row_key",
    )
    return rows


def _check_header(d: dict[str, Any]) -> None:
    missing = [k for k in LEGACY_TOP_KEYS if k not in d and k not in OPTIONAL_TOP_KEYS]
    _require(not missing, f"missing keys: {', '.join(missing)}")
    for key in ("created_at", "graph_base_url", "config_hash"):
        _require(isinstance(d[key], str), f'"{key}" is not text')
    _require(isinstance(d["strict"], bool), '"strict" is not true/false')
    _require(
        isinstance(d["inputs"], list) and all(isinstance(i, dict) for i in d["inputs"]),
        '"inputs" is invalid',
    )
    _require(isinstance(d["warnings"], list), '"warnings" is not a list')
    _require(isinstance(d["roster_gaps"], list), '"roster_gaps" is not a list')
    read_at = d.get("read_at", {})
    _require(
        isinstance(read_at, dict) and all(isinstance(v, str) for v in read_at.values()),
        '"read_at" is not an object of times',
    )
    for n, i in enumerate(d["inputs"]):
        _require(
            set(i) == set(INPUT_KEYS)
            and isinstance(i["path"], str)
            and isinstance(i["sha256"], str)
            and type(i["rows"]) is int
            and all(i[k] is None or isinstance(i[k], str) for k in ("encoding", "sheet")),
            f'"inputs"[{n}] is not a valid input file entry',
        )


def plan_from_legacy(d: dict[str, Any], version: int) -> Plan:
    """A schema-1 or schema-2 document as a Plan; PlanFormatError when it is damaged or edited."""
    _check_header(d)
    plan = Plan(
        rows=_frame_from_records(d["rows"], version),
        created_at=d["created_at"],
        graph_base_url=d["graph_base_url"],
        config_hash=d["config_hash"],
        inputs=[InputFile(**{k: i[k] for k in INPUT_KEYS}) for i in d["inputs"]],
        roster_gaps=[{k: g.get(k) for k in ROSTER_GAP_KEYS} for g in d["roster_gaps"]],
        schema_version=version,
        strict=d["strict"],
        warnings=[str(w) for w in d["warnings"]],
        plan_id=str(d.get("plan_id") or ""),
        digest=str(d.get("digest") or ""),
        read_at=dict(d.get("read_at", {})),
        undo_of=str(d.get("undo_of") or ""),
    )
    expected = [operation_record(op) for op in plan.operations()]
    _require(d["operations"] == expected, '"operations" do not match the planned rows (was the file edited?)')
    return plan
