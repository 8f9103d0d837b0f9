"""Each preset reads a realistic export of its format (sample_data/exports) into exactly these rows.

The samples carry their format's decorations: Canvas's "Points Possible" row, read-only computed
columns, Test Student and EX; PowerSchool's cp1252 and Exempt column; Infinite Campus's flags;
Skyward's "*" and EXE; Google Classroom's due-date, points and class-average rows; Moodle's
"Quiz: … (Real)" headers and "-"; OneRoster's exempt scoreStatus and tobedeleted rows.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Any

import pytest

from gradesync.config import Settings
from gradesync.errors import InputError
from gradesync.read import ReadResult, read_inputs

EXPORTS = Path(__file__).resolve().parents[2] / "sample_data" / "exports"
_spec = importlib.util.spec_from_file_location("make_exports", EXPORTS.parent / "make_exports.py")
assert _spec is not None and _spec.loader is not None
make_exports = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_exports)

Row = tuple[
    int, str, str, str, Any, str, bool, str
]  # row, class, assignment, student, points, unit, excuse, reason


def rows(result: ReadResult) -> list[Row]:
    f = result.frame
    out = []
    for r in f.to_dict("records"):
        points = None if math.isnan(r["desired_points"]) else r["desired_points"]
        out.append(
            (
                r["source_row"], r["class_key"], r["assignment_key"], r["student_key"], points,
                r["points_unit"], r["excuse"], r["reason"],
            )
        )  # fmt: skip
    return out


def read(name: str, **kw: Any) -> ReadResult:
    return read_inputs([EXPORTS / name], Settings(), **kw)


def test_the_committed_samples_are_what_make_exports_writes(tmp_path: Path) -> None:
    written = make_exports.write_all(tmp_path)
    for path in written.values():
        if path.suffix in (".csv", ".toml"):
            committed = EXPORTS / path.relative_to(tmp_path)
            assert committed.read_bytes() == path.read_bytes(), committed


def test_canvas() -> None:
    result = read("canvas_gradebook.csv", class_key="SEC-1001")
    assert result.preset == "canvas"
    c = "SEC-1001"
    assert rows(result) == [
        (3, c, "Unit 1 Quiz", "000101", 9.5, "points", False, ""),
        (3, c, "Lab Report 1", "000101", 40.0, "points", False, ""),
        (4, c, "Unit 1 Quiz", "000102", 8.0, "points", False, ""),
        (4, c, "Lab Report 1", "000102", None, "points", True, ""),  # EX
        (5, c, "Unit 1 Quiz", "000103", 7.0, "points", False, ""),
        (5, c, "Lab Report 1", "000103", 27.5, "points", False, ""),
        (6, c, "Unit 1 Quiz", "000105", 3.5, "points", False, ""),
        (6, c, "Lab Report 1", "000105", None, "points", False, "blank_points"),
        (7, c, "Unit 1 Quiz", "", None, "points", False, "ignored_row"),  # Test Student
        (7, c, "Lab Report 1", "", None, "points", False, "ignored_row"),
    ]
    # the "(48211)" decoration is stripped for matching; the column keeps its header
    assert result.frame["source_column"].iloc[0] == "Unit 1 Quiz (48211)"
    assert result.frame["points_possible"].tolist()[:2] == [10.0, 50.0]  # the "Points Possible" row
    assert "Test Student" in result.frame["message"].iloc[8]
    assert any('"Current Points"' in w and '"Unposted Final Score"' in w for w in result.warnings)


def test_canvas_without_class_says_the_section_column_holds_names() -> None:
    with pytest.raises(InputError) as e:
        read("canvas_gradebook.csv")
    assert e.value.code == "input-no-class"
    text = str(e.value)
    assert 'column "Section" holds section names like "Algebra I - P1"' in text
    assert "--class" in text and 'class_by = "displayName"' in text


def test_powerschool_preset_builds_the_class_from_two_columns() -> None:
    result = read("powerschool_scores.csv", format="powerschool")  # the preset, not the mapping beside it
    assert result.preset == "powerschool"
    assert result.inputs[0].encoding == "cp1252 (fallback)"
    assert rows(result) == [
        (2, "SEC.1001", "Unit 1 Quiz", "000101", 9.5, "points", False, ""),
        (3, "SEC.1001", "Unit 1 Quiz", "000102", 6.0, "points", False, ""),
        (4, "SEC.1001", "Unit 1 Quiz", "000103", None, "points", True, ""),  # Exempt = 1
        (5, "SEC.1001", "Unit 1 Quiz", "000105", 4.0, "points", False, ""),
        (6, "SEC.1002", "Unit 1 Quiz", "000130", 13.0, "points", False, ""),
        (7, "SEC.1002", "Unit 1 Quiz", "000131", 18.0, "points", False, ""),
    ]
    assert result.frame["points_possible"].tolist() == [10, 10, 10, 10, 20, 20]


def test_powerschool_mapping_beside_the_file_wins_over_the_detected_preset() -> None:
    result = read("powerschool_scores.csv")
    assert result.preset == "powerschool"
    assert set(result.frame["class_key"]) == {"SEC-1001", "SEC-1002"}
    assert any("powerschool_scores.mapping.toml" in w for w in result.warnings)


def test_infinite_campus() -> None:
    result = read("infinite_campus_scores.csv")
    assert result.preset == "infinite-campus"
    c = "SEC-1001"
    assert rows(result) == [
        (2, c, "Lab Report 1", "000101", 45.0, "points", False, ""),
        (3, c, "Lab Report 1", "000102", None, "points", True, ""),  # Flags X
        (4, c, "Lab Report 1", "000103", 27.5, "points", False, ""),  # L (late): the score stands
        (5, c, "Lab Report 1", "000105", None, "points", False, "blank_points"),  # M, no score: no change
    ]


def test_skyward() -> None:
    result = read("skyward_gradebook.csv", class_key="SEC-1001")
    assert result.preset == "skyward"
    c = "SEC-1001"
    assert rows(result) == [
        (2, c, "Unit 1 Quiz", "000101", 9.5, "points", False, ""),
        (2, c, "Lab Report 1", "000101", None, "points", False, "blank_points"),  # *
        (3, c, "Unit 1 Quiz", "000102", 3.0, "points", False, ""),
        (3, c, "Lab Report 1", "000102", None, "points", True, ""),  # EXE
        (4, c, "Unit 1 Quiz", "000103", None, "points", False, "blank_points"),
        (4, c, "Lab Report 1", "000103", 30.0, "points", False, ""),
        (5, c, "Unit 1 Quiz", "", None, "points", False, "ignored_row"),  # Class Average
        (5, c, "Lab Report 1", "", None, "points", False, "ignored_row"),
    ]


def test_google_classroom() -> None:
    result = read("google_classroom_grades.csv", class_key="SEC-1001")
    assert result.preset == "google-classroom"
    c, a, q = "SEC-1001", "Lab Report 1", "Unit 1 Quiz"
    assert rows(result) == [
        (2, c, q, "", None, "points", False, "ignored_row"),  # the due-date row
        (2, c, a, "", None, "points", False, "ignored_row"),
        (4, c, q, "", None, "points", False, "ignored_row"),  # Class average
        (4, c, a, "", None, "points", False, "ignored_row"),
        (5, c, q, "ana.moreau101@contoso.edu", 9.5, "points", False, ""),
        (5, c, a, "ana.moreau101@contoso.edu", 45.0, "points", False, ""),
        (6, c, q, "ana.alvarez102@contoso.edu", 5.0, "points", False, ""),
        (6, c, a, "ana.alvarez102@contoso.edu", None, "points", False, "blank_points"),
        (7, c, q, "noah.ahmed103@contoso.edu", 8.5, "points", False, ""),
        (7, c, a, "noah.ahmed103@contoso.edu", 28.0, "points", False, ""),
    ]
    assert result.frame["points_possible"].tolist()[-2:] == [10.0, 50.0]  # the "Points" row


def test_moodle() -> None:
    result = read("moodle_grades.csv", class_key="SEC-1001")
    assert result.preset == "moodle"
    c, q, a = "SEC-1001", "Unit 1 Quiz", "Lab Report 1"
    assert rows(result) == [
        (2, c, q, "000101", 9.5, "points", False, ""),
        (2, c, a, "000101", None, "points", False, "blank_points"),  # "-"
        (3, c, q, "000102", 7.0, "points", False, ""),
        (3, c, a, "000102", 21.0, "points", False, ""),
        (4, c, q, "000103", None, "points", False, "blank_points"),
        (4, c, a, "000103", 27.5, "points", False, ""),
    ]
    assert set(result.frame["source_column"]) == {
        "Quiz: Unit 1 Quiz (Real)",
        "Assignment: Lab Report 1 (Real)",
    }


ONEROSTER_ROWS = [
    (2, "SEC-1001", "Unit 1 Quiz", "000101", 9.5, "points", False, ""),
    (3, "SEC-1001", "Unit 1 Quiz", "000102", 7.0, "points", False, ""),
    (4, "SEC-1001", "Unit 1 Quiz", "000103", None, "points", True, ""),  # scoreStatus exempt
    (5, "SEC-1001", "Lab Report 1", "000105", 30.0, "points", False, ""),
    (6, "SEC-1001", "Lab Report 1", "000101", None, "points", False, "blank_points"),  # not submitted
    (7, "SEC-1001", "Unit 1 Quiz", "000106", None, "points", False, "ignored_row"),  # tobedeleted
    (8, "SEC-1002", "Unit 1 Quiz", "000131", 19.0, "points", False, ""),
]


@pytest.mark.parametrize(
    "paths",
    [
        ["oneroster_gradebook.zip"],
        ["oneroster/results.csv", "oneroster/lineItems.csv"],
        ["oneroster/lineItems.csv", "oneroster/results.csv", "oneroster/manifest.csv"],
        ["oneroster/results.csv"],  # lineItems.csv is read from beside it
    ],
)
def test_oneroster(paths: list[str]) -> None:
    result = read_inputs([EXPORTS / p for p in paths], Settings())
    assert result.preset == "oneroster"
    assert rows(result) == ONEROSTER_ROWS
    assert result.frame["points_possible"].tolist() == [10, 10, 10, 50, 50, 10, 20]  # resultValueMax
    assert len(result.inputs) == 1 and result.inputs[0].path.endswith("results.csv")


def test_oneroster_results_without_line_items_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    path.write_bytes((EXPORTS / "oneroster" / "results.csv").read_bytes())
    with pytest.raises(InputError) as e:
        read_inputs([path], Settings())
    assert "needs its lineItems.csv" in str(e.value) and str(path) in str(e.value)


def test_format_forces_a_preset_and_unknown_names_are_refused() -> None:
    from gradesync.errors import ConfigError

    with pytest.raises(ConfigError) as e:
        read("moodle_grades.csv", format="schoology")
    assert "canvas" in str(e.value)
    with pytest.raises(InputError) as no_header:  # the header aliases alone know no Moodle column
        read("moodle_grades.csv", format="generic", class_key="SEC-1001")
    assert no_header.value.code == "input-no-header"
    with pytest.raises(InputError) as wrong:  # a wrong format, forced: names the missing column
        read("skyward_gradebook.csv", format="moodle", class_key="SEC-1001")
    assert wrong.value.code == "input-missing-column" and "ID number" in str(wrong.value)


def test_oneroster_1_2_results_carry_their_class(tmp_path: Path) -> None:
    (tmp_path / "lineItems.csv").write_text(
        "sourcedId,status,dateLastModified,title,description,assignDate,dueDate,classSourcedId,schoolSourcedId,"
        "categorySourcedId,gradingPeriodSourcedId,academicSessionSourcedId,scoreScaleSourcedId,resultValueMin,"
        "resultValueMax\nli-9,active,,Essay 1,,,,,org-1,cat,gp,as,,0,10\n"
    )
    results = tmp_path / "results.csv"
    results.write_text(
        "sourcedId,status,dateLastModified,lineItemSourcedId,studentSourcedId,classSourcedId,scoreScaleSourcedId,"
        "scoreStatus,score,textScore,scoreDate,comment\n"
        "r-1,active,,li-9,000129,SEC-1002,,fully graded,8,,,\n"
        "r-2,active,,li-404,000130,SEC-1002,,fully graded,9,,,\n"
    )
    result = read_inputs([results], Settings())
    assert rows(result)[0] == (2, "SEC-1002", "Essay 1", "000129", 8.0, "points", False, "")
    assert rows(result)[1][7] == "missing_identifier"  # an unknown line item: no assignment
    assert any('"li-404"' in w for w in result.warnings)
