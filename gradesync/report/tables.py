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
from pathlib import Path

import numpy as np
import pandas as pd

from gradesync.report.summary import bool_column, float_column, format_number, map_distinct, text_column

CSV_ENCODING = "utf-8-sig"

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


def neutralise_series(values: pd.Series) -> pd.Series:
    """``neutralise`` over a text column (computed once per distinct value)."""
    return map_distinct(values, lambda v: "" if v is None else neutralise(str(v)))


def _number_column(rows: pd.DataFrame, name: str) -> pd.Series:
    values = float_column(rows, name)
    x = values.to_numpy()
    with np.errstate(invalid="ignore"):
        whole = np.isfinite(x) & (x == np.round(x)) & (np.abs(x) < 1e15)
    if whole.all():  # row numbers, and most grades: integer text straight from numpy
        return pd.Series(x.astype(np.int64).astype(str), index=rows.index, dtype=object)
    return map_distinct(values, format_number)


def report_frame(rows: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """The CSV's cells as text, in ``columns`` order; a column the rows lack is empty."""
    data: dict[str, pd.Series] = {}
    for name in columns:
        source = _SOURCE.get(name, name)
        if name in NUMBER_COLUMNS or name in INT_COLUMNS:
            data[name] = _number_column(rows, source)
        elif name in BOOL_COLUMNS:
            flags = bool_column(rows, source)
            data[name] = flags.map({True: "yes", False: "no"}).astype(object)
        else:
            data[name] = neutralise_series(text_column(rows, source))
    return pd.DataFrame(data, index=rows.index, columns=list(columns))


def write_csv(rows: pd.DataFrame, path: Path, columns: tuple[str, ...]) -> Path:
    frame = report_frame(rows, columns)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, encoding=CSV_ENCODING, lineterminator="\r\n")
    return path
