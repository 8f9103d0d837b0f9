"""The plan file: a versioned JSON document a person can open, that holds no secret.

Layout of schema 3 (keys always in this order)::

    {
      "schema_version": 3,
      "plan_id": "5f0c…",                  # random per plan made
      "created_at": "2024-06-01T12:00:00Z",
      "graph_base_url": "https://graph.microsoft.com/v1.0",
      "config_hash": "…",
      "digest": "…",                       # plan/digest.py, keyed: apply refuses a plan not giving it
      "key_id": "1f2e3d4c",                # which key made the digest (not the key)
      "strict": false,
      "inputs": [
        {"path":"grades.csv","sha256":"…","rows":120,"encoding":"utf-8","sheet":null}
      ],
      "warnings": [],
      "read_at": {"<class_id>/<assignment_id>": "2024-06-01T11:59:58.123Z"},
      "undo_of": "",                       # the run this plan undoes (gradesync undo), else ""
      "summary": {…},                      # counts, computed from the rows (checked on reading)
      "roster_gaps": [
        {"class_id":"…","class_name":"…",…}
      ],
      "row_count": 3,
      "columns": {
        "row_key": {"values":[0,1,2]},
        "source_file": {"dictionary":["grades.csv"]},
        "action": {"dictionary":["update","reject"],"codes":[0,0,1]},
        …                                  # every column of PLAN_COLUMNS, one per line
      }
    }

Rows are stored column by column (``encoding.py``: every row's values, or a dictionary of the
distinct values and one code per row, or the one value every row holds), so a row's value of a
column is ``values[i]`` or ``dictionary[codes[i]]``. NaN is written as ``null``; on reading, ``null``
is NaN in a number column and ``None`` in a text column, so a plan round-trips exactly. The writes
are not listed apart: ``Plan.operations`` derives them from the rows. The writer only knows the
whitelisted keys above: a token cannot end up in a plan file because nothing here ever receives one.

``read_at`` says when resolve began reading each assignment's submissions (the executor re-reads
an assignment whose read is older than its read-to-write window, or missing).

Older files still load: schema 2 and 1 (``legacy.py``: one object per row plus an ``operations``
list). A file is always written in the current version.

The file is written from arrays: each column is JSON-encoded at once (msgspec), never row by row.
This is the only module of the plan core that touches files.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from gradesync.errors import InputError, UsageError
from gradesync.files import atomic_write
from gradesync.models import PLAN_COLUMNS, ROSTER_GAP_KEYS, InputFile, Plan
from gradesync.plan.build import summarize
from gradesync.plan.digest import KEY_ID_DIGITS, plan_digest
from gradesync.plan.digest import key_id as key_id_of
from gradesync.plan.encoding import (
    INPUT_KEYS,
    Column,
    PlanFormatError,
    decode_column,
    encode_columns,
    frame_from_columns,
    header_values,
)
from gradesync.plan.legacy import plan_from_legacy

__all__ = [
    "GAP_KEYS",
    "INPUT_KEYS",
    "SCHEMA_VERSION",
    "TOP_KEYS",
    "dumps_plan",
    "loads_plan",
    "plan_from_dict",
    "plan_to_dict",
    "read_plan",
    "write_plan",
]

SCHEMA_VERSION = 3
TOP_KEYS: tuple[str, ...] = (
    "schema_version",
    "plan_id",
    "created_at",
    "graph_base_url",
    "config_hash",
    "digest",
    "key_id",
    "strict",
    "inputs",
    "warnings",
    "read_at",
    "undo_of",
    "summary",
    "roster_gaps",
    "row_count",
    "columns",
)
GAP_KEYS: tuple[str, ...] = ROSTER_GAP_KEYS
_ENCODE = msgspec.json.Encoder()
_DIGEST = re.compile(r"[0-9a-f]{64}")
_KEY_ID = re.compile(f"[0-9a-f]{{{KEY_ID_DIGITS}}}")
_REMAKE = "make the plan again with `gradesync plan`"


# ---------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------
def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _lines(items: list[Any], indent: str = "  ") -> str:
    """A list with one compact JSON value per line."""
    if not items:
        return "[]"
    return "[\n" + ",\n".join(indent + "  " + _dump(item) for item in items) + "\n" + indent + "]"


def _block(d: dict[str, Any], indent: str = "  ") -> str:
    """An object with one key per line; its lists one item per line, everything else compact."""
    if not d:
        return "{}"
    inner = indent + "  "
    parts = [
        f"{inner}{json.dumps(k)}: {_lines(v, inner) if isinstance(v, list) else _dump(v)}"
        for k, v in d.items()
    ]
    return "{\n" + ",\n".join(parts) + "\n" + indent + "}"


def _column_json(column: Column) -> bytes:
    """``{"values":[…]}``, ``{"dictionary":[…],"codes":[…]}`` or ``{"dictionary":[v]}``."""
    if column.values is not None:
        return b'{"values":' + _ENCODE.encode(column.values_list()) + b"}"
    text = b'{"dictionary":' + _ENCODE.encode(column.dictionary_list())
    if column.codes is not None:
        text += b',"codes":' + _ENCODE.encode(column.codes.tolist())
    return text + b"}"


def _header(plan: Plan, digest: str, key_id: str, columns: Mapping[str, Column]) -> dict[str, Any]:
    values = header_values(plan)
    return {
        "schema_version": SCHEMA_VERSION,  # always written in the current format
        "plan_id": values["plan_id"],
        "created_at": values["created_at"],
        "graph_base_url": values["graph_base_url"],
        "config_hash": values["config_hash"],
        "digest": digest,
        "key_id": key_id,
        "strict": values["strict"],
        "inputs": values["inputs"],
        "warnings": values["warnings"],
        "read_at": values["read_at"],
        "undo_of": values["undo_of"],
        "summary": summarize(plan, columns),
        "roster_gaps": values["roster_gaps"],
        "row_count": len(plan.rows),
    }


def _signature(
    plan: Plan, key: bytes | None, digest: str | None, key_id: str | None, columns: Mapping[str, Column]
) -> tuple[str, str]:
    if digest is None:
        if key is None:
            raise TypeError("writing a plan file needs the plan key (or the digest made with it)")
        digest = plan_digest(plan, key, columns=columns)
    if key_id is None:
        key_id = key_id_of(key) if key is not None else plan.key_id
    return digest, key_id


def iter_plan_bytes(
    plan: Plan,
    *,
    key: bytes | None = None,
    digest: str | None = None,
    key_id: str | None = None,
    columns: Mapping[str, Column] | None = None,
) -> Iterator[bytes]:
    """The plan file's bytes in pieces: the header one key per line, then one line per column.
    ``key`` signs it; a caller that already has the plan's ``digest`` (and ``columns``) passes them."""
    columns = columns if columns is not None else encode_columns(plan.rows)
    digest, key_id = _signature(plan, key, digest, key_id, columns)
    yield b"{\n"
    for key_name, value in _header(plan, digest, key_id, columns).items():
        if isinstance(value, list):
            text = _lines(value)
        elif isinstance(value, dict):
            text = _block(value)
        else:
            text = _dump(value)
        yield f"  {json.dumps(key_name)}: {text},\n".encode()
    yield b'  "columns": {\n'
    for n, name in enumerate(PLAN_COLUMNS):
        yield f"    {json.dumps(name)}: ".encode() + _column_json(columns[name])
        yield b",\n" if n < len(PLAN_COLUMNS) - 1 else b"\n"
    yield b"  }\n}\n"


