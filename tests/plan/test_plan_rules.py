"""build_plan, table style: one input row → the exact action, reason and message.

The tenant (``school``) has, in SEC-1001 "Algebra I - P1":
  assignments "Unit 1 Quiz" (max 50), "Essay" (max 100), "Reading Log" (ungraded), "Project" (group),
  "Quiz" and "quiz " (ambiguous when matched loosely);
  students Ada 000123 (Unit 1: 40, Essay: 80), Bob 000124 (Unit 1: outcome with null points),
  Cat 000125 (Unit 1: excused, 10), Dan 000126 (no submissions), Fay 000127 (Unit 1 and Essay: no
  points outcome), Gus and Hal (both twins@school.edu);
and Eve 000555 in SEC-2002 "Biology - P2"; the key SEC-DUP names two classes.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from gradesync.models import PLAN_COLUMNS, REJECT_REASONS_NOOP, Action, Operation, ReasonCode, Snapshot
from gradesync.plan import (
    MESSAGE_CREATE,
    MESSAGE_EXCUSE,
    MESSAGE_SAME,
    MESSAGE_UPDATE,
    apply_operations,
    build_plan,
    plan_is_refused,
    summarize,
)

from .builders import CREATED_AT, GRAPH, Tenant, desired_frame, outcome, plan_of, settings

C = "SEC-1001"
ALG = "SEC-1001 (Algebra I - P1)"


def school() -> Tenant:
    t = Tenant()
    c1 = t.klass(C, "Algebra I - P1", class_id="c1")
    c2 = t.klass("SEC-2002", "Biology - P2", class_id="c2")
    t.klass("SEC-DUP", "Dup A", class_id="d1")
    t.klass("SEC-DUP", "Dup B", class_id="d2")
    unit1 = t.assignment(c1, "Unit 1 Quiz", max_points=50, assignment_id="a-unit1")
    essay = t.assignment(c1, "Essay", max_points=100, assignment_id="a-essay")
    t.assignment(c1, "Reading Log", max_points=None, assignment_id="a-log")
    project = t.assignment(c1, "Project", max_points=20, assignment_id="a-project")
    t.assignment(c1, "Quiz", assignment_id="a-quiz1")
    t.assignment(c1, "quiz ", assignment_id="a-quiz2")
    bio = t.assignment(c2, "Unit 1 Quiz", max_points=50, assignment_id="b-unit1")
    ada = t.student(c1, "Ada Lovelace", user_id="u-ada", sis="000123", mail="ada@school.edu")
    bob = t.student(c1, "Bob Byron", user_id="u-bob", sis="000124")
    cat = t.student(c1, "Cat Cole", user_id="u-cat", sis="000125")
    t.student(c1, "Dan Dale", user_id="u-dan", sis="000126")
    fay = t.student(c1, "Fay Fox", user_id="u-fay", sis="000127")
    gus = t.student(c1, "Gus Gale", user_id="u-gus", sis="000128", mail="twins@school.edu")
    hal = t.student(c1, "Hal Gale", user_id="u-hal", sis="000129", mail="twins@school.edu")
    t.student(c1, "Ms Teacher", user_id="u-teach", upn="teacher@school.edu", role="teacher")
    eve = t.student(c2, "Eve Evans", user_id="u-eve", sis="000555")
    t.submission(unit1, ada, points=40)
    t.submission(unit1, bob, points=None)
    t.submission(unit1, cat, points=10, status="excused")
    t.submission(unit1, fay)
    t.submission(unit1, gus, points=30)
    t.submission(unit1, hal, points=31)
    t.submission(essay, ada, points=80)
    t.submission(essay, fay)
    t.submission(project, None, points=15, group=True)
    t.submission(bio, eve, points=44)
    return t


CASES = [
    # (class, assignment, student, points) → (action, reason, message)
    ((C, "Unit 1 Quiz", "000123", "45"), ("update", "", MESSAGE_UPDATE)),
    ((C, "Unit 1 Quiz", "ada@school.edu", "45"), ("update", "", MESSAGE_UPDATE)),  # by mail
    ((C, "Unit 1 Quiz", "000124", "30"), ("update", "", MESSAGE_UPDATE)),  # outcome with null points
    ((C, "Unit 1 Quiz", "000127", "30"), ("create", "", MESSAGE_CREATE)),  # no points outcome yet
    ((C, "Essay", "000123", "80.004"), ("noop", "", MESSAGE_SAME)),  # equal at 2 decimals
    ((C, "essay", "000123", "81"), ("update", "", MESSAGE_UPDATE)),  # assignment matched loosely
    ((C, "Essay", "000123", "CLEAR"), ("update", "", MESSAGE_UPDATE)),
    (
        (C, "Essay", "000127", "CLEAR"),
        ("noop", "already_clear", 'no grade to clear for "000127" (Fay Fox) on "Essay"'),
    ),
    (
        ("SEC-404", "Unit 1 Quiz", "000123", "45"),
        ("reject", "unknown_class", 'class "SEC-404" was not found in Teams (looked up by externalId)'),
    ),
    (
        ("SEC-DUP", "Unit 1 Quiz", "000123", "45"),
        ("reject", "ambiguous_class", 'class "SEC-DUP" matches 2 classes in Teams: Dup A, Dup B'),
    ),
    (
        (C, "Homework 9", "000123", "45"),
        ("reject", "unknown_assignment", f'no assignment "Homework 9" in {ALG}'),
    ),
    (
        (C, "QUIZ", "000123", "5"),
        (
            "reject",
            "ambiguous_assignment",
            f'assignment "QUIZ" matches more than one assignment in {ALG}; '
            "give them different names in Teams or use the assignment id",
        ),
    ),
    (
        (C, "Reading Log", "000123", "5"),
        ("reject", "ungraded_assignment", f'"Reading Log" in {ALG} is not graded with points'),
    ),
    (
        (C, "Unit 1 Quiz", "000999", "45"),
        (
            "reject",
            "unknown_student",
            'student "000999" was not found in Teams (looked up by sis_id, student_number, upn, mail)',
        ),
    ),
    (
        (C, "Unit 1 Quiz", "teacher@school.edu", "45"),
        (
            "reject",
            "unknown_student",
            'student "teacher@school.edu" was not found in Teams '
            "(looked up by sis_id, student_number, upn, mail)",
        ),
    ),
    (
        (C, "Unit 1 Quiz", "twins@school.edu", "45"),
        ("reject", "ambiguous_student", f'student "twins@school.edu" matches more than one student in {ALG}'),
    ),
    (
        (C, "Unit 1 Quiz", "000555", "45"),
        ("reject", "not_in_class", f'student "000555" is not on the roster of {ALG}'),
    ),
    (
        (C, "Unit 1 Quiz", "000126", "45"),
        (
            "reject",
            "no_submission",
            f'student "000126" (Dan Dale) has no submission for "Unit 1 Quiz" in {ALG}; '
            "the assignment may not be assigned to them",
        ),
    ),
    (
        (C, "Project", "000123", "15"),
        (
            "reject",
            "group_submission",
            f'"Project" in {ALG} is a group assignment; its grades belong to the group\'s submission, '
            "which gradesync does not write",
        ),
    ),
    (
        (C, "Unit 1 Quiz", "000125", "12"),
        (
            "reject",
            "submission_excused",
            f'student "000125" (Cat Cole) is excused from "Unit 1 Quiz" in {ALG} (policy.excused = "reject")',
        ),
    ),
    (
        (C, "Unit 1 Quiz", "000123", "87"),
        ("reject", "above_max_points", '87 is above the maximum of 50 points for "Unit 1 Quiz"'),
    ),
    (
        (C, "Unit 1 Quiz", "000123", "50.004"),  # equal to the maximum at 2 decimals: allowed
        ("update", "", MESSAGE_UPDATE),
    ),
    (
        {
            "class_key": C,
            "assignment_key": "Unit 1 Quiz",
            "student_key": "000123",
            "points_raw": "45",
            "points_possible": 40.0,
        },
        (
            "reject",
            "points_possible_mismatch",
            'the file gives 40 points possible for "Unit 1 Quiz", but Teams has a maximum of 50 points; '
            "make the two maxima agree (in Teams or in the gradebook), or let the mapping scale the points "
            '([values] maximum_mismatch = "scale")',
        ),
    ),
    (
        {
            "class_key": C,
            "assignment_key": "Unit 1 Quiz",
            "student_key": "000123",
            "points_raw": "45",
            "points_possible": 50.0,
        },
        ("update", "", MESSAGE_UPDATE),
    ),
    # read-stage reasons are kept, even for rows that would resolve
    ((C, "Unit 1 Quiz", "000123", ""), ("noop", "blank_points", "blank points cell: no change")),
    ((C, "Unit 1 Quiz", "000123", "abc"), ("reject", "invalid_points", '"abc" is not a number')),
    (
        {
            "class_key": "",
            "assignment_key": "Unit 1 Quiz",
            "student_key": "000123",
            "points_raw": "4",
            "reason": "missing_identifier",
            "message": "the class cell is empty",
        },
        ("reject", "missing_identifier", "the class cell is empty"),
    ),
    (
        {
            "class_key": C,
            "assignment_key": "Unit 1 Quiz",
            "student_key": "000123",
            "points_raw": "4",
            "reason": "duplicate_conflict",
            "message": "rows 2 and 3 disagree",
        },
        ("reject", "duplicate_conflict", "rows 2 and 3 disagree"),
    ),
    (
        {
            "class_key": C,
            "assignment_key": "Unit 1 Quiz",
            "student_key": "000123",
            "points_raw": "4",
            "reason": "duplicate_identical",
            "message": "same as row 2",
        },
        ("noop", "duplicate_identical", "same as row 2"),
    ),
    # excused marks ([policy] excused_marks; the read stage sets ``excuse``)
    (
        {
            "class_key": C,
            "assignment_key": "Unit 1 Quiz",
            "student_key": "000123",
            "points_raw": "EX",
            "excuse": True,
        },
        ("excuse", "", MESSAGE_EXCUSE),
    ),
    (
        {
            "class_key": C,
            "assignment_key": "Unit 1 Quiz",
            "student_key": "000125",
            "points_raw": "EX",
            "excuse": True,
        },
        (
            "noop",
            "already_excused",
            f'student "000125" (Cat Cole) is already excused from "Unit 1 Quiz" in {ALG}',
        ),
    ),
]


@pytest.mark.parametrize(
    ("row", "expected"), CASES, ids=[f"{i}-{c[1][1] or c[1][0]}" for i, c in enumerate(CASES)]
)
def test_one_row(row: tuple | dict, expected: tuple[str, str, str]) -> None:
    plan = plan_of(school(), [row])
    r = plan.rows.iloc[0]
    assert (r["action"], r["reason"], r["message"]) == expected


# the reasons the planner itself gives (the read stage gives the others; see the next test)
PLANNER_REASONS = {
    "unknown_class",
    "ambiguous_class",
    "unknown_assignment",
    "ambiguous_assignment",
    "ungraded_assignment",
    "unknown_student",
    "ambiguous_student",
    "not_in_class",
    "no_submission",
    "group_submission",
    "submission_excused",
    "points_possible_mismatch",
    "above_max_points",
    "duplicate_conflict",
    "duplicate_identical",
    "already_clear",
    "already_excused",
}


def test_every_planner_reason_and_action_is_covered() -> None:
    assert {r.value for r in ReasonCode} >= PLANNER_REASONS
    assert {e[1] for _, e in CASES} | {"duplicate_conflict", "duplicate_identical"} >= PLANNER_REASONS
    assert {a.value for a in Action} <= {e[0] for _, e in CASES}


@pytest.mark.parametrize("reason", list(ReasonCode))
def test_a_read_stage_reason_is_never_overwritten(reason: ReasonCode) -> None:
    """Whatever the read stage said stays, even on a row the planner could resolve and write."""
    row = {
        "class_key": C,
        "assignment_key": "Unit 1 Quiz",
        "student_key": "000123",
        "points_raw": "45",
        "reason": reason.value,
        "message": "what the reader said",
    }
    expected = "noop" if reason in REJECT_REASONS_NOOP else "reject"
    assert outcome(plan_of(school(), [row])) == (expected, reason.value, "what the reader said")


def test_write_rows_carry_what_the_executor_needs() -> None:
    plan = plan_of(
        school(),
        [
            (C, "Unit 1 Quiz", "000123", "45"),
            (C, "Unit 1 Quiz", "000127", "30"),
            (C, "Essay", "000123", "CLEAR"),
        ],
    )
    assert list(plan.rows.columns) == list(PLAN_COLUMNS)
    assert {c: str(t) for c, t in plan.rows.dtypes.items()} == PLAN_COLUMNS
    assert plan.operations() == [
        Operation(
            0, Action.UPDATE, "c1", "a-unit1", "sub-1", "out-sub-1", 45.0, 40.0, "2024-05-01T10:00:00Z"
        ),
        Operation(1, Action.CREATE, "c1", "a-unit1", "sub-4", None, 30.0, None, None),
        Operation(
            2, Action.UPDATE, "c1", "a-essay", "sub-7", "out-sub-7", None, 80.0, "2024-05-01T10:00:00Z"
        ),
    ]
    r = plan.rows.iloc[0]
    assert (r["class_name"], r["assignment_name"], r["student_name"], r["user_id"], r["max_points"]) == (
        "Algebra I - P1",
        "Unit 1 Quiz",
        "Ada Lovelace",
        "u-ada",
        50.0,
    )
    assert plan.rows["decrease"].tolist() == [False, False, True]  # a clear of an existing grade lowers it
    assert (plan.created_at, plan.graph_base_url, plan.config_hash) == (
        CREATED_AT,
        GRAPH,
        settings().config_hash(),
    )


def test_missing_values_are_none_in_text_columns() -> None:
    plan = plan_of(school(), [("SEC-404", "x", "y", "1")])
    r = plan.rows.iloc[0]
    for col in ("class_id", "class_name", "assignment_id", "user_id", "submission_id", "outcome_id"):
        assert r[col] is None
    assert math.isnan(r["before_points"]) and math.isnan(r["max_points"])


def test_decrease_marks_lower_grades_only() -> None:
    plan = plan_of(school(), [(C, "Essay", "000123", "79.5"), (C, "Unit 1 Quiz", "000123", "40.5")])
    assert plan.rows["decrease"].tolist() == [True, False]


@pytest.mark.parametrize(
    ("precision", "points", "expected"),
    [
        (2, "40.4", "update"),
        (0, "40.4", "noop"),
        (0, "40.6", "update"),
        (2, "40.004", "noop"),
        (3, "40.004", "update"),
    ],
)
def test_precision(precision: int, points: str, expected: str) -> None:
    plan = plan_of(school(), [(C, "Unit 1 Quiz", "000123", points)], precision=precision)
    assert plan.rows["action"].tolist() == [expected]


def test_policies_allow_above_max_and_excused_with_a_note() -> None:
    rows = [(C, "Unit 1 Quiz", "000123", "55"), (C, "Unit 1 Quiz", "000125", "12")]
    plan = plan_of(school(), rows, above_max="allow", excused="allow")
    assert plan.rows[["action", "reason"]].values.tolist() == [["update", ""], ["update", ""]]
    assert plan.rows["note"].tolist() == [
        '55 is above the maximum of 50 points for "Unit 1 Quiz"; allowed by policy.above_max = "allow"',
        "the submission is excused; graded anyway by policy",
    ]


def test_first_reason_wins_and_read_notes_are_kept() -> None:
    row = {
        "class_key": C,
        "assignment_key": "Unit 1 Quiz",
        "student_key": "000125",
        "points_raw": "99",
        "note": "rounded to 2 decimals",
    }
    plan = plan_of(school(), [row])  # excused comes before above the maximum
    assert plan.rows[["reason", "note"]].values.tolist() == [["submission_excused", "rounded to 2 decimals"]]
    plan = plan_of(school(), [row], excused="allow", above_max="allow")
    assert plan.rows["note"].iloc[0] == (
        "rounded to 2 decimals; the submission is excused; graded anyway by policy; "
        '99 is above the maximum of 50 points for "Unit 1 Quiz"; allowed by policy.above_max = "allow"'
    )


# ---------------------------------------------------------------------------------------------
# two input rows reaching the same submission
# ---------------------------------------------------------------------------------------------
def test_duplicate_identical_keeps_the_first_row() -> None:
    plan = plan_of(
        school(),
        [
            (C, "Unit 1 Quiz", "000123", "45"),
            (C, "Unit 1 Quiz", "ada@school.edu", "45.00"),
            (C, "unit 1 quiz", "ADA@school.edu", "45"),
        ],
    )
    assert plan.rows[["action", "reason"]].values.tolist() == [
        ["update", ""],
        ["noop", "duplicate_identical"],
        ["noop", "duplicate_identical"],
    ]
    assert plan.rows["message"].iloc[1] == (
        'the same grade as grades.csv row 2 for "ada@school.edu" (Ada Lovelace) on "Unit 1 Quiz"; '
        "applied once"
    )
    assert len(plan.operations()) == 1


def test_duplicate_conflict_rejects_every_row() -> None:
    plan = plan_of(
        school(),
        [
            (C, "Unit 1 Quiz", "000123", "45"),
            (C, "Unit 1 Quiz", "000124", "20"),
            (C, "Unit 1 Quiz", "ada@school.edu", "46"),
            (C, "Unit 1 Quiz", "Ada@School.edu", "CLEAR"),
        ],
    )
    assert plan.rows[["action", "reason"]].values.tolist() == [
        ["reject", "duplicate_conflict"],
        ["update", ""],
        ["reject", "duplicate_conflict"],
        ["reject", "duplicate_conflict"],
    ]
    assert plan.rows["message"].iloc[0] == (
        'conflicting grades for "000123" (Ada Lovelace) on "Unit 1 Quiz": 45 (grades.csv row 2), '
        "46 (grades.csv row 4), clear (grades.csv row 5); none is applied"
    )


def test_a_rejected_row_does_not_make_a_duplicate() -> None:
    plan = plan_of(school(), [(C, "Unit 1 Quiz", "000123", "99"), (C, "Unit 1 Quiz", "ada@school.edu", "45")])
    assert plan.rows[["action", "reason"]].values.tolist() == [["reject", "above_max_points"], ["update", ""]]


# ---------------------------------------------------------------------------------------------
# strict mode, summary, roster gaps, ordering
# ---------------------------------------------------------------------------------------------
def test_strict_builds_the_plan_and_refuses_it() -> None:
    rows = [(C, "Unit 1 Quiz", "000123", "45"), (C, "Unit 1 Quiz", "000999", "45")]
    strict = plan_of(school(), rows, strict=True)
    assert strict.strict and plan_is_refused(strict)
    assert strict.rows["action"].tolist() == ["update", "reject"]
    assert not plan_is_refused(plan_of(school(), rows))  # tolerant: rejected rows are only reported
    assert not plan_is_refused(plan_of(school(), rows[:1], strict=True))  # strict and clean
    assert not plan_is_refused(plan_of(school(), [(C, "Unit 1 Quiz", "000123", "")], strict=True))  # noop


def test_summarize() -> None:
    plan = plan_of(
        school(),
        [
            (C, "Unit 1 Quiz", "000123", "45"),
            (C, "Unit 1 Quiz", "000127", "30"),
            (C, "Essay", "000123", "70"),
            (C, "Essay", "000999", "1"),
            ("SEC-404", "Essay", "1", "1"),
            (C, "Essay", "000123", ""),
        ],
        strict=True,
    )
    s = summarize(plan)
    assert s["rows"] == 6
    assert s["actions"] == {"update": 2, "create": 1, "noop": 1, "reject": 2, "excuse": 0}
    assert s["reasons"] == {"blank_points": 1, "unknown_class": 1, "unknown_student": 1}
    assert s["decreases"] == 1
    assert (s["strict"], s["refused"]) == (True, True)
    assert s["by_class"] == [
        {
            "class_key": C,
            "class_name": "Algebra I - P1",
            "update": 2,
            "create": 1,
            "noop": 1,
            "reject": 1,
            "excuse": 0,
            "rows": 5,
        },
        {
            "class_key": "SEC-404",
            "class_name": None,
            "update": 0,
            "create": 0,
            "noop": 0,
            "reject": 1,
            "excuse": 0,
            "rows": 1,
        },
    ]
    assert [(a["class_key"], a["assignment_key"], a["rows"]) for a in s["by_assignment"]] == [
        (C, "Essay", 3),
        (C, "Unit 1 Quiz", 2),
        ("SEC-404", "Essay", 1),
    ]


def test_roster_gaps_list_students_without_a_row() -> None:
    # Unit 1 Quiz is touched (Ada; Cat's row is rejected but present); Essay and Biology are not.
    plan = plan_of(school(), [(C, "Unit 1 Quiz", "000123", "45"), (C, "Unit 1 Quiz", "000125", "12")])
    assert plan.roster_gaps == [
        {
            "class_id": "c1",
            "class_name": "Algebra I - P1",
            "assignment_id": "a-unit1",
            "assignment_name": "Unit 1 Quiz",
            "user_id": u,
            "student_name": name,
            "sis_id": sis,
            "current_points": pts,
        }
        for u, name, sis, pts in [
            ("u-bob", "Bob Byron", "000124", None),
            ("u-fay", "Fay Fox", "000127", None),
            ("u-gus", "Gus Gale", "000128", 30.0),
            ("u-hal", "Hal Gale", "000129", 31.0),
        ]
    ]
    assert plan_of(school(), [(C, "Homework", "000123", "1")]).roster_gaps == []


def test_rows_come_out_ordered_by_row_key() -> None:
    desired = desired_frame([(C, "Unit 1 Quiz", "000123", "45"), (C, "Essay", "000123", "70")])
    shuffled = desired.iloc[::-1].reset_index(drop=True)
    plan = build_plan(
        shuffled, school().snapshot(), settings(), created_at=CREATED_AT, graph_base_url=GRAPH, inputs=[]
    )
    assert plan.rows["row_key"].tolist() == [0, 1]
    assert plan.rows["assignment_key"].tolist() == ["Unit 1 Quiz", "Essay"]


def test_empty_input_and_empty_snapshot() -> None:
    plan = build_plan(
        desired_frame([]),
        Snapshot.empty(),
        settings(),
        created_at=CREATED_AT,
        graph_base_url=GRAPH,
        inputs=[],
    )
    assert plan.rows.empty and list(plan.rows.columns) == list(PLAN_COLUMNS)
    assert plan.roster_gaps == [] and summarize(plan)["rows"] == 0
    plan = plan_of(Snapshot.empty(), [(C, "Unit 1 Quiz", "000123", "45")])
    assert plan.rows["reason"].tolist() == ["unknown_class"]


def test_text_columns_of_pandas_str_dtype_are_accepted() -> None:
    """The read stage may hand over pandas' ``str`` columns; the plan is the same."""
    rows = [(C, "Unit 1 Quiz", "000123", "45"), (C, "Essay", "000124", "")]
    desired = desired_frame(rows)
    as_str = desired.astype(
        dict.fromkeys(
            (
                "class_key",
                "assignment_key",
                "student_key",
                "points_raw",
                "source_file",
                "reason",
                "message",
                "note",
            ),
            "str",
        )
    )
    a = build_plan(
        desired, school().snapshot(), settings(), created_at=CREATED_AT, graph_base_url=GRAPH, inputs=[]
    )
    b = build_plan(
        as_str, school().snapshot(), settings(), created_at=CREATED_AT, graph_base_url=GRAPH, inputs=[]
    )
    pd.testing.assert_frame_equal(a.rows, b.rows)


