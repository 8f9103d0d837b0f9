"""Build report-stage rows (PLAN_COLUMNS, plus the reconciliation columns) directly, for the tests."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from gradesync.models import PLAN_COLUMNS, InputFile

NAN = math.nan

HOSTILE_SCRIPT = "<script>document.title='PWNED-SCRIPT'</script>"
HOSTILE_IMG = '"><img src=x onerror="document.title=\'PWNED-IMG\'">'
HOSTILE_SVG = "<svg onload=\"document.title='PWNED-SVG'\"></svg>"
HOSTILE_ATTR = "' onmouseover='document.title=1' x='"


def row(**over: Any) -> dict[str, Any]:
    """One plan row with sensible defaults: an update of 70 → 85."""
    base: dict[str, Any] = {
        "row_key": 0,
        "source_file": "grades.csv",
        "source_sheet": "",
        "source_column": "points",
        "class_key": "MATH-101",
        "assignment_key": "Quiz 1",
        "student_key": "S001",
        "points_raw": "85",
        "desired_points": 85.0,
        "clear": False,
        "excuse": False,
        "points_possible": NAN,
        "class_id": "c-math",
        "class_name": "Math 101",
        "assignment_id": "a-q1",
        "assignment_name": "Quiz 1",
        "max_points": 100.0,
        "user_id": "u-1",
        "student_name": "Ana Lopez",
        "submission_id": "s-1",
        "outcome_id": "o-1",
        "before_points": 70.0,
        "before_modified": "2024-09-01T10:00:00Z",
        "action": "update",
        "reason": "",
        "message": "",
        "note": "",
        "decrease": False,
        "last_written_points": math.nan,
        "override_policy": "",
    }
    base.update(over)
    return base


def frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """A DataFrame with exactly PLAN_COLUMNS' dtypes (plus any extra columns the rows carry)."""
    records = [dict(r, row_key=i, source_row=r.get("source_row", i + 2)) for i, r in enumerate(rows)]
    df = pd.DataFrame.from_records(records)
    for name, dtype in PLAN_COLUMNS.items():
        df[name] = df[name].astype(dtype)
    return df


def sample_plan_rows() -> pd.DataFrame:
    """A small plan covering every action, a decrease, a clear, rejects and hostile text."""
    return frame(
        [
            row(student_key="S001", student_name="Ana Lopez"),  # update 70 → 85
            row(
                student_key="S002",
                student_name="Ben Ng",
                user_id="u-2",
                submission_id="s-2",
                desired_points=60.5,
                points_raw="60.5",
                before_points=90.0,
                decrease=True,
            ),  # decrease
            row(
                student_key="S003",
                student_name=HOSTILE_SCRIPT,
                user_id="u-3",
                submission_id="s-3",
                outcome_id=None,
                before_points=NAN,
                action="create",
                desired_points=77.25,
                points_raw="77.25",
            ),  # create, hostile name
            row(
                student_key="S004",
                student_name="Cy Dee",
                user_id="u-4",
                desired_points=NAN,
                points_raw="",
                before_points=50.0,
                action="noop",
                reason="blank_points",
                message="blank cell: no change",
            ),
            row(
                student_key="S005",
                student_name=None,
                user_id=None,
                submission_id=None,
                class_id="c-math",
                before_points=NAN,
                action="reject",
                reason="unknown_student",
                message=f"no student {HOSTILE_IMG} in class MATH-101",
            ),
            row(
                student_key='=HYPERLINK("http://x","y")',
                student_name=HOSTILE_SVG,
                user_id=None,
                submission_id=None,
                before_points=NAN,
                desired_points=NAN,
                points_raw="+cmd|' /C calc'!A0",
                action="reject",
                reason="invalid_points",
                message="points are not a number",
                note="@SUM(1+1)",
            ),
            row(
                class_key="ART-2",
                class_id="c-art",
                class_name=HOSTILE_ATTR,
                assignment_key="-2+3",
                assignment_id="a-x",
                assignment_name="Sketch",
                student_key="-5",
                student_name="Dee Eff",
                user_id="u-6",
                desired_points=NAN,
                points_raw="CLEAR",
                clear=True,
                before_points=40.0,
                action="update",
                decrease=True,
            ),  # clear
        ]
    )


def reconciliation_rows() -> pd.DataFrame:
    rows = sample_plan_rows()
    rows["after_points"] = [85.0, 90.0, 77.25, 50.0, NAN, NAN, NAN]
    rows["status"] = ["updated", "conflict", "created", "unchanged", "rejected", "rejected", "failed"]
    rows["request_id"] = ["r-1", "r-2", "r-3", "", "", "", "req-<b>7</b>"]
    rows.loc[1, "message"] = "the grade changed in Teams after the plan was made"
    rows.loc[6, "message"] = "Graph 403 Forbidden: <i>insufficient privileges</i>"
    return rows


INPUTS = [InputFile(path="grades.csv", sha256="ab" * 32, rows=7, encoding="utf-8")]
GAPS = [
    {
        "class_id": "c-math",
        "class_name": "Math 101",
        "assignment_id": "a-q1",
        "assignment_name": "Quiz 1",
        "user_id": "u-9",
        "student_name": "<b>Gap</b> Student",
        "current_points": 12.0,
    }
]