def dumps_plan(plan: Plan, **signing: Any) -> str:
    """The plan file's text (``iter_plan_bytes`` joined); ``signing``: as for ``iter_plan_bytes``."""
    return b"".join(iter_plan_bytes(plan, **signing)).decode("utf-8")


def plan_to_dict(plan: Plan, **signing: Any) -> dict[str, Any]:
    """The plan file's document as plain data, keys in the documented order."""
    data: dict[str, Any] = json.loads(dumps_plan(plan, **signing))
    return data


def write_plan(
    plan: Plan,
    path: str | os.PathLike[str],
    *,
    key: bytes | None = None,
    digest: str | None = None,
    key_id: str | None = None,
    columns: Mapping[str, Column] | None = None,
) -> None:
    """Write atomically (a temporary file in the same folder, then a rename). ``key``: the plan key
    that signs it; or ``digest`` (with ``key_id``), the plan's :func:`~gradesync.plan.digest.plan_digest`
    when the caller has it, and ``columns`` (``encoding.encode_columns`` of its rows) likewise."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(target, iter_plan_bytes(plan, key=key, digest=digest, key_id=key_id, columns=columns))


# ---------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------
class _Version(msgspec.Struct):
    schema_version: Any = None


class _Input(msgspec.Struct, forbid_unknown_fields=True):
    path: str
    sha256: str
    rows: int
    encoding: str | None
    sheet: str | None


_Gap = msgspec.defstruct(
    "_Gap",
    [(k, float | None if k == "current_points" else str | None) for k in ROSTER_GAP_KEYS],
    forbid_unknown_fields=True,
)


class _IntColumn(msgspec.Struct, forbid_unknown_fields=True):
    values: list[int] | None = None
    dictionary: list[int] | None = None
    codes: list[int] | None = None


class _FloatColumn(msgspec.Struct, forbid_unknown_fields=True):
    values: list[float | None] | None = None
    dictionary: list[float | None] | None = None
    codes: list[int] | None = None


class _BoolColumn(msgspec.Struct, forbid_unknown_fields=True):
    values: list[bool] | None = None
    dictionary: list[bool] | None = None
    codes: list[int] | None = None


class _TextColumn(msgspec.Struct, forbid_unknown_fields=True):
    values: list[str | None] | None = None
    dictionary: list[str | None] | None = None
    codes: list[int] | None = None


_COLUMN_TYPES: dict[str, Any] = {
    "int64": _IntColumn,
    "float64": _FloatColumn,
    "bool": _BoolColumn,
    "object": _TextColumn,
}
_Columns = msgspec.defstruct(
    "_Columns",
    [(name, _COLUMN_TYPES[dtype]) for name, dtype in PLAN_COLUMNS.items()],
    forbid_unknown_fields=True,
)


class _Document(msgspec.Struct, forbid_unknown_fields=True):
    schema_version: int
    plan_id: str
    created_at: str
    graph_base_url: str
    config_hash: str
    digest: str
    key_id: str
    strict: bool
    inputs: list[_Input]
    warnings: list[str]
    read_at: dict[str, str]
    summary: dict[str, Any]
    roster_gaps: list[_Gap]  # type: ignore[valid-type]
    row_count: int
    columns: _Columns  # type: ignore[valid-type]
    undo_of: str = ""  # the run this plan undoes (gradesync undo), else ""


def _plan_from_document(doc: _Document) -> Plan:
    if doc.row_count < 0:
        raise PlanFormatError('"row_count" is negative')
    if not _DIGEST.fullmatch(doc.digest) or not _KEY_ID.fullmatch(doc.key_id):
        raise PlanFormatError('"digest" or "key_id" is not what gradesync writes (hex digits)')
    columns: dict[str, Column] = {}
    for name in PLAN_COLUMNS:
        part = getattr(doc.columns, name)
        columns[name] = decode_column(
            name, doc.row_count, values=part.values, dictionary=part.dictionary, codes=part.codes
        )
    rows = frame_from_columns(columns)
    keys = rows["row_key"].to_numpy()
    if len(keys) > 1 and not bool((keys[1:] > keys[:-1]).all()):  # compared, not subtracted: no overflow
        raise PlanFormatError("rows are not ordered by row_key")
    for name, dtype in PLAN_COLUMNS.items():
        if dtype == "float64" and np.isinf(rows[name].to_numpy()).any():
            raise PlanFormatError(f'column "{name}" holds an infinite number')
    plan = Plan(
        rows=rows,
        created_at=doc.created_at,
        graph_base_url=doc.graph_base_url,
        config_hash=doc.config_hash,
        inputs=[InputFile(**msgspec.structs.asdict(i)) for i in doc.inputs],
        roster_gaps=[msgspec.structs.asdict(g) for g in doc.roster_gaps],
        schema_version=doc.schema_version,
        strict=doc.strict,
        warnings=list(doc.warnings),
        plan_id=doc.plan_id,
        digest=doc.digest,
        key_id=doc.key_id,
        read_at=dict(doc.read_at),
        undo_of=doc.undo_of,
    )
    if doc.summary != summarize(plan, columns):
        raise PlanFormatError('"summary" does not match the planned rows (was the file edited?)')
    return plan


def _corrupt(source: str, what: str, row: int | None = None) -> InputError:
    return InputError(
        f"not a valid gradesync plan: {what}", file=source, row=row, code="plan-corrupt", hint=_REMAKE
    )


def _check_version(version: Any, source: str) -> int:
    if type(version) is not int or version < 1:
        raise PlanFormatError('"schema_version" is missing or not a positive integer')
    if version > SCHEMA_VERSION:
        raise UsageError(
            f"{source}: plan schema version {version} is newer than this gradesync understands "
            f"(version {SCHEMA_VERSION})",
            code="plan-schema-unsupported",
            hint="upgrade gradesync, or make the plan again with this version",
        )
    return version


def plan_from_dict(d: Any, *, source: str = "plan") -> Plan:
    """Rebuild a Plan from a plan file's document (any schema version this gradesync reads);
    refuses a newer schema or a damaged document."""
    try:
        if not isinstance(d, dict):
            raise PlanFormatError("the document is not a JSON object")
        version = _check_version(d.get("schema_version"), source)
        if version < SCHEMA_VERSION:
            return plan_from_legacy(d, version)
        return _plan_from_document(msgspec.convert(d, _Document))
    except (PlanFormatError, msgspec.ValidationError) as e:
        raise _corrupt(source, str(e)) from None
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise _corrupt(source, f"{type(e).__name__}: {e}") from None


def loads_plan(data: str | bytes, *, source: str = "plan") -> Plan:
    """A plan file's text (or bytes) as a Plan; ``InputError`` (``plan-corrupt``) when damaged."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        version = msgspec.json.decode(raw, type=_Version).schema_version
    except msgspec.DecodeError as e:
        raise _corrupt(source, f"broken JSON ({e})") from None
    except msgspec.ValidationError:
        raise _corrupt(source, "the document is not a JSON object") from None
    try:
        if _check_version(version, source) < SCHEMA_VERSION:
            return plan_from_dict(msgspec.json.decode(raw), source=source)
        return _plan_from_document(msgspec.json.decode(raw, type=_Document))
    except (PlanFormatError, msgspec.ValidationError) as e:
        raise _corrupt(source, str(e)) from None
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise _corrupt(source, f"{type(e).__name__}: {e}") from None


def read_plan(path: str | os.PathLike[str]) -> Plan:
    """Read a plan file; ``InputError`` (``plan-corrupt``) when damaged, ``UsageError`` when too new."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise InputError("plan file not found", file=str(p), code="plan-missing") from None
    except OSError as e:
        raise InputError(f"cannot read the plan file: {e}", file=str(p), code="plan-corrupt") from None
    return loads_plan(data, source=str(p))