def test_apply_operations_simulates_the_writes() -> None:
    t = school()
    snap = t.snapshot()
    plan = plan_of(
        snap,
        [
            (C, "Unit 1 Quiz", "000123", "45"),
            (C, "Unit 1 Quiz", "000127", "30"),
            (C, "Essay", "000123", "CLEAR"),
        ],
    )
    after = apply_operations(snap, plan)
    subs = after.submissions.set_index("submission_id")
    assert subs.loc["sub-1", "points"] == 45.0
    assert (subs.loc["sub-4", "points"], subs.loc["sub-4", "outcome_id"]) == (30.0, "created-sub-4")
    assert np.isnan(subs.loc["sub-7", "points"]) and subs.loc["sub-7", "outcome_id"] == "out-sub-7"
    assert subs.loc["sub-1", "last_modified"] == CREATED_AT
    assert snap.submissions.loc[0, "points"] == 40.0  # the input snapshot is untouched
    again = plan_of(
        after,
        [
            (C, "Unit 1 Quiz", "000123", "45"),
            (C, "Unit 1 Quiz", "000127", "30"),
            (C, "Essay", "000123", "CLEAR"),
        ],
    )
    assert again.rows[["action", "reason"]].values.tolist() == [
        ["noop", ""],
        ["noop", ""],
        ["noop", "already_clear"],
    ]
