"""plan.csv and reconciliation.csv: one row per input row, safe to open in Excel.

Choices, and why:

* **UTF-8 with a BOM** (``utf-8-sig``) and CRLF line ends: Excel on Windows and macOS only detects
  UTF-8 in a double-clicked CSV when the BOM is there (without it, "Zoë" becomes "ZoÃ«"); LibreOffice,
  pandas (``encoding="utf-8-sig"``) and Python's csv module read it fine.
* **Numbers written plainly**: 85, 85.5, never 85.0000001 or 1e-07 (see ``format_number``); NaN,
  None and a missing value are an empty cell. Booleans are ``yes``/``no``.
* **Formula injection** (OWASP "CSV Injection"): a text cell that starts with ``=``, ``+``, ``-``,
  ``@``, a tab or a carriage return is prefixed with a single quote so Excel shows it as text instead
  of evaluating it — unless it is a plain number (``-5``, ``+2.5``), which Excel reads as that number
  anyway. Number columns we format ourselves are never prefixed, so a negative value stays numeric.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gradesync.pieces import Piece, coded, const, join_rows, texts
from gradesync.report.summary import bool_column, float_column, format_number, text_value

__all__ = [
    "BOOL_COLUMNS",
    "CHUNK_ROWS",
    "CSV_ENCODING",
    "INT_COLUMNS",
    "NUMBER_COLUMNS",
    "PLAN_CSV_COLUMNS",
    "RECONCILIATION_CSV_COLUMNS",
    "SAMPLE_ROWS",
    "cell",
    "csv_chunks",
    "csv_field",
    "neutralise",
    "write_csv",
]

CSV_ENCODING = "utf-8-sig"
CHUNK_ROWS = 10_000  # rows turned into text at a time (a few MB: malloc reuses it, no fresh pages)
SAMPLE_ROWS = 1_000  # a column mostly distinct in its first rows is written value by value

PLAN_CSV_COLUMNS: tuple[str, ...] = (
    "source_file",
    "source_sheet",
    "source_row",
    "source_column",
    "class",
    "assignment",
    "student",
    "class_id",
    "assignment_id",
    "user_id",
    "submission_id",
    "before_points",
    "desired_points",
    "action",
    "reason",
    "message",
    "note",
    # extras, after the contract's columns
    "class_name",
    "assignment_name",
    "student_name",
    "max_points",
    "points_raw",
    "clear",
    "decrease",
    "excuse",
    "last_written_points",
    "override_policy",
)

RECONCILIATION_CSV_COLUMNS: tuple[str, ...] = (
    "source_file",
    "source_row",
    "class",
    "assignment",
    "student",
    "before_points",
    "desired_points",
    "after_points",
    "action",
    "status",
    "reason",
    "message",
    "request_id",
    # extras, after the contract's columns
    "source_sheet",
    "source_column",
    "class_id",
    "assignment_id",
    "user_id",
    "submission_id",
    "class_name",
    "assignment_name",
    "student_name",
    "max_points",
    "points_raw",
    "clear",
    "decrease",
    "note",
    "excuse",
    "last_written_points",
    "override_policy",
    "returned",  # published to the student by --return in this run
)

# report column → rows column, where they differ
_SOURCE = {"class": "class_key", "assignment": "assignment_key", "student": "student_key"}
NUMBER_COLUMNS = frozenset(
    {"before_points", "desired_points", "after_points", "max_points", "last_written_points"}
)
INT_COLUMNS = frozenset({"source_row"})
BOOL_COLUMNS = frozenset({"clear", "decrease", "excuse", "returned"})

_FORMULA_START = re.compile(r"^[=+\-@\t\r]")
_PLAIN_NUMBER = re.compile(r"^[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][+-]?\d+)?$")


def neutralise(value: str) -> str:
    """Prefix a would-be formula with ``'`` (OWASP); leave plain numbers and other text alone."""
    if value and _FORMULA_START.match(value) and not _PLAIN_NUMBER.match(value):
        return "'" + value
    return value


