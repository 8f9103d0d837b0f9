"""The plan digest: what a reviewer approved, in 12 hex digits, that only the holder of a key can make.

The digest is an HMAC-SHA256, keyed by a secret of the state directory (``state/plankey.py``), over
everything the plan says: its header (plan id, creation time, Graph URL, settings hash, strict, the
input files with their sha256, read-stage warnings, the read times, the roster gaps, the number of
rows) and every column of every row, in the canonical form of ``encoding.py``. ``plan`` shows the
first 12 digits and stores all 64 in the plan file with the key's id; ``apply`` recomputes it from
the plan it is about to apply, with its own key, and refuses a plan whose stored digest differs (an
edited file, or a plan signed with another key) or that is not the one a reviewer approved
(``--digest``, the web app's approval).

Why keyed: a plain hash can be recomputed by anyone who edits the file, so it proves nothing about
who wrote it; without the key nobody can make a digest that ``apply`` accepts. The summary in the
plan file is not hashed: it is computed from the rows, and the reader refuses a file whose summary
disagrees with them.

The bytes hashed, each part preceded by its length (8 bytes, little-endian) so no two plans give the
same bytes::

    "gradesync plan digest v3"
    the header as compact JSON (``encoding.header_values`` plus ``"rows": n``)
    per column, in PLAN_COLUMNS order: its name, its form ("values", "dictionary" or "constant"),
        then its values, or its dictionary and its codes: texts as one compact JSON array, numbers
        and booleans as their little-endian bytes (NaN as one bit pattern), codes as little-endian
        unsigned integers of the smallest width that holds them

Plan files of schema 1 and 2 carry :func:`legacy_digest` instead, a
plain sha256 of their decisive fields; ``apply`` accepts one only with the digest a reviewer
approved. Pure: data in, text out.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator, Mapping

import msgspec
import numpy as np
import pandas as pd

from gradesync.models import PLAN_COLUMNS, Plan
from gradesync.plan.encoding import Column, encode_columns, header_values

__all__ = [
    "DIGEST_HEADER_FIELDS",
    "DIGEST_ROW_FIELDS",
    "KEY_ID_DIGITS",
    "SHOWN",
    "digest_matches",
    "key_id",
    "legacy_digest",
    "plan_digest",
    "same_digest",
    "short_digest",
]

SHOWN = 12  # hex digits shown to people (48 bits: no accidental match between two plans)
KEY_ID_DIGITS = 8
_DOMAIN = b"gradesync plan digest v3"
_KEY_ID_DOMAIN = b"gradesync plan key id"
_ENCODE = msgspec.json.Encoder()


def _part(data: bytes) -> bytes:
    return len(data).to_bytes(8, "little") + data


def _column_parts(name: str, column: Column) -> Iterator[bytes]:
    yield _part(name.encode())
    yield _part(column.form.encode())
    for array in (column.values, column.dictionary):
        if array is None:
            continue
        if column.dtype == "object":
            yield _part(_ENCODE.encode(array.tolist()))
        else:
            yield _part(np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes())
    if column.codes is not None:
        codes = column.codes
        yield _part(np.ascontiguousarray(codes, dtype=codes.dtype.newbyteorder("<")).tobytes())


def plan_digest(plan: Plan, key: bytes, *, columns: Mapping[str, Column] | None = None) -> str:
    """The plan's digest (64 hex digits) under ``key``. ``columns``: ``encoding.encode_columns`` of
    the plan's rows, when the caller has them (the plan file is written from the same columns)."""
    if not key:
        raise ValueError("a plan digest needs a key")
    columns = columns if columns is not None else encode_columns(plan.rows)
    mac = hmac.new(key, _part(_DOMAIN), hashlib.sha256)
    header = {**header_values(plan), "rows": len(plan.rows)}
    text = json.dumps(header, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    mac.update(_part(text.encode("utf-8")))
    for name in PLAN_COLUMNS:
        for part in _column_parts(name, columns[name]):
            mac.update(part)
    return mac.hexdigest()


def key_id(key: bytes) -> str:
    """A short name for ``key`` that says nothing about it: which key signed a plan file."""
    return hmac.new(key, _KEY_ID_DOMAIN, hashlib.sha256).hexdigest()[:KEY_ID_DIGITS]


def short_digest(digest: str) -> str:
    return digest[:SHOWN]


def digest_matches(given: str, actual: str) -> bool:
    """True when ``given`` (the 12 digits shown, or more, any case) is a prefix of ``actual``
    (compared in constant time: how long a comparison takes says nothing about the digest)."""
    text = given.strip().lower()
    return len(text) >= SHOWN and hmac.compare_digest(actual.lower()[: len(text)], text)


def same_digest(stored: str, actual: str) -> bool:
    """True when a plan file's stored digest is the one its content gives (in constant time)."""
    return hmac.compare_digest(stored.lower(), actual.lower())


# ---------------------------------------------------------------------------------------------
# plan files of schema 1 and 2: a plain sha256 of the decisive fields
# ---------------------------------------------------------------------------------------------
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


def _legacy_column_bytes(rows: pd.DataFrame, name: str) -> bytes:
    """One column in the older digest's canonical form: numbers as IEEE-754 float64 bytes (every NaN
    alike, -0.0 as 0.0), booleans as bytes, text as compact JSON with missing values as null."""
    if name not in rows.columns:
        return b"absent"
    series = rows[name]
    declared = PLAN_COLUMNS.get(name, "object")
    if declared == "bool":
        return b"b" + bytes(series.fillna(False).astype(bool).to_numpy(dtype=np.uint8).tobytes())
    if declared in ("float64", "int64"):
        values = pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64") + 0.0
        return b"f" + np.where(np.isnan(values), np.nan, values).tobytes()
    text = series.astype(object).where(series.notna(), None).tolist()
    return b"t" + json.dumps(text, separators=(",", ":"), default=str).encode()


def legacy_digest(plan: Plan) -> str:
    """The digest plan files of schema 1 and 2 store: a plain sha256 (anyone can recompute it) of the
    header's plan id, creation time and Graph URL and the rows' decisive fields."""
    h = hashlib.sha256()
    header = {name: str(getattr(plan, name, "") or "") for name in DIGEST_HEADER_FIELDS}
    h.update(json.dumps(header, sort_keys=True, separators=(",", ":")).encode())
    for name in DIGEST_ROW_FIELDS:
        h.update(b"\n" + name.encode() + b"=")
        h.update(_legacy_column_bytes(plan.rows, name))
    return h.hexdigest()
