"""The plan digest: what a reviewer approved, in 12 hex digits (contract 10).

sha256 over the plan's header (``plan_id``, ``created_at``, ``graph_base_url``) and its decisive row
fields (``row_key``, ``action``, ``submission_id``, ``outcome_id``, ``desired_points``, ``clear``,
``excuse``, ``before_points``), column by column in a canonical JSON form. ``plan`` shows it,
``planfile`` stores it, ``apply`` recomputes it from the rows and refuses (exit 4,
``plan-digest-mismatch``) when it differs from the stored one or from the one a reviewer approved
(``--digest``, the web app's approval). Pure: data in, text out.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

import pandas as pd

from gradesync.models import Plan

DIGEST_ROW_FIELDS: tuple[str, ...] = (
    "row_key",
    "action",
    "submission_id",
    "outcome_id",
    "desired_points",
    "clear",
    "excuse",
    "before_points",
)
DIGEST_HEADER_FIELDS: tuple[str, ...] = ("plan_id", "created_at", "graph_base_url")
SHOWN = 12  # hex digits shown to people (48 bits: no accidental match between two plans)


def _canonical(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if hasattr(value, "item"):  # numpy scalar
        value = value.item()
    if isinstance(value, float):
        return None if math.isnan(value) else repr(value)
    if isinstance(value, bool | int):
        return value
    return str(value)


def _column(rows: pd.DataFrame, name: str) -> list[Any]:
    if name not in rows.columns:
        return []
    return [_canonical(v) for v in rows[name].tolist()]


def plan_digest(plan: Plan) -> str:
    """The full sha256 hex digest of ``plan`` (see the module docstring)."""
    h = hashlib.sha256()
    header = {name: _canonical(getattr(plan, name, None)) for name in DIGEST_HEADER_FIELDS}
    h.update(json.dumps(header, sort_keys=True, separators=(",", ":")).encode())
    for name in DIGEST_ROW_FIELDS:
        h.update(b"\n" + name.encode() + b"=")
        h.update(json.dumps(_column(plan.rows, name), separators=(",", ":")).encode())
    return h.hexdigest()


def short_digest(digest: str) -> str:
    return digest[:SHOWN]


def digest_matches(given: str, actual: str) -> bool:
    """True when ``given`` (the 12 digits shown, or more, any case) is a prefix of ``actual``."""
    text = given.strip().lower()
    return len(text) >= SHOWN and actual.lower().startswith(text)
