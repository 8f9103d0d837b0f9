"""Header aliases, explicit columns, long and wide layouts, the Points Possible row."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from read_testkit import col, read, write, xlsx

from gradesync.errors import InputError
from gradesync.read import HEADER_ALIASES, normalize_header


@pytest.mark.parametrize(
    "header",
    [
        "class,assignment,student,points",
        "\ufeffClass_ID , Assignment Name,STUDENT-ID,  Score ",
        "SIS Section ID;assignment_id;Sis_Id;Grade",
        "Class External ID\tAssignment\tUPN\tpoints",
        "section,ASSIGNMENT,Student Number,score",
    ],
)
def test_alias_matching(tmp_path: Path, header: str) -> None:
    sep = ";" if ";" in header else "\t" if "\t" in header else ","
    result = read(write(tmp_path, "g.csv", header + "\n" + sep.join(["S1", "Quiz", "00123", "85"]) + "\n"))
    assert col(result, "class_key") == ["S1"]
    assert col(result, "assignment_key") == ["Quiz"]
    assert col(result, "student_key") == ["00123"]
    assert col(result, "desired_points") == [85.0]


def test_normalize_header() -> None:
    assert normalize_header("\ufeff  Student_ID ") == normalize_header("student-id") == "studentid"
    assert normalize_header("Student ID:") == "studentid"


def test_first_student_alias_wins_and_warns(tmp_path: Path) -> None:
    path = write(tmp_path, "g.csv", "Email,Class,Assignment,Student ID,Points\na@x,S1,Quiz,00123,1\n")
    result = read(path)
    assert col(result, "student_key") == ["00123"]  # student_id comes before email in the aliases
    assert result.warnings == [
        f'{path}: several student columns; using "Student ID" (also present: "Email"; '
        "set [input] student_column to choose another)"
    ]
    assert HEADER_ALIASES["student"].index("student_id") < HEADER_ALIASES["student"].index("email")


def test_explicit_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "g.csv", "Course Section,Task,Learner ID,Mark,Student ID\nS1,Essay,L-7,9,00123\n")
    result = read(
        path,
        class_column="course section",
        assignment_column="Task",
        student_column="Learner ID",
        points_column="MARK",
    )
    assert col(result, "class_key") == ["S1"]
    assert col(result, "assignment_key") == ["Essay"]
    assert col(result, "student_key") == ["L-7"]
    assert col(result, "source_column") == ["Mark"]
    with pytest.raises(InputError) as info:
        read(path, student_column="Learner")
    err = info.value
    assert (err.code, err.row, err.column) == ("input-missing-column", 1, "Learner")
    assert str(err).startswith(f"[input-missing-column] {path}, row 1, column 'Learner': no column named")


def test_missing_points_column_in_long_layout(tmp_path: Path) -> None:
    path = write(tmp_path, "g.csv", "Class,Assignment,Student,Comment\nS1,Quiz,1,good\n")
    with pytest.raises(InputError) as info:
        read(path, layout="long")
    err = info.value
    assert err.code == "input-missing-column"
    assert err.row == 1
    assert str(err).splitlines()[0] == (
        f"[input-missing-column] {path}, row 1: no points column for the long layout: no header matches "
        '"points", "score", "grade"'
    )
    assert "accepted points headers (any case, spaces or _): points, score, grade" in (err.hint or "")
    assert '"Class", "Assignment", "Student", "Comment"' in (err.hint or "")


def test_no_usable_header(tmp_path: Path) -> None:
    path = write(tmp_path, "g.csv", "Gradebook export,for,term 2\nS1,Quiz,1\n")
    with pytest.raises(InputError) as info:
        read(path)
    assert info.value.code == "input-no-header"
    assert "sis_section_id" in (info.value.hint or "")


def test_duplicate_key_column_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "g.csv", "Class,Assignment,Student,Points,points\nS1,Quiz,1,2,3\n")
    with pytest.raises(InputError) as info:
        read(path)
    assert info.value.code == "input-duplicate-column"
    assert "columns 4, 5" in str(info.value)


def test_long_class_from_class_key(tmp_path: Path) -> None:
    path = write(tmp_path, "g.csv", "Assignment,Student,Points\nQuiz,1,2\n")
    assert col(read(path, class_key_arg=" S9 "), "class_key") == ["S9"]
    assert col(read(path, class_key="S8"), "class_key") == ["S8"]
    assert col(read(path, class_key="S8", class_key_arg="S7"), "class_key") == ["S7"]
    with pytest.raises(InputError) as info:
        read(path)
    assert info.value.code == "input-no-class"
    assert "--class" in (info.value.hint or "")


WIDE = (
    "Student ID,Student Name,Grade Level,Email,Unit 1 Quiz,Essay: Draft,Final Grade\n"
    "Points Possible,,,,20,50,\n"
    "00123,Ada,9,ada@x,18,45,A\n"
    "00124,Bob,9,bob@x,,abc,B\n"
)


def test_wide_with_points_possible_and_class_key(tmp_path: Path) -> None:
    path = write(tmp_path, "w.csv", WIDE)
    result = read(path, class_key_arg="S1")
    f = result.frame
    assert col(result, "student_key") == ["00123", "00123", "00124", "00124"]
    assert col(result, "assignment_key") == ["Unit 1 Quiz", "Essay: Draft"] * 2
    assert col(result, "source_column") == ["Unit 1 Quiz", "Essay: Draft"] * 2
    assert col(result, "source_row") == [3, 3, 4, 4]
    assert col(result, "class_key") == ["S1"] * 4
    assert col(result, "points_possible") == [20.0, 50.0, 20.0, 50.0]
    assert col(result, "points_raw") == ["18", "45", "", "abc"]
    assert col(result, "reason") == ["", "", "blank_points", "invalid_points"]
    assert f["message"].iloc[3] == 'points "abc" in column "Essay: Draft" is not a number'
    assert col(result, "row_key") == [0, 1, 2, 3]
    assert result.warnings == [  # Email is a student alias too: named, then ignored as a non-grade column
        f'{path}: several student columns; using "Student ID" (also present: "Email"; '
        "set [input] student_column to choose another)"
    ]


def test_wide_without_points_possible_class_from_column(tmp_path: Path) -> None:
    text = "Section,Student,Last Name,Quiz A,Quiz B\nS1,00123,Lovelace,1,2\nS2,00124,Babbage,3,4\n"
    result = read(write(tmp_path, "w.csv", text))
    assert col(result, "class_key") == ["S1", "S1", "S2", "S2"]
    assert col(result, "desired_points") == [1.0, 2.0, 3.0, 4.0]
    assert all(math.isnan(v) for v in col(result, "points_possible"))


@pytest.mark.parametrize("label", ["points possible", "MAX POINTS", " Out of ", "Points Possible:"])
def test_points_possible_labels_anywhere(tmp_path: Path, label: str) -> None:
    text = f"Student,Name,Quiz\n00123,Ada,5\n,{label},10\n00124,Bob,6\n"
    result = read(write(tmp_path, "w.csv", text), class_key="S1")
    assert col(result, "student_key") == ["00123", "00124"]
    assert col(result, "points_possible") == [10.0, 10.0]
    assert col(result, "source_row") == [2, 4]


def test_wide_no_class_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "w.csv", "Student,Quiz\n1,2\n")
    with pytest.raises(InputError) as info:
        read(path)
    assert (info.value.code, info.value.row) == ("input-no-class", 1)


def test_wide_without_assignment_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "w.csv", "Student,First Name,Last Name\n1,A,B\n")
    with pytest.raises(InputError) as info:
        read(path, class_key="S1")
    assert info.value.code == "input-no-assignments"


def test_wide_xlsx_points_possible_and_numeric_ids(tmp_path: Path) -> None:
    path = xlsx(
        tmp_path,
        "w.xlsx",
        {
            "Gradebook": [
                ["Student Number", "Name", "Quiz 1", "Quiz 2"],
                [None, "Points Possible", 10, 12.5],
                ["00123", "Ada", 9, 12.25],
                [124, "Bob", None, "CLEAR"],
            ]
        },
    )
    result = read(path, class_key_arg="S1")
    assert col(result, "student_key") == ["00123", "00123", "124", "124"]
    assert col(result, "points_possible") == [10.0, 12.5, 10.0, 12.5]
    assert col(result, "source_row") == [3, 3, 4, 4]
    assert col(result, "source_sheet") == ["Gradebook"] * 4
    assert col(result, "clear") == [False, False, False, True]
    assert col(result, "reason") == ["", "", "blank_points", ""]


def test_layout_setting_forces_wide(tmp_path: Path) -> None:
    text = "Class,Student,Assignment,Points\nS1,1,x,2\n"
    result = read(write(tmp_path, "g.csv", text), layout="wide")
    assert col(result, "assignment_key") == ["Assignment", "Points"]
