"""File-level diagnoses: when many rows fail the same way, one sentence that says why and what to do.

Row messages say what is wrong with a row; a registrar with 400 rejected rows needs the one cause
behind them ("the class column holds section names", "Excel dropped the ids' leading zeros").
Pure: the validated frame and what the layout learned in, sentences out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from gradesync.config import Settings
from gradesync.models import ReasonCode

if TYPE_CHECKING:  # pragma: no cover
    from gradesync.read import FileReading

#: A reason is "most rows" when it covers at least this share of a file's graded cells (and 3 rows).
MOST = 0.5


def diagnose(frame: pd.DataFrame, readings: Sequence[FileReading], settings: Settings) -> list[str]:
    out: list[str] = []
    for reading in readings:
        rows = frame if len(readings) == 1 else frame[frame["source_file"] == reading.path]
        out += _reasons(reading.path, rows)
        out += _class_names(reading, rows, settings)
        out += _lost_zeros(reading)
    return out


def _reasons(path: str, rows: pd.DataFrame) -> list[str]:
    reasons = rows["reason"]
    counts = reasons.value_counts()
    skipped = int(counts.get(ReasonCode.BLANK_POINTS.value, 0) + counts.get(ReasonCode.IGNORED_ROW.value, 0))
    total = len(rows) - skipped
    counts = counts.drop([ReasonCode.BLANK_POINTS.value, ReasonCode.IGNORED_ROW.value, ""], errors="ignore")
    if total < 3 or not len(counts):
        return []
    out = []
    for reason, n in list(counts.items())[:1]:
        count = int(n)
        if count / total < MOST:
            continue
        sample = rows.iloc[int(np.flatnonzero(reasons.to_numpy() == reason)[0])]
        value, column = str(sample["points_raw"]).strip()[:30], sample["source_column"]
        share = f"{count} of {total} grades in {path}"
        if reason == ReasonCode.LETTER_GRADE.value:
            out.append(
                f'{share} are letter grades (e.g. "{value}" in column "{column}"): Teams holds points; '
                'export points instead, or map letters in the mapping file ([values.letters] "A" = "95%")'
            )
        elif reason == ReasonCode.DATE_NOT_POINTS.value:
            out.append(
                f'{share} are dates (e.g. "{value}" in column "{column}"): Excel turned typed scores such '
                "as 9/10 into dates; format the column as Text and type them again"
            )
        elif reason == ReasonCode.INVALID_POINTS.value:
            out.append(
                f'{share} are not numbers (e.g. "{value}" in column "{column}"): if that is a code of your '
                "gradebook, list it in the mapping ([values] blank_marks = no grade, excused_marks = "
                "excuse); otherwise the column may not hold grades (ignore it in [columns] ignore)"
            )
        elif reason == ReasonCode.MISSING_IDENTIFIER.value:
            out.append(f"{share} lack an identifier ({sample['message']}): is the header row right?")
    return out


def _class_names(reading: FileReading, rows: pd.DataFrame, settings: Settings) -> list[str]:
    """The class key column holds names with spaces, but classes are matched by externalId."""
    if settings.match.class_by != "externalId" or not len(rows):
        return []
    column = reading.desired.key_columns.get("class", "--class")
    if column == "--class" or "{" in column:
        return []
    keys = pd.unique(rows["class_key"].to_numpy(dtype=object))
    keys = [k for k in keys if k]
    named = [k for k in keys if " " in k.strip()]
    if not keys or len(named) * 2 < len(keys):
        return []
    return [
        f'{reading.path}: column "{column}" holds names like "{named[0]}"; classes are matched by '
        'externalId; use class_by = "displayName" ([match] in config/gradesync.toml) or --class CLASS'
    ]


def _lost_zeros(reading: FileReading) -> list[str]:
    """All-digit ids of different lengths where the long ones start with 0: Excel dropped zeros."""
    ids: list[Any] = [i for i in reading.desired.student_ids if isinstance(i, str) and i]
    digits = [i for i in ids if i.isdigit()]
    if len(digits) < 2 or len(digits) * 2 < len(ids):
        return []
    lengths = np.array([len(i) for i in digits])
    width = int(lengths.max())
    padded = [i for i in digits if len(i) == width and i.startswith("0")]
    short = [i for i in digits if len(i) < width]
    if not padded or not short:
        return []
    column = reading.desired.key_columns.get("student", "student")
    return [
        f'{reading.path}: ids in column "{column}" look like numbers that lost their leading zeros '
        f'("{short[0]}" beside "{padded[0]}"); if Teams holds {width}-digit ids, add [student] '
        f"zero_pad = {width} to the mapping (gradesync inspect --write-mapping writes one)"
    ]
