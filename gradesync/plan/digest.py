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

import numpy as np
import pandas as pd

from gradesync.models import PLAN_COLUMNS, Plan

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


def _column_bytes(rows: pd.DataFrame, name: str) -> bytes:
    """One column in a canonical form, vectorised. Numbers are hashed as their IEEE-754 float64 bytes
    (every NaN alike, -0.0 as 0.0: a plan file's JSON round-trips a float exactly), booleans as bytes,
    text as compact JSON with missing values (NaN, None, NA) as null."""
    if name not in rows.columns:
        return b"absent"
    series = rows[name]
    declared = PLAN_COLUMNS.get(name, "object")  # the contract's dtype, not what a frame happens to hold
    if declared == "bool":
        return b"b" + bytes(series.fillna(False).astype(bool).to_numpy(dtype=np.uint8).tobytes())
    if declared in ("float64", "int64"):
        values = pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64") + 0.0
        return b"f" + np.where(np.isnan(values), np.nan, values).tobytes()
    text = series.astype(object).where(series.notna(), None).tolist()
    return b"t" + json.dumps(text, separators=(",", ":"), default=str).encode()


def plan_digest(plan: Plan) -> str:
    """The full sha256 hex digest of ``plan`` (see the module docstring)."""
    h = hashlib.sha256()
    header = {name: str(getattr(plan, name, "") or "") for name in DIGEST_HEADER_FIELDS}
    h.update(json.dumps(header, sort_keys=True, separators=(",", ":")).encode())
    for name in DIGEST_ROW_FIELDS:
        h.update(b"\n" + name.encode() + b"=")
        h.update(_column_bytes(plan.rows, name))
    return h.hexdigest()


def short_digest(digest: str) -> str:
    return digest[:SHOWN]


def digest_matches(given: str, actual: str) -> bool:
    """True when ``given`` (the 12 digits shown, or more, any case) is a prefix of ``actual``."""
    text = given.strip().lower()
    return len(text) >= SHOWN and actual.lower().startswith(text)
