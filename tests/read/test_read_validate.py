"""Row validation: reason codes, exact messages, rounding, blank/clear, duplicates across files."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from read_testkit import settings, write

from gradesync.config import PolicySettings
from gradesync.models import DESIRED_COLUMNS, ReasonCode
from gradesync.read import read_inputs, validate

HEAD = "Class,Assignment,Student ID,Points\n"


def one(tmp_path: Path, points: str, **policy: object) -> dict:
    path = write(tmp_path, "g.csv", HEAD + f'S1,Unit 1 Quiz,00123,"{points}"\n')
    frame = read_inputs([path], settings(policy or None)).frame
    assert len(frame) == 1
    return frame.iloc[0].to_dict()


@pytest.mark.parametrize(
    ("raw", "value"),
    [("85", 85.0), ("85.5", 85.5), (" 85 ", 85.0), ("+7", 7.0), ("0", 0.0), ("-0", 0.0), ("1e2", 100.0)],
)
def test_valid_points(tmp_path: Path, raw: str, value: float) -> None:
    row = one(tmp_path, raw)
    assert (row["desired_points"], row["reason"], row["message"], row["note"]) == (value, "", "", "")
    assert row["points_raw"] == raw
    assert not math.copysign(1, row["desired_points"]) < 0


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("abc", 'points "abc" in column "Points" is not a number'),
        ("NaN", 'points "NaN" in column "Points" is not a number'),
        (
            "1,5",
            'points "1,5" in column "Points" is not a number '
            "(decimal comma? write it with a point, e.g. 1.5)",
        ),
        ("inf", 'points "inf" in column "Points" is not a number (infinite)'),
        ("-Infinity", 'points "-Infinity" in column "Points" is not a number (infinite)'),
        ("1e400", 'points "1e400" in column "Points" is too large (points must be below 9,999,999)'),
        ("9999999", 'points "9999999" in column "Points" is too large (points must be below 9,999,999)'),
        (
            "9999998.999",
            'points "9999998.999" in column "Points" is too large (points must be below 9,999,999)',
        ),
        ("-5", 'points "-5" in column "Points" is negative (points cannot be below 0)'),
        ("85 pts", 'points "85 pts" in column "Points" is not a number'),  # 85% is a percent now
        ("9" * 100, f'points "{"9" * 40}…" in column "Points" is not a number (too long)'),
    ],
)
def test_invalid_points(tmp_path: Path, raw: str, message: str) -> None:
    row = one(tmp_path, raw)
    assert row["reason"] == ReasonCode.INVALID_POINTS.value
    assert row["message"] == message
    assert math.isnan(row["desired_points"])
    assert row["clear"] is False or row["clear"] == np.False_


def test_very_long_points_text(tmp_path: Path) -> None:
    row = one(tmp_path, "x" * 1_000_000)
    assert row["reason"] == "invalid_points"
    assert len(row["message"]) < 200


def test_just_below_the_limit(tmp_path: Path) -> None:
    assert one(tmp_path, "9999998.99")["desired_points"] == 9999998.99


@pytest.mark.parametrize(
    ("raw", "precision", "value", "note"),
    [
        ("85.456", 2, 85.46, "rounded 85.456 → 85.46"),
        ("85.455", 2, 85.46, "rounded 85.455 → 85.46"),  # half up on the decimal text, not the float
        ("0.125", 2, 0.13, "rounded 0.125 → 0.13"),
        ("85.5", 0, 86.0, "rounded 85.5 → 86"),
        ("85.4500", 2, 85.45, ""),
        ("1.23456", 4, 1.2346, "rounded 1.23456 → 1.2346"),
    ],
)
def test_rounding_note(tmp_path: Path, raw: str, precision: int, value: float, note: str) -> None:
    row = one(tmp_path, raw, precision=precision)
    assert (row["desired_points"], row["note"], row["reason"]) == (value, note, "")


def test_blank_is_no_change(tmp_path: Path) -> None:
    row = one(tmp_path, "   ")
    assert row["reason"] == ReasonCode.BLANK_POINTS.value
    assert row["message"] == 'no points in column "Points": blank means no change'
    assert math.isnan(row["desired_points"])


@pytest.mark.parametrize(("raw", "token"), [("CLEAR", "CLEAR"), (" clear ", "CLEAR"), ("-", "-")])
def test_clear_token(tmp_path: Path, raw: str, token: str) -> None:
    row = one(tmp_path, raw, clear_token=token)
    assert bool(row["clear"]) is True
    assert math.isnan(row["desired_points"])
    assert (row["reason"], row["note"]) == ("", f"{token} clears the grade")


def test_clear_is_not_a_number_with_another_token(tmp_path: Path) -> None:
    row = one(tmp_path, "CLEAR", clear_token="DELETE")
    assert (row["reason"], bool(row["clear"])) == ("invalid_points", False)


def test_missing_identifiers_name_the_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "g.csv", HEAD + ",Quiz,00123,1\nS1,Quiz, ,2\n, ,,3\nS1,,,\n")
    frame = read_inputs([path], settings()).frame
    assert col_of(frame, "reason") == ["missing_identifier"] * 3 + ["blank_points"]
    assert col_of(frame, "message")[:3] == [
        'no class: column "Class" is blank',
        'no student: column "Student ID" is blank',
        'no class and assignment and student: columns "Class", "Assignment", "Student ID" are blank',
    ]


def col_of(frame: pd.DataFrame, name: str) -> list:
    return frame[name].tolist()


def test_duplicates_identical_and_conflicting_across_files(tmp_path: Path) -> None:
    a = write(tmp_path, "a.csv", HEAD + "S1,Quiz,00123,85\nS1,Quiz,00124,70\nS1,Quiz,00125,CLEAR\n")
    b = write(
        tmp_path,
        "b.csv",
        HEAD
        + "s1,QUIZ,00123,85.0\nS1,Quiz,00124,71\nS1,Quiz,00125,clear\nS1,Quiz,00124,abc\nS1,Quiz,00123,\n",
    )
    frame = read_inputs([a, b], settings()).frame
    assert col_of(frame, "row_key") == list(range(8))
    assert col_of(frame, "reason") == [
        "",
        "duplicate_conflict",
        "",
        "duplicate_identical",
        "duplicate_conflict",
        "duplicate_identical",
        "invalid_points",
        "blank_points",
    ]
    m = col_of(frame, "message")
    assert (
        m[3] == f"same class, assignment, student and points as {a} row 2, which is used; this row is ignored"
    )
    assert m[1] == (
        f'conflicting grades for the same class, assignment and student: this row says "70", {b} row 3 says '
        f'"71", {b} row 5 says "abc"; fix the input so only one row remains'
    )
    assert m[4] == (
        f'conflicting grades for the same class, assignment and student: this row says "71", {a} row 3 says '
        f'"70", {b} row 5 says "abc"; fix the input so only one row remains'
    )
    assert m[6] == 'points "abc" in column "Points" is not a number'
    notes = col_of(frame, "note")
    assert notes[0] == f"identical copy ignored: {b} row 2"
    assert notes[2] == f"identical copy ignored: {b} row 4; CLEAR clears the grade"
    # the kept rows still carry their value; the identical copy carries it too (its action is noop)
    assert frame["desired_points"].iloc[0] == 85.0


def test_duplicate_reference_names_a_different_column(tmp_path: Path) -> None:
    path = write(tmp_path, "w.csv", "Student,Quiz,quiz\n00123,1,2\n")
    frame = read_inputs([path], settings(class_key="S1")).frame
    assert col_of(frame, "reason") == ["duplicate_conflict", "duplicate_conflict"]
    assert col_of(frame, "message")[0].endswith(
        f'this row says "1", {path} row 2 column "quiz" says "2"; fix the input so only one row remains'
    )


def _frame(**cols: list) -> pd.DataFrame:
    n = len(next(iter(cols.values())))
    base = {
        "row_key": list(range(n)),
        "source_file": ["x.csv"] * n,
        "source_sheet": [""] * n,
        "source_row": [i + 2 for i in range(n)],
        "source_column": ["Points"] * n,
        "class_key": ["S1"] * n,
        "assignment_key": ["Quiz"] * n,
        "student_key": [str(i) for i in range(n)],
        "points_raw": ["1"] * n,
        "desired_points": [np.nan] * n,
        "clear": [False] * n,
        "points_possible": [np.nan] * n,
        "points_unit": ["points"] * n,
        "points_denominator": [np.nan] * n,
        "excuse": [False] * n,
        "reason": [""] * n,
        "message": [""] * n,
        "note": [""] * n,
    }
    base.update(cols)
    return pd.DataFrame({k: pd.Series(v, dtype=DESIRED_COLUMNS[k]) for k, v in base.items()})


def test_validate_is_pure_and_idempotent() -> None:
    frame = _frame(points_raw=["85.456", "x", "", None], student_key=[" a ", "b", "c", None])
    before = frame.copy()
    out = validate(frame, PolicySettings())
    pd.testing.assert_frame_equal(frame, before)
    assert list(out.columns) == list(DESIRED_COLUMNS)
    assert col_of(out, "reason") == ["", "invalid_points", "blank_points", "blank_points"]
    assert col_of(out, "student_key") == ["a", "b", "c", ""]
    assert col_of(out, "note") == ["rounded 85.456 → 85.46", "", "", ""]
    assert col_of(out, "message")[1] == 'points "x" in column "Points" is not a number'
    pd.testing.assert_frame_equal(validate(out, PolicySettings()), out)


def test_validate_missing_identifier_default_labels() -> None:
    out = validate(_frame(student_key=["", "1"]), PolicySettings())
    assert col_of(out, "message") == ['no student: column "student" is blank', ""]


def test_validate_empty_frame() -> None:
    out = validate(_frame(row_key=[]), PolicySettings())
    assert len(out) == 0
    assert list(out.columns) == list(DESIRED_COLUMNS)
