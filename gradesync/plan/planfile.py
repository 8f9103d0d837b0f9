"""The plan file: a versioned JSON document that diffs well and holds no secret.

Layout (keys always in this order; one JSON object per line inside the long lists)::

    {
      "schema_version": 2,
      "plan_id": "5f0c…",                  # random per plan made (absent in older files)
      "created_at": "2024-06-01T12:00:00Z",
      "graph_base_url": "https://graph.microsoft.com/v1.0",
      "config_hash": "…",
      "digest": "…",                       # plan/digest.py: apply refuses rows that no longer match it
      "strict": false,
      "inputs": [
        {"path":"grades.csv","sha256":"…","rows":120,"encoding":"utf-8","sheet":null}
      ],
      "warnings": [],
      "read_at": {"<class_id>/<assignment_id>": "2024-06-01T11:59:58.123Z"},
      "undo_of": "",                       # the run this plan undoes (gradesync undo), else ""
      "summary": {…},
      "operations": [
        {"row_key":3,"action":"update","class_id":"…",…}
      ],
      "rows": [
        {"row_key":0,"source_file":"grades.csv",…,"action":"reject","reason":"unknown_student",…}
      ],
      "roster_gaps": [
        {"class_id":"…","class_name":"…",…}
      ]
    }

``rows`` holds every input row (``PLAN_COLUMNS``, ordered by ``row_key``); ``operations`` repeats the
writes for a reviewer, and ``read_plan`` checks that they still agree with ``rows`` (an edited file is
refused). NaN is written as ``null``; on reading, ``null`` is NaN in a float column and ``None`` in a
text column, so a plan round-trips exactly. The writer only knows the whitelisted keys below: a token
cannot end up in a plan file because nothing here ever receives one.

``read_at`` says when resolve finished reading each assignment's submissions (the executor re-reads
an assignment whose read is older than its read-to-write window, or missing). It is optional on
reading: files written before it existed still load, with an empty ``read_at``.

The rows and operations are written in chunks of ``CHUNK_ROWS``, column by column: a column is
encoded once per distinct value (ids: the texts themselves, ``json`` only when one needs escaping),
adjacent columns with few combinations are joined into one piece per combination, and a chunk's text
is one ``str.join`` of those pieces. No Python code runs per row; a million-row plan never exists as
Python dicts nor as one string.

Versions: 2 added the row columns ``excuse``, ``last_written_points`` and ``override_policy`` and the
action ``excuse``; a version-1 file is still read (those columns take ``V1_DEFAULTS``). A file is
always written in the current version.

This is the only module of the plan core that touches files.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gradesync.errors import InputError, UsageError
from gradesync.models import PLAN_COLUMNS, ROSTER_GAP_KEYS, WRITE_ACTIONS, InputFile, Operation, Plan
from gradesync.pieces import Piece, const, join_rows, texts
from gradesync.plan.digest import plan_digest

SCHEMA_VERSION = 2
# row columns a version-1 plan file does not have, and the value they take when one is read
V1_DEFAULTS: dict[str, Any] = {"excuse": False, "last_written_points": None, "override_policy": ""}
TOP_KEYS: tuple[str, ...] = (
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
    "undo_of",
    "summary",
    "operations",
    "rows",
    "roster_gaps",
)
# files written before plans had an id, a digest (plan/digest.py), read times or undo lack them
OPTIONAL_TOP_KEYS = frozenset({"plan_id", "digest", "read_at", "undo_of"})
CHUNK_ROWS = 10_000  # rows encoded and written at a time (a few MB: malloc reuses it, no fresh pages)
SAMPLE_ROWS = 1_000  # a text column mostly distinct in its first rows is encoded value by value
INPUT_KEYS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(InputFile))
OPERATION_KEYS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Operation))
ROW_KEYS: tuple[str, ...] = tuple(PLAN_COLUMNS)
GAP_KEYS: tuple[str, ...] = ROSTER_GAP_KEYS


# ---------------------------------------------------------------------------------------------
# Plan ⇄ plain data
# ---------------------------------------------------------------------------------------------
def _json_column(series: pd.Series, dtype: str) -> list[Any]:
    """A column as JSON-ready Python values (NaN/None → None)."""
    if dtype == "float64":
        return [None if math.isnan(v) else v for v in series.to_numpy(dtype="float64").tolist()]
    if dtype == "int64":
        return list(series.to_numpy(dtype="int64").tolist())
    if dtype == "bool":
        return list(series.to_numpy(dtype=bool).tolist())
    values = series.to_numpy(dtype=object)
    missing = pd.isna(values)
    return [None if m else v for v, m in zip(values.tolist(), missing.tolist(), strict=True)]


def _json_value(v: Any) -> Any:
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, np.generic):
        return _json_value(v.item())
    return v


def rows_to_records(rows: pd.DataFrame) -> list[dict[str, Any]]:
    columns = [_json_column(rows[c], dt) for c, dt in PLAN_COLUMNS.items()]
    return [dict(zip(ROW_KEYS, values, strict=True)) for values in zip(*columns, strict=True)]


def _operation_record(op: Operation) -> dict[str, Any]:
    return {k: _json_value(getattr(op, k).value if k == "action" else getattr(op, k)) for k in OPERATION_KEYS}


def _header(plan: Plan, digest: str | None = None) -> dict[str, Any]:
    """Every top-level value but the two long lists (operations and rows); ``digest`` when the caller
    has just computed it (the pipeline shows it before it writes the file), else computed here."""
    from gradesync.plan import summarize

    return {
        "schema_version": SCHEMA_VERSION,  # always written in the current format
        "plan_id": plan.plan_id,
        "created_at": plan.created_at,
        "graph_base_url": plan.graph_base_url,
        "config_hash": plan.config_hash,
        "digest": digest or plan_digest(plan),
        "strict": bool(plan.strict),
        "inputs": [{k: _json_value(getattr(i, k)) for k in INPUT_KEYS} for i in plan.inputs],
        "warnings": [str(w) for w in plan.warnings],
        "read_at": {str(k): str(v) for k, v in sorted(plan.read_at.items())},
        "undo_of": str(plan.undo_of or ""),
        "summary": summarize(plan),
        "roster_gaps": [{k: _json_value(g.get(k)) for k in GAP_KEYS} for g in plan.roster_gaps],
    }


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    """The plan as plain JSON-ready data, keys in the documented order."""
    d = _header(plan)
    d["operations"] = [_operation_record(op) for op in plan.operations()]
    d["rows"] = rows_to_records(plan.rows)
    return {key: d[key] for key in TOP_KEYS}


class _Corrupt(Exception):
    pass


def _require(cond: bool, what: str) -> None:
    if not cond:
        raise _Corrupt(what)


def _frame_from_records(records: list[Any], version: int = SCHEMA_VERSION) -> pd.DataFrame:
    _require(isinstance(records, list), '"rows" is not a list')
    if version == 1:
        records = [{**V1_DEFAULTS, **r} if isinstance(r, dict) else r for r in records]
    for i, r in enumerate(records):
        _require(isinstance(r, dict), f"rows[{i}] is not an object")
        _require(tuple(r) == ROW_KEYS or set(r) == set(ROW_KEYS), f"rows[{i}] does not have the plan columns")
    data: dict[str, pd.Series] = {}
    for col, dtype in PLAN_COLUMNS.items():
        values = [r[col] for r in records]
        try:
            if dtype == "float64":
                arr = np.array([math.nan if v is None else float(v) for v in values], dtype="float64")
            elif dtype == "int64":
                _require(
                    all(type(v) is int for v in values),
                    f'column "{col}" holds a value that is not an integer',
                )
                arr = np.array(values, dtype="int64")
            elif dtype == "bool":
                _require(
                    all(type(v) is bool for v in values),
                    f'column "{col}" holds a value that is not true/false',
                )
                arr = np.array(values, dtype=bool)
            else:
                _require(
                    all(v is None or isinstance(v, str) for v in values),
                    f'column "{col}" holds a value that is not text',
                )
                arr = np.empty(len(values), dtype=object)
                arr[:] = values
        except (TypeError, ValueError) as e:
            raise _Corrupt(f'column "{col}": {e}') from None
        data[col] = pd.Series(arr, dtype=dtype, copy=False)
    rows = pd.DataFrame(data, copy=False)
    _require(
        rows["row_key"].is_monotonic_increasing and rows["row_key"].is_unique,
        "rows are not ordered by row_key",
    )
    return rows


def plan_from_dict(d: Any, *, source: str = "plan") -> Plan:
    """Rebuild a Plan from ``plan_to_dict`` data; refuses a newer schema or a damaged document."""
    try:
        _require(isinstance(d, dict), "the document is not a JSON object")
        version = d.get("schema_version")
        _require(
            type(version) is int and version >= 1, '"schema_version" is missing or not a positive integer'
        )
        if version > SCHEMA_VERSION:
            raise UsageError(
                f"{source}: plan schema version {version} is newer than this gradesync understands "
                f"(version {SCHEMA_VERSION})",
                code="plan-schema-unsupported",
                hint="upgrade gradesync, or make the plan again with this version",
            )
        missing = [k for k in TOP_KEYS if k not in d and k not in OPTIONAL_TOP_KEYS]
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
        _require(isinstance(d.get("undo_of", ""), str), '"undo_of" is not text')
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
        inputs = [InputFile(**{k: i[k] for k in INPUT_KEYS}) for i in d["inputs"]]
        rows = _frame_from_records(d["rows"], version)
        plan = Plan(
            rows=rows,
            created_at=d["created_at"],
            graph_base_url=d["graph_base_url"],
            config_hash=d["config_hash"],
            inputs=inputs,
            roster_gaps=[{k: g.get(k) for k in GAP_KEYS} for g in d["roster_gaps"]],
            schema_version=version,
            strict=d["strict"],
            warnings=[str(w) for w in d["warnings"]],
            plan_id=str(d.get("plan_id") or ""),
            digest=str(d.get("digest") or ""),
            read_at=dict(read_at),
            undo_of=str(d.get("undo_of", "")),
        )
        expected = [_operation_record(op) for op in plan.operations()]
        _require(
            d["operations"] == expected,
            '"operations" do not match the planned rows (was the file edited?)',
        )
        return plan
    except _Corrupt as e:
        raise InputError(
            f"not a valid gradesync plan: {e}",
            file=source,
            code="plan-corrupt",
            hint="make the plan again with `gradesync plan`",
        ) from None
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise InputError(
            f"not a valid gradesync plan: {type(e).__name__}: {e}",
            file=source,
            code="plan-corrupt",
            hint="make the plan again with `gradesync plan`",
        ) from None


# ---------------------------------------------------------------------------------------------
# text and files
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
    inner = indent + "  "
    parts = [
        f"{inner}{json.dumps(k)}: {_lines(v, inner) if isinstance(v, list) else _dump(v)}"
        for k, v in d.items()
    ]
    return "{\n" + ",\n".join(parts) + "\n" + indent + "}"


# ---------------------------------------------------------------------------------------------
# the long lists, in chunks: a row's text is a run of pieces, each computed per column, not per row
# ---------------------------------------------------------------------------------------------
_ENCODE_STR = json.encoder.encode_basestring  # json.dumps of a str with ensure_ascii=False, in C
_BOOL_TEXTS = texts(["false", "true"])
_QUOTE_OR_NOT = texts(['"', ""])  # by a "missing" flag: a text is quoted, its null is not


def _encode_one(value: Any) -> str:
    """A value as ``_dump`` writes it (NaN/None → ``null``)."""
    if type(value) is str:
        return _ENCODE_STR(value)
    missing = value is None or (isinstance(value, float) and math.isnan(value))
    return "null" if missing else _dump(_json_value(value))


def _plain(values: np.ndarray) -> bool:
    """True when no text needs JSON escaping (no quote, backslash or control character)."""
    try:
        joined = "".join(values.tolist())
    except TypeError:  # a value that is not text
        return False
    if '"' in joined or "\\" in joined:
        return False
    try:
        return not joined or int(np.frombuffer(joined.encode("utf-8"), dtype=np.uint8).min()) >= 0x20
    except UnicodeEncodeError:  # a lone surrogate: let the value-by-value path say what it says
        return False


def _distinct_text_pieces(values: np.ndarray) -> list[Piece]:
    """A mostly distinct text column (ids): the texts themselves between quotes (the quotes go into
    the neighbouring pieces), ``null`` unquoted; JSON-escaped value by value only if one needs it."""
    missing = pd.isna(values)
    if not missing.any():
        if _plain(values):
            return [const('"', len(values)), Piece(values), const('"', len(values))]
    elif _plain(values[~missing]):
        flags = missing.astype(np.intp)
        filled = np.where(missing, "null", values).astype(object)
        return [Piece(_QUOTE_OR_NOT, flags), Piece(filled), Piece(_QUOTE_OR_NOT, flags)]
    return [Piece(texts([_encode_one(v) for v in values.tolist()]))]


def _column_pieces(values: np.ndarray, dtype: str) -> list[Piece]:
    """A column's values as JSON texts, exactly as ``json.dumps`` writes each (NaN/None → ``null``)."""
    if dtype == "int64":
        return [Piece(texts(list(map(str, values.astype("int64").tolist()))))]
    if dtype == "bool":
        return [Piece(_BOOL_TEXTS, values.astype(bool).astype(np.intp))]
    if dtype == "float64":
        floats = values.astype("float64")
        codes, uniq = pd.factorize(floats.view("int64"))  # by bit pattern: -0.0 stays -0.0
        shown = np.asarray(uniq, dtype="int64").view("float64").tolist()
        return [Piece(texts([_encode_one(v) for v in shown]), codes.astype(np.intp))]
    sample = values[:SAMPLE_ROWS]
    if len(sample) == SAMPLE_ROWS and len(pd.unique(sample)) > SAMPLE_ROWS // 2:  # mostly distinct ids
        return _distinct_text_pieces(values)
    codes, uniq = pd.factorize(values, use_na_sentinel=True)  # None and NaN → -1 → null
    table = texts([*(_encode_one(v) for v in uniq), "null"])
    return [Piece(table, np.where(codes < 0, len(uniq), codes).astype(np.intp))]


