"""gradesync.plan.match: input keys → Graph ids, one answer per key row, in order."""

from __future__ import annotations

import pandas as pd
import pytest

from gradesync.plan.match import match_assignments, match_students

from .builders import Tenant


@pytest.fixture
def tenant() -> Tenant:
    t = Tenant()
    c1 = t.klass("SEC-1", "Algebra I", class_id="c1")
    c2 = t.klass("SEC-2", "Biology", class_id="c2")
    t.assignment(c1, "Unit 1 Quiz", assignment_id="a1")
    t.assignment(c1, "unit  1   QUIZ", assignment_id="a2")  # same name, loosely
    t.assignment(c1, "Essay", assignment_id="a3")
    t.assignment(c1, "Lab  Report", assignment_id="a4")
    t.assignment(c1, "lab report", assignment_id="a5")
    t.assignment(c1, "Exam", assignment_id="a6")
    t.assignment(c1, "Exam", assignment_id="a7")  # exact duplicates
    t.assignment(c2, "Essay", assignment_id="b1")
    t.student(c1, "Ada", user_id="u1", sis="000123", upn="Ada@School.edu", mail="ada@school.edu", number="N1")
    t.student(c1, "Bea", user_id="u2", sis="000124", external_id="000123", number="N1")
    t.student(c1, "Cy", user_id="u3", external_id="EXT-9", upn="cy@school.edu")
    t.student(c1, "Teacher", user_id="t1", sis="T-1", upn="teach@school.edu", role="teacher")
    t.student(c1, "Ghost", user_id="u4", sis="000777", role=None)  # role unknown: counts
    t.student(c2, "Dee", user_id="u5", sis="000555", mail="dee@school.edu")
    return t


def _assign(t: Tenant, pairs: list[tuple[str, str]], by: str = "displayName") -> list[tuple]:
    keys = pd.DataFrame(pairs, columns=["class_id", "assignment_key"], dtype=object)
    out = match_assignments(keys, t.snapshot().assignments, by)
    assert list(out.columns) == ["class_id", "assignment_key", "assignment_id", "reason"]
    return list(out.itertuples(index=False, name=None))


def test_assignments_by_display_name(tenant: Tenant) -> None:
    assert _assign(
        tenant,
        [
            ("c1", "Unit 1 Quiz"),  # exact wins over the loose duplicate
            ("c1", "UNIT 1 quiz"),  # no exact match; two loose candidates
            ("c1", " essay "),  # loose: case and surrounding spaces
            ("c1", "Lab Report"),  # loose: two candidates ("Lab  Report", "lab report")
            ("c1", "Exam"),  # two exact candidates
            ("c1", "Homework"),
            ("c2", "Essay"),  # the other class's assignment
            ("c9", "Essay"),  # a class id with no assignments at all
            ("c1", "Unit 1 Quiz"),  # repeated key: same answer, same order
        ],
    ) == [
        ("c1", "Unit 1 Quiz", "a1", ""),
        ("c1", "UNIT 1 quiz", None, "ambiguous_assignment"),
        ("c1", " essay ", "a3", ""),
        ("c1", "Lab Report", None, "ambiguous_assignment"),
        ("c1", "Exam", None, "ambiguous_assignment"),
        ("c1", "Homework", None, "unknown_assignment"),
        ("c2", "Essay", "b1", ""),
        ("c9", "Essay", None, "unknown_assignment"),
        ("c1", "Unit 1 Quiz", "a1", ""),
    ]


def test_assignments_by_id(tenant: Tenant) -> None:
    assert _assign(tenant, [("c1", "a2"), ("c2", "a2"), ("c1", "A2"), ("c1", "Essay")], by="id") == [
        ("c1", "a2", "a2", ""),
        ("c2", "a2", None, "unknown_assignment"),
        ("c1", "A2", None, "unknown_assignment"),
        ("c1", "Essay", None, "unknown_assignment"),
    ]


def test_assignments_unknown_kind_is_an_error(tenant: Tenant) -> None:
    with pytest.raises(ValueError, match="mailNickname"):
        _assign(tenant, [("c1", "x")], by="mailNickname")


def _students(t: Tenant, pairs: list[tuple[str, str]], order: list[str]) -> list[tuple]:
    keys = pd.DataFrame(pairs, columns=["class_id", "student_key"], dtype=object)
    out = match_students(keys, t.snapshot().members, order)
    assert list(out.columns) == ["class_id", "student_key", "user_id", "reason"]
    return list(out.itertuples(index=False, name=None))


@pytest.mark.parametrize(
    ("key", "order", "expected"),
    [
        # sis_id: student.externalId first, then the user's externalId
        ("000123", ["sis_id"], ("u1", "")),  # u2's externalId is also 000123, but the first column wins
        ("EXT-9", ["sis_id"], ("u3", "")),
        ("000124", ["sis_id"], ("u2", "")),
        # student number: exact; two students share N1
        ("N1", ["student_number"], (None, "ambiguous_student")),
        ("n1", ["student_number"], (None, "unknown_student")),
        # upn and mail ignore case
        ("ADA@school.EDU", ["upn"], ("u1", "")),
        ("ada@SCHOOL.edu", ["mail"], ("u1", "")),
        ("cy@school.edu", ["mail"], (None, "unknown_student")),  # Cy has no mail, only a UPN
        ("cy@school.edu", ["mail", "upn"], ("u3", "")),
        # id: the Graph user id, exactly
        ("u3", ["id"], ("u3", "")),
        ("u3", ["sis_id", "upn"], (None, "unknown_student")),
        # the first kind that matches wins, even when a later kind would be ambiguous
        ("N1", ["sis_id", "student_number"], (None, "ambiguous_student")),
        # teachers never match; members of unknown role do
        ("T-1", ["sis_id"], (None, "unknown_student")),
        ("teach@school.edu", ["upn"], (None, "unknown_student")),
        ("000777", ["sis_id"], ("u4", "")),
        # a student of the other class
        ("000555", ["sis_id"], (None, "not_in_class")),
        ("DEE@school.edu", ["sis_id", "mail"], (None, "not_in_class")),
        ("", ["sis_id", "upn", "mail"], (None, "unknown_student")),
    ],
)
def test_students(tenant: Tenant, key: str, order: list[str], expected: tuple) -> None:
    assert _students(tenant, [("c1", key)], order) == [("c1", key, *expected)]


def test_students_many_keys_keep_their_order(tenant: Tenant) -> None:
    pairs = [("c1", "000124"), ("c2", "000555"), ("c1", "nobody"), ("c1", "000124"), ("c2", "000123")]
    assert _students(tenant, pairs, ["sis_id", "upn", "mail"]) == [
        ("c1", "000124", "u2", ""),
        ("c2", "000555", "u5", ""),
        ("c1", "nobody", None, "unknown_student"),
        ("c1", "000124", "u2", ""),
        ("c2", "000123", None, "not_in_class"),
    ]


def test_no_keys_and_no_members() -> None:
    empty = Tenant()
    assert _students(empty, [], ["sis_id"]) == []
    assert _students(empty, [("c1", "x")], ["sis_id"]) == [("c1", "x", None, "unknown_student")]
    assert _assign(empty, [("c1", "x")]) == [("c1", "x", None, "unknown_assignment")]
