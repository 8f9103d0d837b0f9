"""Value rules never guess: percent, fractions, letters, dates and Excel's percent-formatted cells."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import openpyxl
import pytest

from gradesync.config import Settings
from gradesync.read import read_inputs
from gradesync.read.mapping import ClassRule, Mapping, StudentRule, ValueRules
from tests.read.read_testkit import read, write

HEAD = "section_id,assignment,student_id,points\n"


def one(tmp_path: Path, raw: str, mapping: Mapping | None = None) -> dict:
    path = write(tmp_path, "g.csv", HEAD + f'SEC-1,Quiz,000101,"{raw}"\n')
    result = read_inputs([path], Settings(), mapping=mapping)
    return result.frame.iloc[0].to_dict()


@pytest.mark.parametrize(
    ("raw", "points", "unit", "denominator"),
    [
        ("95%", 95.0, "percent", None),
        ("95 %", 95.0, "percent", None),
        ("87.5%", 87.5, "percent", None),
        ("17/20", 17.0, "fraction", 20.0),
        ("8.5 / 10", 8.5, "fraction", 10.0),
        ("17", 17.0, "points", None),
    ],
)
def test_units_are_marked_and_the_number_kept_as_written(
    tmp_path: Path, raw: str, points: float, unit: str, denominator: float | None
) -> None:
    row = one(tmp_path, raw)
    assert (row["reason"], row["desired_points"], row["points_unit"]) == ("", points, unit)
    if denominator is None:
        assert row["points_denominator"] != row["points_denominator"]  # NaN
    else:
        assert row["points_denominator"] == denominator


@pytest.mark.parametrize(
    ("raw", "reason", "fragment"),
    [
        ("A-", "letter_grade", "never guesses what a letter is worth"),
        ("b+", "letter_grade", "[values.letters]"),
        ("2024-09-10", "date_not_points", "Excel turned this into a date"),
        ("9/10/2024", "date_not_points", "Excel turned this into a date"),
        ("10-Sep", "date_not_points", "a date, not points"),
        ("17/0", "invalid_points", "a fraction over 0"),
        ("-5%", "invalid_points", "negative"),
    ],
)
def test_values_that_are_not_points_are_refused_saying_why(
    tmp_path: Path, raw: str, reason: str, fragment: str
) -> None:
    row = one(tmp_path, raw)
    assert row["reason"] == reason
    assert fragment in row["message"] and 'column "points"' in row["message"]
    assert row["desired_points"] != row["desired_points"]  # NaN: nothing to write


def test_a_letter_table_converts_letters_and_says_so(tmp_path: Path) -> None:
    rules = ValueRules(letters={"A-": "90%", "B": 8})
    mapping = Mapping(
        layout="long",
        student=StudentRule(column="student_id"),
        class_=ClassRule(column="section_id"),
        assignment={"column": "assignment", "points": "points"},  # type: ignore[arg-type]
        values=rules,
    )
    a = one(tmp_path, "a-", mapping)
    assert (a["desired_points"], a["points_unit"], a["reason"]) == (90.0, "percent", "")
    assert 'letter "a-" → 90%' in a["note"]
    b = one(tmp_path, "B", mapping)
    assert (b["desired_points"], b["points_unit"]) == (8.0, "points")
    c = one(tmp_path, "C", mapping)
    assert c["reason"] == "letter_grade"


def test_percent_reject_rule(tmp_path: Path) -> None:
    mapping = Mapping(
        layout="long",
        student=StudentRule(column="student_id"),
        class_=ClassRule(column="section_id"),
        assignment={"column": "assignment", "points": "points"},  # type: ignore[arg-type]
        values=ValueRules(percent="reject"),
    )
    row = one(tmp_path, "95%", mapping)
    assert row["reason"] == "invalid_points" and 'percent = "reject"' in row["message"]


def test_excel_percent_formatted_cells_are_percent_not_fractions_of_a_point(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["student_id", "Quiz", "Lab", "Essay"])
    ws.append(["000101", 0.55, 0.875, dt.datetime(2024, 9, 10)])
    ws.append(["000102", 0.55, "95%", 7])
    ws["B2"].number_format = "0%"
    ws["C2"].number_format = "0.0%"
    ws["D2"].number_format = "d-mmm"
    path = tmp_path / "book.xlsx"
    wb.save(path)
    result = read(path, class_key_arg="SEC-1")
    got = [
        (r["points_raw"], r["desired_points"], r["points_unit"], r["reason"])
        for r in result.frame.to_dict("records")
    ]
    assert got[0] == ("55%", 55.0, "percent", "")  # typed "55%": Excel stores 0.55 with a percent format
    assert got[1] == ("87.5%", 87.5, "percent", "")
    assert got[2][3] == "date_not_points"  # "9/10" that Excel made a date
    assert got[3] == ("0.55", 0.55, "points", "")  # the same number without a percent format is points
    assert got[4] == ("95%", 95.0, "percent", "")  # typed as text
    assert got[5] == ("7", 7.0, "points", "")


def test_duplicates_compare_units(tmp_path: Path) -> None:
    path = write(tmp_path, "d.csv", HEAD + "SEC-1,Quiz,000101,9\nSEC-1,Quiz,000101,9%\n")
    result = read(path)
    assert result.frame["reason"].tolist() == ["duplicate_conflict", "duplicate_conflict"]  # 9 points ≠ 9%
