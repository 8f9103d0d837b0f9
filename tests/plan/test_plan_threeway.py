"""Pure planner: three-way sync (``memory``) and excused marks, table style."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from gradesync.config import PolicySettings
from gradesync.models import MEMORY_COLUMNS, Action, Operation
from gradesync.plan import build_plan
from gradesync.plan.planfile import dumps_plan, loads_plan, plan_from_dict
from gradesync.read._validate import validate

from .builders import CREATED_AT, GRAPH, desired_frame, settings
from .test_plan_rules import C, school

NAN = math.nan
# Ada's Unit 1 Quiz submission is "sub-1" holding 40 (see test_plan_rules.school)
ADA_UNIT1 = (C, "Unit 1 Quiz", "000123")


def memory(*rows: tuple[str, float, str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "submission_id": pd.Series([r[0] for r in rows], dtype=object),
            "last_written_points": pd.Series([r[1] for r in rows], dtype="float64"),
            "last_written_at": pd.Series([r[2] for r in rows], dtype=object),
        }
    )


def plan_with(points: str, mem: pd.DataFrame | None, **policy):
    return build_plan(
        desired_frame([(*ADA_UNIT1, points)]),
        school().snapshot(),
        settings(**policy),
        created_at=CREATED_AT,
        graph_base_url=GRAPH,
        inputs=[],
        memory=mem,
    )


AT = "2024-05-01T09:00:00Z"
TABLE = [
    # (gradebook, remembered (None: nothing), policy) → (action, reason, override_policy)
    ("45", None, "report", ("update", "", "")),  # first run: an ordinary change
    ("45", 40.0, "report", ("update", "", "")),  # Teams still holds what we wrote
    ("45", 40.004, "report", ("update", "", "")),  # equal at the configured precision
    ("45", 35.0, "report", ("noop", "teacher_override", "report")),
    ("45", 35.0, "teacher-wins", ("noop", "teacher_override", "teacher-wins")),
    ("45", 35.0, "sis-wins", ("update", "teacher_override", "sis-wins")),
    ("40", 35.0, "report", ("noop", "", "")),  # the gradebook agrees with the teacher: nothing to do
    ("CLEAR", 35.0, "report", ("noop", "teacher_override", "report")),  # a clear is protected too
    ("45", NAN, "report", ("noop", "teacher_override", "report")),  # we cleared it, a teacher graded
]


@pytest.mark.parametrize(("points", "remembered", "policy", "expected"), TABLE)
def test_teacher_override_table(points, remembered, policy, expected) -> None:
    mem = None if remembered is None else memory(("sub-1", remembered, AT))
    r = plan_with(points, mem, teacher_override=policy).rows.iloc[0]
    assert (r["action"], r["reason"], r["override_policy"]) == expected
    if expected[1] == "teacher_override":
        assert r["message"].startswith("a teacher changed this grade in Teams since gradesync last wrote")
        assert f"({AT})" in r["message"] and "Teams holds 40" in r["message"]
        assert f'teacher_override = "{policy}"' in r["message"]


def test_memory_of_other_submissions_changes_nothing() -> None:
    base = plan_with("45", None).rows
    other = plan_with("45", memory(("sub-999", 1.0, AT), ("sub-2", 3.0, AT))).rows
    pd.testing.assert_frame_equal(
        base.drop(columns="last_written_points"), other.drop(columns="last_written_points")
    )


def test_last_written_points_are_carried_and_sis_wins_is_an_operation() -> None:
    plan = plan_with("30", memory(("sub-1", 35.0, AT)), teacher_override="sis-wins")
    r = plan.rows.iloc[0]
    assert r["last_written_points"] == 35.0 and bool(r["decrease"])
    assert plan.operations() == [
        Operation(0, Action.UPDATE, "c1", "a-unit1", "sub-1", "out-sub-1", 30.0, 40.0, "2024-05-01T10:00:00Z")
    ]
    assert plan_with("30", memory(("sub-1", 35.0, AT))).operations() == []


def test_empty_memory_frame_is_no_memory() -> None:
    empty = pd.DataFrame({k: pd.Series(dtype=t) for k, t in MEMORY_COLUMNS.items()})
    assert plan_with("45", empty).rows.iloc[0]["action"] == "update"


def test_plan_file_round_trips_the_new_columns_and_reads_version_1() -> None:
    plan = plan_with("45", memory(("sub-1", 35.0, AT)), teacher_override="sis-wins")
    back = loads_plan(dumps_plan(plan, key=bytes(32)))
    pd.testing.assert_frame_equal(plan.rows, back.rows, check_exact=True)
    # a version-1 file: a version-2 one (written by that writer) without the columns version 2 added
    old = json.loads(
        (Path(__file__).parent / "data" / "plan_before_read_at.json").read_text(encoding="utf-8")
    )
    old["schema_version"] = 1
    for r in old["rows"]:
        for k in ("excuse", "last_written_points", "override_policy"):
            del r[k]
    v1 = plan_from_dict(old)
    assert v1.schema_version == 1
    assert (bool(v1.rows["excuse"][0]), v1.rows["override_policy"][0]) == (False, "")
    assert math.isnan(v1.rows["last_written_points"][0])


# --- excused marks ------------------------------------------------------------------------------
def _validated(*points: str, marks: list[str]) -> pd.DataFrame:
    """One row per student (000123, 000124, …) so that rows are not duplicates of each other."""
    frame = desired_frame([(C, "Unit 1 Quiz", f"{123 + i:06d}", p) for i, p in enumerate(points)])
    return validate(frame, PolicySettings(excused_marks=marks))


def test_excused_marks_are_off_by_default() -> None:
    out = _validated("EX", marks=[])
    assert (out["reason"][0], bool(out["excuse"][0])) == ("invalid_points", False)


def test_an_excused_mark_excuses_case_insensitively() -> None:
    out = _validated("ex", " EX ", "Exc", marks=["EX"])
    assert out["excuse"].tolist() == [True, True, False]
    assert out["reason"].tolist() == ["", "", "invalid_points"]
    assert math.isnan(out["desired_points"][0]) and not out["clear"][0]
    assert "excuses the submission" in out["note"][0]


def test_excuse_and_a_grade_for_the_same_student_conflict() -> None:
    frame = desired_frame([(*ADA_UNIT1, "EX"), (*ADA_UNIT1, "45")])
    out = validate(frame, PolicySettings(excused_marks=["EX"]))
    assert out["reason"].tolist() == ["duplicate_conflict", "duplicate_conflict"]


def test_excuse_plan_rules() -> None:
    rows = [
        {
            "class_key": C,
            "assignment_key": "Unit 1 Quiz",
            "student_key": s,
            "points_raw": "EX",
            "excuse": True,
        }
        for s in ("000123", "000125", "000127")
    ]
    plan = build_plan(
        desired_frame(rows),
        school().snapshot(),
        settings(),
        created_at=CREATED_AT,
        graph_base_url=GRAPH,
        inputs=[],
    )
    got = [(r["action"], r["reason"]) for r in plan.rows.to_dict("records")]
    # Ada (graded) and Fay (no points outcome) are excused; Cat is excused already
    assert got == [("excuse", ""), ("noop", "already_excused"), ("excuse", "")]
    ops = plan.operations()
    assert [(o.action, o.submission_id, o.desired_points) for o in ops] == [
        (Action.EXCUSE, "sub-1", None),
        (Action.EXCUSE, "sub-4", None),
    ]