def _object_lines(columns: dict[str, tuple[np.ndarray, str]], indent: str = "    ") -> Iterator[str]:
    """One compact JSON object per row (keys in ``columns`` order), ``CHUNK_ROWS`` rows at a time;
    a comma and a line end follow every row but the last."""
    keys = [("{" if k == 0 else ",") + json.dumps(key) + ":" for k, key in enumerate(columns)]
    keys[0] = indent + keys[0]
    total = len(next(iter(columns.values()))[0]) if columns else 0
    for start in range(0, total, CHUNK_ROWS):
        stop = min(start + CHUNK_ROWS, total)
        n = stop - start
        pieces: list[Piece] = []
        for key, (values, dtype) in zip(keys, columns.values(), strict=True):
            pieces.append(const(key, n))
            pieces += _column_pieces(values[start:stop], dtype)
        yield join_rows(pieces, n, "},\n", "}" if stop == total else "},\n")


def _row_columns(rows: pd.DataFrame) -> dict[str, tuple[np.ndarray, str]]:
    return {
        c: (rows[c].to_numpy(dtype=object if dt == "object" else dt), dt) for c, dt in PLAN_COLUMNS.items()
    }


def _operation_columns(rows: pd.DataFrame) -> dict[str, tuple[np.ndarray, str]]:
    """The operations (``Plan.operations``, ``Operation.from_row``) as columns of the write rows."""
    needed = ["row_key", "action", "class_id", "assignment_id", "submission_id", "outcome_id", "clear"]
    needed += ["desired_points", "before_points", "before_modified"]
    writes = rows.loc[rows["action"].isin(WRITE_ACTIONS).to_numpy(), needed]  # only the columns used

    def text_or_none(col: str) -> np.ndarray:
        values = writes[col].to_numpy(dtype=object)
        blank = pd.isna(values) | (values == "")
        return np.asarray(np.where(blank, None, values), dtype=object)

    clear = writes["clear"].to_numpy(dtype=bool)
    desired = np.where(clear, np.nan, writes["desired_points"].to_numpy(dtype="float64"))
    columns: dict[str, tuple[np.ndarray, str]] = {
        "row_key": (writes["row_key"].to_numpy(dtype="int64"), "int64"),
        "action": (writes["action"].to_numpy(dtype=object), "object"),
        "class_id": (writes["class_id"].astype(str).to_numpy(dtype=object), "object"),
        "assignment_id": (writes["assignment_id"].astype(str).to_numpy(dtype=object), "object"),
        "submission_id": (writes["submission_id"].astype(str).to_numpy(dtype=object), "object"),
        "outcome_id": (text_or_none("outcome_id"), "object"),
        "desired_points": (desired, "float64"),
        "before_points": (writes["before_points"].to_numpy(dtype="float64"), "float64"),
        "before_modified": (text_or_none("before_modified"), "object"),
    }
    assert tuple(columns) == OPERATION_KEYS
    return columns


