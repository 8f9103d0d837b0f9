"""Students found through a list of identifiers (Student ID, then Username, then Email), percent twins,
and a declared maximum scaled: the plan rules on hand-built rows (pure, no emulator).

The identifier lists are what the read stage hands over for a mapping's ``[[student.identifiers]]``
(``models.DESIRED_COLUMNS["student_ids"]``): each identifier keeps its place, blank or not.
"""

from __future__ import annotations

from typing import Any

from tests.plan.builders import Tenant, outcome, plan_of

C = "SEC-1001"
ID_PART, ID_SEP = "\x1e", "\x1f"


def ids(student_id: str = "", username: str = "", email: str = "") -> str:
    parts = [("Student ID", "sis_id", student_id), ("Username", "upn", username), ("Email", "mail", email)]
    return ID_SEP.join(f"{h}{ID_PART}{k}{ID_PART}{v}" for h, k, v in parts)


def school() -> Tenant:
    t = Tenant()
    cid = t.klass(C, "Algebra I - P1")
    other = t.klass("SEC-1002", "Biology - P2")
    quiz = t.assignment(cid, "Unit 1 Quiz", max_points=10)
    ana = t.student(cid, "Ana Moreau", sis="000101", upn="ana@contoso.edu", mail="ana@contoso.edu")
    noah = t.student(cid, "Noah Lopez", upn="noah@contoso.edu", mail="noah.l@contoso.edu")
    t.student(cid, "Twin One", sis="000200", upn="twin1@contoso.edu")
    t.student(cid, "Twin Two", sis="000200", upn="twin2@contoso.edu")
    t.student(other, "Far Away", sis="000300", upn="far@contoso.edu")
    for s in (ana, noah):
        t.submission(quiz, s, points=5)
    return t


def row(student_ids: str, key: str, points: str = "8", **more: Any) -> dict[str, Any]:
    return {
        "class_key": C,
        "assignment_key": "Unit 1 Quiz",
        "student_key": key,
        "points_raw": points,
        "student_ids": student_ids,
        **more,
    }


def test_the_first_identifier_that_finds_the_student_wins_without_a_note() -> None:
    plan = plan_of(school(), [row(ids("000101", "ana@contoso.edu"), "000101")])
    assert outcome(plan)[:2] == ("update", "")
    assert plan.rows.iloc[0]["student_name"] == "Ana Moreau" and plan.rows.iloc[0]["note"] == ""


def test_a_blank_student_id_falls_back_to_the_username_and_says_so() -> None:
    plan = plan_of(school(), [row(ids("", "noah@contoso.edu"), "noah@contoso.edu")])
    assert outcome(plan)[:2] == ("update", "")
    assert plan.rows.iloc[0]["student_name"] == "Noah Lopez"
    assert plan.rows.iloc[0]["note"] == (
        'student matched by Username "noah@contoso.edu" (upn); Student ID is blank'
    )


def test_an_identifier_that_finds_nobody_is_passed_over_and_named() -> None:
    plan = plan_of(school(), [row(ids("009999", "nobody@contoso.edu", "noah.l@contoso.edu"), "009999")])
    assert outcome(plan)[:2] == ("update", "")
    assert plan.rows.iloc[0]["note"] == (
        'student matched by Email "noah.l@contoso.edu" (mail); Student ID "009999" found nobody; '
        'Username "nobody@contoso.edu" found nobody'
    )


def test_each_identifier_is_matched_by_its_own_attribute_only() -> None:
    """Ana's e-mail in the Student ID column is no SIS id: it finds nobody there."""
    plan = plan_of(school(), [row(ids("ana@contoso.edu"), "ana@contoso.edu")])
    action, reason, message = outcome(plan)
    assert (action, reason) == ("reject", "unknown_student")
    assert message.startswith('no student in Teams has Student ID "ana@contoso.edu" (sis_id)')