def csv_field(text: str) -> str:
    """``text`` as the csv module's QUOTE_MINIMAL writes it with CRLF line ends: quoted (quotes
    doubled) when it holds a comma, a quote, CR or LF; as it is otherwise."""
    if "," in text or '"' in text or "\r" in text or "\n" in text:
        return '"' + text.replace('"', '""') + '"'
    return text


def cell(value: Any) -> str:
    """A text column's value as its CSV field: clean text (``text_value``), neutralised, quoted."""
    return csv_field(neutralise(text_value(value)))


def _mostly_distinct(values: np.ndarray) -> bool:
    sample = values[:SAMPLE_ROWS]
    return len(sample) == SAMPLE_ROWS and len(pd.unique(sample)) > SAMPLE_ROWS // 2


def _safe_as_is(values: np.ndarray) -> bool:
    """True when every value is text that its CSV field holds unchanged: nothing to quote, no formula."""
    try:
        joined = "\n".join(values.tolist())
    except TypeError:  # a value that is not text
        return False
    if joined.count("\n") != len(values) - 1 or "," in joined or '"' in joined or "\r" in joined:
        return False
    starts = "\n" + joined  # every value follows a line end: a formula start is "\n=" and the like
    return not any("\n" + c in starts for c in "=+-@\t")


def _text_piece(rows: pd.DataFrame, name: str) -> Piece:
    if name not in rows.columns:
        return const("", len(rows))
    values = rows[name].to_numpy(dtype=object)
    if _mostly_distinct(values):  # ids: the texts themselves when none needs a change
        missing = pd.isna(values)
        filled = np.where(missing, "", values).astype(object) if missing.any() else values
        if _safe_as_is(filled):
            return Piece(filled)
        return Piece(texts([cell(v) for v in values.tolist()]))
    codes, uniques = pd.factorize(values, use_na_sentinel=True)  # None, NaN → -1 → ""
    return coded([*(cell(u) for u in uniques), cell(None)], np.where(codes < 0, len(uniques), codes))


def _number_piece(rows: pd.DataFrame, name: str) -> Piece:
    x = float_column(rows, name).to_numpy()
    if _mostly_distinct(x):  # row numbers: integer text straight from the ints when all are whole
        with np.errstate(invalid="ignore"):
            whole = np.isfinite(x) & (x == np.round(x)) & (np.abs(x) < 1e15)
        if whole.all():
            return Piece(texts(list(map(str, x.astype(np.int64).tolist()))))
    codes, uniques = pd.factorize(x, use_na_sentinel=True)  # NaN → -1 → ""
    table = [*(format_number(u) for u in uniques.tolist()), ""]
    return coded(table, np.where(codes < 0, len(uniques), codes))


def _column_piece(rows: pd.DataFrame, name: str) -> Piece:
    source = _SOURCE.get(name, name)
    if name in NUMBER_COLUMNS or name in INT_COLUMNS:
        return _number_piece(rows, source)
    if name in BOOL_COLUMNS:
        return coded(["no", "yes"], bool_column(rows, source).to_numpy(dtype=bool))
    return _text_piece(rows, source)


def csv_chunks(rows: pd.DataFrame, columns: tuple[str, ...]) -> Iterator[str]:
    """The CSV's text (header, then the rows ``CHUNK_ROWS`` at a time), each line ending in CRLF.

    Cells: numbers plainly (``format_number``; whole numbers as integers), booleans ``yes``/``no``,
    text clean (``text_value``) and neutralised; a column the rows lack is empty. A field is quoted as
    the csv module's QUOTE_MINIMAL does (``csv_field``)."""
    yield ",".join(csv_field(c) for c in columns) + "\r\n"
    for start in range(0, len(rows), CHUNK_ROWS):
        chunk = rows.iloc[start : start + CHUNK_ROWS]
        pieces: list[Piece] = []
        for k, name in enumerate(columns):
            if k:
                pieces.append(const(",", len(chunk)))
            pieces.append(_column_piece(chunk, name))
        yield join_rows(pieces, len(chunk), "\r\n")


def write_csv(rows: pd.DataFrame, path: Path, columns: tuple[str, ...]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding=CSV_ENCODING, newline="") as f:  # utf-8-sig: the BOM comes first
        for text in csv_chunks(rows, columns):
            f.write(text)
    return path
