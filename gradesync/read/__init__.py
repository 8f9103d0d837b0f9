"""Read stage: CSV/TSV/Excel exports → the desired-grades frame (``models.DESIRED_COLUMNS``).

    _source.py    bytes → RawTable (encodings, delimiter sniffing, Excel cells as text, row numbers)
    _layout.py    RawTable → desired rows (header aliases, long/wide layout, "Points Possible" row)
    _validate.py  desired rows → reason codes and messages (pure, vectorised)

Identifiers are always text: CSV is read with ``dtype=str`` and no NA coercion, and Excel numbers are
written back without a spurious ``.0`` (a numeric cell 123 → "123"; a text cell "00123" stays
"00123"). Files that cannot be read raise ``InputError``; row-level problems never raise, the row
stays in the frame with a ``reason`` and a ``message``.

``source_row`` is the row number a person sees with the header as row 1: in a text file the first
physical line of the record (a quoted field that spans lines counts its lines; blank lines count),
in Excel the sheet's row number.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from gradesync.config import Settings
from gradesync.models import DESIRED_COLUMNS, InputFile, empty_frame
from gradesync.read._layout import (
    HEADER_ALIASES,
    POINTS_POSSIBLE_LABELS,
    WIDE_NON_GRADE_HEADERS,
    build_desired,
    normalize_header,
)
from gradesync.read._source import cell_text, load_table
from gradesync.read._validate import MAX_POINTS_EXCLUSIVE, format_points, validate

__all__ = [
    "HEADER_ALIASES",
    "MAX_POINTS_EXCLUSIVE",
    "POINTS_POSSIBLE_LABELS",
    "WIDE_NON_GRADE_HEADERS",
    "ReadResult",
    "cell_text",
    "format_points",
    "normalize_header",
    "read_inputs",
    "validate",
]


@dataclass(slots=True)
class ReadResult:
    frame: pd.DataFrame  # DESIRED_COLUMNS, validated, row_key 0..n-1 in reading order
    inputs: list[InputFile] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def read_inputs(
    paths: Sequence[str | Path],
    settings: Settings,
    *,
    class_key: str | None = None,
    sheet: str | None = None,
) -> ReadResult:
    """Read every input file, in order, into one validated desired frame.

    ``class_key`` (``--class``) and ``sheet`` (``--sheet``) override ``settings.input``.
    Raises ``InputError`` for a file that cannot be read at all.

    Measured (2,000 classes × 30 students × 20 assignments = 1,200,000-row long CSV, 46 MB):
    read + validate 0.85 s vs 0.25 s for bare ``pandas.read_csv(dtype=str)`` (3.4×, best of 3, a
    shared 2-core machine). Work is per distinct value (``pandas.factorize``), never per row.
    """
    sheet = sheet if sheet is not None else settings.input.sheet
    frames: list[pd.DataFrame] = []
    inputs: list[InputFile] = []
    warnings: list[str] = []
    key_columns: dict[str, dict[str, str]] = {}
    for path in paths:
        table = load_table(path, sheet=sheet)
        desired = build_desired(table, settings.input, class_key)
        warnings += table.warnings + desired.warnings
        key_columns[table.path] = desired.key_columns
        frames.append(desired.frame)
        inputs.append(
            InputFile(
                path=table.path,
                sha256=table.sha256,
                rows=len(desired.frame),
                encoding=table.encoding,
                sheet=table.sheet or None,
            )
        )
    if frames:
        frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    else:
        frame = empty_frame(DESIRED_COLUMNS)
    frame = frame.astype(DESIRED_COLUMNS)
    frame["row_key"] = np.arange(len(frame), dtype=np.int64)
    frame = validate(frame, settings.policy, key_columns=key_columns)
    # Rows of whitespace-only cells: nothing to say once stripped (exactly empty rows never got here).
    void = frame["reason"].to_numpy() == "blank_points"
    if void.any():
        for role in ("class_key", "assignment_key", "student_key"):
            void &= frame[role].to_numpy() == ""
        if void.any():
            frame = frame.loc[~void].reset_index(drop=True)
            frame["row_key"] = np.arange(len(frame), dtype=np.int64)
            counts = frame["source_file"].value_counts()
            inputs = [replace(i, rows=int(counts.get(i.path, 0))) for i in inputs]
    return ReadResult(frame=frame, inputs=inputs, warnings=warnings)