def test_two_identifiers_naming_two_students_are_refused_never_guessed() -> None:
    plan = plan_of(school(), [row(ids("000101", "noah@contoso.edu"), "000101")])
    action, reason, message = outcome(plan)
    assert (action, reason) == ("reject", "identifier_conflict")
    assert message.startswith(
        'Student ID "000101" is Ana Moreau but Username "noah@contoso.edu" is Noah Lopez in SEC-1001'
    )


def test_an_identifier_that_finds_two_students_refuses_the_row() -> None:
    plan = plan_of(school(), [row(ids("000200", "twin1@contoso.edu"), "000200")])
    assert outcome(plan)[:2] == ("reject", "ambiguous_student")


def test_a_student_of_another_class_is_not_in_class() -> None:
    plan = plan_of(school(), [row(ids("000300", ""), "000300")])
    assert outcome(plan)[:2] == ("reject", "not_in_class")


def test_identifier_lists_and_plain_keys_in_one_plan() -> None:
    plan = plan_of(
        school(),
        [
            (C, "Unit 1 Quiz", "000101", "7"),  # one identifier: [match] student_by, as before
            row(ids("", "noah@contoso.edu"), "noah@contoso.edu", "6"),
            row(ids("000101", "noah@contoso.edu"), "000101", "9"),
        ],
    )
    assert plan.rows["action"].tolist() == ["update", "update", "reject"]
    assert plan.rows["student_name"].tolist()[:2] == ["Ana Moreau", "Noah Lopez"]


def test_an_unknown_class_with_identifier_lists() -> None:
    plan = plan_of(school(), [{**row(ids("000101"), "000101"), "class_key": "SEC-9"}])
    assert outcome(plan)[:2] == ("reject", "unknown_class")


# ---------------------------------------------------------------------------------------------
# percent twins and a scaled maximum
# ---------------------------------------------------------------------------------------------
def test_percent_twin_agrees_to_its_own_decimals() -> None:
    t = Tenant()
    cid = t.klass(C, "Algebra")
    quiz = t.assignment(cid, "Quiz", max_points=9)
    t.submission(quiz, t.student(cid, "Ana", sis="1"), points=1)
    agree = {"class_key": C, "assignment_key": "Quiz", "student_key": "1", "points_raw": "7"}
    assert outcome(plan_of(t, [{**agree, "percent_twin": "77.78 %"}]))[:2] == ("update", "")  # 7/9 = 77.777…
    action, reason, message = outcome(plan_of(t, [{**agree, "percent_twin": "77.70 %"}]))
    assert (action, reason) == ("reject", "points_possible_mismatch")
    assert '"77.70 %" disagree for "Quiz"' in message and "maximum of about 9.01" in message
    assert outcome(plan_of(t, [{**agree, "percent_twin": "-"}]))[:2] == ("update", "")  # nothing to check


def test_scaling_leaves_clears_excuses_and_percents_alone() -> None:
    t = Tenant()
    cid = t.klass(C, "Algebra")
    lab = t.assignment(cid, "Lab", max_points=100)
    for i in range(3):
        t.submission(lab, t.student(cid, f"S{i}", sis=str(i)), points=40)
    base = {"class_key": C, "assignment_key": "Lab", "points_possible": 50.0, "maximum_rule": "scale"}
    plan = plan_of(
        t,
        [
            {**base, "student_key": "0", "points_raw": "45"},
            {**base, "student_key": "1", "points_raw": "CLEAR"},
            {**base, "student_key": "2", "points_raw": "45", "points_unit": "percent"},  # read as 45%
        ],
    )
    assert plan.rows["action"].tolist() == ["update", "update", "update"]
    assert plan.rows["desired_points"].tolist()[0] == 90.0 and "scaled to 90 of 100" in plan.rows["note"][0]
    assert plan.rows["note"][1] == "" and plan.rows["clear"][1]
    assert plan.rows["desired_points"][2] == 45.0 and plan.rows["note"][2] == "45% of 100 → 45"