def _long_list(chunks: Iterator[str]) -> Iterator[str]:
    """``_lines`` of already encoded chunks (each ends its rows with their separators): ``[``, one
    item per line, ``]``."""
    first = True
    for chunk in chunks:
        if first:
            yield "[\n"
            first = False
        yield chunk
    yield "[]" if first else "\n  ]"


def iter_plan_text(plan: Plan, *, digest: str | None = None) -> Iterator[str]:
    """The plan file's text in pieces: scalars one per line, long lists one compact object per line."""
    header = _header(plan, digest)
    yield "{\n"
    for n, key in enumerate(TOP_KEYS):
        yield f"  {json.dumps(key)}: "
        if key == "operations":
            yield from _long_list(_object_lines(_operation_columns(plan.rows)))
        elif key == "rows":
            yield from _long_list(_object_lines(_row_columns(plan.rows)))
        else:
            value = header[key]
            if isinstance(value, list):
                yield _lines(value)
            elif isinstance(value, dict) and value:
                yield _block(value)
            else:
                yield _dump(value)
        yield ",\n" if n < len(TOP_KEYS) - 1 else "\n}\n"


def dumps_plan(plan: Plan) -> str:
    """The plan file's text (``iter_plan_text`` joined)."""
    return "".join(iter_plan_text(plan))


def loads_plan(text: str, *, source: str = "plan") -> Plan:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(
            f"not a valid gradesync plan: broken JSON ({e.msg})",
            file=source,
            row=e.lineno,
            code="plan-corrupt",
            hint="make the plan again with `gradesync plan`",
        ) from None
    return plan_from_dict(data, source=source)


def write_plan(plan: Plan, path: str | os.PathLike[str], *, digest: str | None = None) -> None:
    """Write atomically (a temporary file in the same folder, then a rename). ``digest``: the plan's
    :func:`~gradesync.plan.digest.plan_digest`, if the caller has it (saves computing it again)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            for piece in iter_plan_text(plan, digest=digest):  # in chunks: the text never exists whole
                f.write(piece)
        Path(tmp).replace(target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_plan(path: str | os.PathLike[str]) -> Plan:
    """Read a plan file; ``InputError`` (``plan-corrupt``) when damaged, ``UsageError`` when too new."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("plan file not found", file=str(p), code="plan-missing") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read the plan file: {e}", file=str(p), code="plan-corrupt") from None
    return loads_plan(text, source=str(p))
