"""The plan rules that follow Graph v1.0's semantics, pure (no emulator): assignment states, the
assigned namesake, excusing that would delete teacher work, an excuse still on its way, and points
compared as the Single Teams stores (``gradesync.single``)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from gradesync.config import Settings
from gradesync.models import MEMORY_COLUMNS, TeacherWork
from gradesync.outcome import Tally, planned_statuses
from gradesync.plan import build_plan
from gradesync.single import MAX_PRECISION, as_stored, decimal, equal, key, lost, same, stored

from .builders import CREATED_AT, GRAPH, Tenant, desired_frame, outcome, plan_of, settings

C = "SEC-1001"
WHERE = '"Unit 1 Quiz" in SEC-1001 (Algebra I - P1)'


def one(status: str = "assigned", *, work: int = 0, points: float | None = 40.0, sub_status: str = "working"):
    t = Tenant()
    c = t.klass(C, "Algebra I - P1", class_id="c1")
    a = t.assignment(c, "Unit 1 Quiz", max_points=50, assignment_id="a1", status=status)
    ada = t.student(c, "Ada Lovelace", user_id="u-ada", sis="000123")
    t.submission(a, ada, points=points, work=work, status=sub_status)
    return t


EXCUSE = {"class_key": C, "assignment_key": "Unit 1 Quiz", "student_key": "000123", "points_raw": "EX"}


# --- assignment states ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "said"),
    [
        ("draft", "is a draft in Teams: students have no submissions to grade until a teacher assigns it"),
        ("scheduled", "is scheduled in Teams: its submissions are created when it is assigned"),
        ("inactive", "is inactive (closed) in Teams: it takes no grades; a teacher can reopen it (Activate)"),
        ("unknownFutureValue", "has a status Graph did not name (unknownFutureValue: most likely inactive"),
        ("someNewState", 'has the status "someNewState" in Teams; gradesync writes grades only to assigned'),
    ],
)
def test_only_assigned_assignments_are_written(status: str, said: str) -> None:
    plan = plan_of(one(status), [(C, "Unit 1 Quiz", "000123", "45")])
    action, reason, message = outcome(plan)
    assert (action, reason) == ("reject", "assignment_not_assigned")
    assert message == f"{WHERE} {said}" or message.startswith(f"{WHERE} {said}")


def test_a_published_assignment_is_carried_over_not_no_submission() -> None:
    t = one("published")
    t.submissions.clear()  # Teams is still creating them
    plan = plan_of(t, [(C, "Unit 1 Quiz", "000123", "45")])
    assert outcome(plan)[:2] == ("noop", "assignment_publishing")
    assert "carried over, the next run writes it" in outcome(plan)[2]
    assert planned_statuses(plan.rows).tolist() == ["carried_over"]
    assert Tally.of(plan.rows).carried_over == 1


def test_the_assigned_namesake_wins_over_a_draft_copy_and_the_row_says_so() -> None:
    t = one()
    t.assignment("c1", "Unit 1 Quiz", max_points=50, assignment_id="a-copy", status="draft")
    plan = plan_of(t, [(C, "Unit 1 Quiz", "000123", "45")])
    row = plan.rows.iloc[0]
    assert (row["action"], row["assignment_id"]) == ("update", "a1")
    assert row["note"] == (
        'Teams has more than one assignment named "Unit 1 Quiz"; the assigned one is used (the other: draft)'
    )


def test_two_assigned_namesakes_stay_ambiguous() -> None:
    t = one()
    t.assignment("c1", "Unit 1 Quiz", max_points=50, assignment_id="a2")
    assert outcome(plan_of(t, [(C, "Unit 1 Quiz", "000123", "45")]))[1] == "ambiguous_assignment"


def test_an_exact_draft_name_wins_over_an_assigned_loose_match() -> None:
    """Name first, then state: the row names the draft exactly, so the draft it is (and refused)."""
    t = one()
    t.assignment("c1", "unit 1 quiz", max_points=50, assignment_id="a-draft", status="draft")
    plan = plan_of(t, [(C, "unit 1 quiz", "000123", "45")])
    assert outcome(plan)[1] == "assignment_not_assigned"


# --- excusing never destroys teacher work silently -------------------------------------------------
@pytest.mark.parametrize(
    ("work", "lost_text"),
    [
        (TeacherWork.FEEDBACK_DRAFT, "the feedback not yet returned"),
        (TeacherWork.FEEDBACK_RETURNED, "the feedback already returned"),
        (TeacherWork.RUBRIC | TeacherWork.RUBRIC_DRAFT, "the filled rubric"),
        (TeacherWork.FEEDBACK_DRAFT | TeacherWork.RUBRIC, "the feedback not yet returned, the filled rubric"),
        (TeacherWork.FEEDBACK_FILES, "the feedback files"),
    ],
)
def test_an_excuse_that_would_delete_teacher_work_is_refused_and_names_it(work: int, lost_text: str) -> None:
    rows = [{**EXCUSE, "excuse": True}]
    plan = plan_of(one(work=int(work)), rows, excused_marks=["EX"])
    action, reason, message = outcome(plan)
    assert (action, reason) == ("reject", "excuse_would_delete_feedback")
    assert message == (
        f'excusing student "000123" (Ada Lovelace) from {WHERE} would delete {lost_text} in Teams; keep '
        'the teacher\'s work (grade or clear the row instead), or set [policy] excuse_feedback = "delete"'
    )
    allowed = plan_of(one(work=int(work)), rows, excused_marks=["EX"], excuse_feedback="delete")
    assert outcome(allowed)[:2] == ("excuse", "")
    assert allowed.rows.iloc[0]["note"] == (
        f'excusing deletes {lost_text} in Teams ([policy] excuse_feedback = "delete")'
    )


def test_an_excuse_of_a_submission_without_teacher_work_goes_ahead() -> None:
    plan = plan_of(one(work=0), [{**EXCUSE, "excuse": True}], excused_marks=["EX"])
    assert outcome(plan)[:2] == ("excuse", "")


def _memory(excused_at: str | None, written_at: str | None = None) -> pd.DataFrame:
    return pd.DataFrame(
        [{"submission_id": "sub-1", "last_written_points": math.nan, "last_written_at": written_at,
          "excused_at": excused_at}],
        columns=list(MEMORY_COLUMNS),
    ).astype(MEMORY_COLUMNS)  # fmt: skip


@pytest.mark.parametrize(
    ("excused_at", "expected"),
    [
        ("2024-06-01T11:40:00Z", ("noop", "already_excused")),  # 20 minutes before the plan: on its way
        ("2024-06-01T08:00:00Z", ("excuse", "")),  # hours before: Teams' status is believed
        (None, ("excuse", "")),
    ],
)
def test_an_excuse_gradesync_sent_lately_is_not_sent_again(excused_at: str | None, expected: tuple) -> None:
    desired = desired_frame([{**EXCUSE, "excuse": True}])
    plan = build_plan(
        desired,
        one().snapshot(),
        settings(excused_marks=["EX"]),
        created_at=CREATED_AT,
        graph_base_url=GRAPH,
        inputs=[],
        memory=_memory(excused_at),
    )
    assert outcome(plan)[:2] == expected
    if expected[0] == "noop":
        assert (
            "Teams does not show it yet (excusing takes effect after a while): not sent again"
            in outcome(plan)[2]
        )
        assert plan.rows.iloc[0]["last_written_points"] != plan.rows.iloc[0]["last_written_points"]  # NaN


def test_a_remembered_excuse_is_no_remembered_grade() -> None:
    """Only excused, never graded by gradesync: a grade row is an ordinary change, no teacher_override."""
    plan = build_plan(
        desired_frame([(C, "Unit 1 Quiz", "000123", "45")]),
        one().snapshot(),
        settings(),
        created_at=CREATED_AT,
        graph_base_url=GRAPH,
        inputs=[],
        memory=_memory("2024-05-01T10:00:00Z"),
    )
    assert outcome(plan)[:2] == ("update", "")


# --- points are Single -------------------------------------------------------------------------------
def test_a_grade_teams_holds_as_single_is_the_same_grade_at_every_precision() -> None:
    for precision in range(MAX_PRECISION + 1):
        t = one(points=as_stored([47.3])[0])  # what Teams holds after 47.3 was written
        plan = plan_of(t, [(C, "Unit 1 Quiz", "000123", "47.3")], precision=precision)
        assert outcome(plan)[0] == "noop", precision


def test_a_large_grade_single_cannot_hold_is_compared_as_stored_and_noted() -> None:
    t = Tenant()
    c = t.klass(C, "Algebra I - P1", class_id="c1")
    a = t.assignment(c, "Unit 1 Quiz", max_points=5_000_000, assignment_id="a1")
    ada = t.student(c, "Ada Lovelace", user_id="u-ada", sis="000123")
    t.submission(a, ada, points=stored(1234567.89))  # Teams holds 1234567.875
    same_grade = plan_of(t, [(C, "Unit 1 Quiz", "000123", "1234567.89")])
    assert outcome(same_grade)[0] == "noop"  # no nightly rewrite of a value Teams cannot hold
    other = plan_of(t, [(C, "Unit 1 Quiz", "000123", "1234566.01")])
    assert outcome(other)[0] == "update"
    assert (
        other.rows.iloc[0]["note"]
        == "1234566.01 is kept as 1234566 in Teams (points are a 32-bit float there)"
    )


def test_single_helpers() -> None:
    assert stored(87.3) == 87.30000305175781 and stored(None) is None
    assert same(87.3, 87.30000305175781) and not same(87.3, 87.31) and same(None, math.nan)
    assert equal([87.3, np.nan, 1.0], [87.30000305175781, np.nan, 2.0]).tolist() == [True, True, False]
    assert key([87.30000305175781], 4).tolist() == [87.3]
    assert lost([1234.5678, 87.3, np.nan], 4).tolist() == [True, False, False]
    assert decimal([87.30000305175781, 100.0, np.nan])[:2].tolist() == [87.3, 100.0]


def test_precision_cannot_exceed_what_single_holds() -> None:
    assert Settings.model_validate({"policy": {"precision": MAX_PRECISION}}).policy.precision == 4
    with pytest.raises(ValidationError, match="Teams keeps points as a Single"):
        Settings.model_validate({"policy": {"precision": MAX_PRECISION + 1}})
