"""Every maximum a file declares reaches the plan: headers (Blackboard, Brightspace, written by a
person), a maximum column, the Points Possible row, the mapping — and two that disagree are refused.

Header forms are the vendors' documented ones (Blackboard Learn's downloaded Grade Center: "Quiz 3
[Total Pts: 10] |664617"; D2L's import format: "Presentation Points Grade <Numeric MaxPoints:100
Category:Lecture>"); calculated columns are the ones the vendors compute (Blackboard's "[Total Pts:
up to …]", D2L's final grades).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from read_testkit import col, read, write

from gradesync.config import Settings
from gradesync.errors import ConfigError
from gradesync.read import read_inputs
from gradesync.read._headers import Headers, header_facts, parse_maximum
from gradesync.read.mapping import ColumnRules, Mapping, StudentRule, load_mapping
from gradesync.read.presets import PRESETS, detect, near_miss

CONFIG = Path(__file__).resolve().parents[2] / "config" / "mappings"


@pytest.mark.parametrize(
    ("header", "name", "maximum", "calculated"),
    [
        ("Quiz 3 [Total Pts: 10] |664617", "Quiz 3", 10.0, False),
        ("Lab Report 1 [Total Pts: 50 Score] |1260437", "Lab Report 1", 50.0, False),
        ("HW 5 [EXTRA CREDIT] [Total Pts: 4 Score] |3229309", "HW 5 [EXTRA CREDIT]", 4, False),
        ("Total [Total Pts: up to 1,499 Score] |3032234", "Total", math.nan, True),
        ("Overall Grade [Total Pts: up to 160 Letter] |530834", "Overall Grade", math.nan, True),
        ("Presentation Points Grade <Numeric MaxPoints:100 Category:Lecture>", "Presentation", 100.0, False),
        ("Q1 Points Grade <Numeric MaxPoints:50 Weight:25 Category:Quiz CategoryWeight:30>", "Q1", 50, False),
        ("Quiz 1 Points Grade", "Quiz 1", math.nan, False),
        ("Calculated Final Grade Numerator", "Calculated Final Grade Numerator", math.nan, True),
        ("Adjusted Final Grade Denominator", "Adjusted Final Grade Denominator", math.nan, True),
        ("Labs Subtotal Numerator", "Labs Subtotal Numerator", math.nan, True),
        ("Essay (out of 50)", "Essay (out of 50)", 50.0, False),  # a person's: kept in the name
        ("Essay [50 pts]", "Essay [50 pts]", 50.0, False),
        ("Quiz (/10)", "Quiz (/10)", 10.0, False),
        ("Quiz 2 out of 12.5", "Quiz 2 out of 12.5", 12.5, False),
        ("Unit 1 Quiz (48211)", "Unit 1 Quiz (48211)", math.nan, False),  # Canvas's id is no maximum
        ("Essay 1", "Essay 1", math.nan, False),
    ],
)  # fmt: skip
def test_header_facts(header: str, name: str, maximum: float, calculated: bool) -> None:
    facts = header_facts(header)
    assert facts.name == name
    assert facts.maximum == maximum or (math.isnan(maximum) and math.isnan(facts.maximum))
    assert bool(facts.calculated) is calculated
    assert not facts.conflict


def test_a_header_that_states_two_maxima_is_a_conflict() -> None:
    facts = header_facts("Lab (out of 50) [Total Pts: 100 Score] |12")
    assert math.isnan(facts.maximum)
    assert '"[Total Pts: 100 Score]" and "(out of 50)"' in facts.conflict


@pytest.mark.parametrize(
    ("text", "value"), [("50", 50.0), ("1,499", 1499.0), (" 12.5 pts", 12.5), ("x", math.nan), ("", math.nan)]
)
def test_parse_maximum(text: str, value: float) -> None:
    got = parse_maximum(text)
    assert got == value or (math.isnan(value) and math.isnan(got))


def test_headers_find_columns_one_way() -> None:
    headers = Headers(["\ufeffStudent_ID", "Points", "student id:"])
    assert headers.find("student id") == 0 and headers.all("STUDENT-ID") == [0, 2]
    assert headers.first_of(["score", "points"]) == [1]
    assert headers.find(None) is None and headers.find("nope") is None


def test_generic_reader_reads_header_maxima_and_skips_calculated_columns(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "bb.csv",
        '"Student ID","Total [Total Pts: up to 60 Score] |1","Quiz [Total Pts: 10 Score] |2",'
        '"Essay (out of 50)"\n'
        '"000101","49","9","40"\n',
    )
    result = read(path, class_key_arg="SEC-1001", format="generic")
    assert col(result, "assignment_key") == ["Quiz", "Essay (out of 50)"]
    assert col(result, "points_possible") == [10.0, 50.0]
    roles = {c.header: c for c in result.files[0].desired.columns}
    assert roles["Total [Total Pts: up to 60 Score] |1"].role == "ignored"
    assert "calculated" in roles["Total [Total Pts: up to 60 Score] |1"].why
    assert roles["Quiz [Total Pts: 10 Score] |2"].maximum_from == 'the header "[Total Pts: 10 Score]"'


def test_header_maximum_and_points_possible_row_must_agree(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "w.csv",
        "Student ID,Quiz (out of 10),Essay (out of 20)\nPoints Possible,10,25\n000101,9,18\n",
    )
    result = read(path, class_key_arg="SEC-1001")
    assert col(result, "reason") == ["", "points_possible_mismatch"]
    assert col(result, "points_possible")[0] == 10.0
    message = col(result, "message")[1]
    assert (
        'the header "(out of 20)" says the maximum is 20, the points-possible row (row 2) says 25' in message
    )


def test_long_layout_maximum_column_by_its_alias(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "long.csv",
        "class,assignment,student,points,points_possible\n"
        "SEC-1001,Quiz,000101,9,10\nSEC-1001,Quiz,000102,8,ten\nSEC-1001,Quiz,000103,7,\n",
    )
    result = read(path)
    assert col(result, "points_possible")[0] == 10.0 and math.isnan(col(result, "points_possible")[2])
    assert col(result, "reason") == ["", "points_possible_mismatch", ""]
    assert 'the maximum "ten" in column "points_possible" is not a number' in col(result, "message")[1]
    assert {c.header: c.role for c in result.files[0].desired.columns}["points_possible"] == "maximum"


def test_mapping_maxima_and_maximum_pattern(tmp_path: Path) -> None:
    path = write(tmp_path, "m.csv", "Student ID,Lab 1 - worth 50,Quiz,Essay\n000101,40,9,7\n")
    mapping = Mapping(
        student=StudentRule(column="Student ID"),
        columns=ColumnRules(
            decoration=r" - worth \d+$",
            maximum_pattern=r"worth (?P<max>\d+)",
            maxima={"Quiz": 10, "Essay": 20},
        ),
    )
    result = read_inputs([path], Settings(), class_key="SEC-1001", mapping=mapping)
    assert col(result, "assignment_key") == ["Lab 1", "Quiz", "Essay"]
    assert col(result, "points_possible") == [50.0, 10.0, 20.0]
    froms = [c.maximum_from for c in result.files[0].desired.columns if c.role == "assignment"]
    assert froms == [
        'the header "worth 50" (the mapping\'s maximum_pattern)',
        'the mapping\'s [columns.maxima] "Quiz"',
        'the mapping\'s [columns.maxima] "Essay"',
    ]


def test_a_decoration_never_takes_a_maximum_with_it(tmp_path: Path) -> None:
    """The decoration a person writes from the README to strip Blackboard's syntax: the name is
    clean either way, and the maximum is read before anything is stripped."""
    path = write(tmp_path, "bb.csv", 'Student ID,"Lab Report 1 [Total Pts: 50 Score] |1260437"\n000101,45\n')
    mapping = Mapping(
        student=StudentRule(column="Student ID"), columns=ColumnRules(decoration=r" \[Total Pts.*$")
    )
    result = read_inputs([path], Settings(), class_key="SEC-1001", mapping=mapping)
    assert col(result, "assignment_key") == ["Lab Report 1"]
    assert col(result, "points_possible") == [50.0]


def test_mapping_and_header_that_disagree_refuse_the_column(tmp_path: Path) -> None:
    path = write(tmp_path, "bb.csv", 'Student ID,"Lab [Total Pts: 50 Score] |9"\n000101,45\n')
    mapping = Mapping(student=StudentRule(column="Student ID"), columns=ColumnRules(maxima={"Lab": 100}))
    result = read_inputs([path], Settings(), class_key="SEC-1001", mapping=mapping)
    assert col(result, "reason") == ["points_possible_mismatch"]
    assert (
        "[columns.maxima]" in col(result, "message")[0]
        and "gradesync cannot tell which" in col(result, "message")[0]
    )


@pytest.mark.parametrize(
    ("toml", "fragment"),
    [
        ('[columns]\nmaximum_pattern = "worth \\\\d+"\n', "needs a group"),
        ("[columns.maxima]\nQuiz = -1\n", "not a maximum"),
        ('[columns.twins]\npercent = "Percentage"\n', "group capturing the item's name"),
        ('[values]\nmaximum_mismatch = "halve"\n', "maximum_mismatch"),
        ('[student]\ncolumn = "ID"\n[[student.identifiers]]\ncolumn = "ID"\nmatch = "sis_id"\n', "not both"),
        ('[[student.identifiers]]\ncolumn = "User"\nmatch = "upn"\ndomain = "@x.edu"\n', "mail domain"),
        ('[[student.identifiers]]\ncolumn = "User"\nmatch = "login"\n', "student.identifiers.0.match"),
    ],
)
def test_wrong_mapping_keys_are_named(tmp_path: Path, toml: str, fragment: str) -> None:
    path = tmp_path / "m.toml"
    path.write_text(toml, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_mapping(path)
    assert fragment in str(e.value)


def test_config_mappings_are_the_presets_written_out() -> None:
    for name, preset in PRESETS.items():
        if name == "oneroster":
            continue
        path = CONFIG / f"{name}.toml"
        assert path.read_text(encoding="utf-8") == preset.toml(), name
        assert load_mapping(path) == preset.mapping


def test_blackboard_original_and_ultra_are_told_apart_by_the_overall_grade() -> None:
    users = ["Last Name", "First Name", "Username", "Student ID", "Last Access", "Availability"]
    original = [*users, "Weighted Total [Total Pts: up to 0 Percentage] |1", "Quiz [Total Pts: 10 Score] |2"]
    ultra = [*users, "Quiz [Total Pts: 10 Score] |2", "Overall Grade [Total Pts: up to 10 Letter] |3"]
    assert (detect(original) or PRESETS["canvas"]).name == "blackboard"
    assert (detect(ultra) or PRESETS["canvas"]).name == "blackboard-ultra"


def test_a_header_that_almost_is_a_preset_says_what_differs() -> None:
    header = ["Last Name", "First Name", "Student ID", "Quiz [Total Pts: 10 Score] |2"]
    assert detect(header) is None
    found = near_miss(header)
    assert found is not None and found[0].name.startswith("blackboard") and found[1] == ["Username"]


def test_text_named_xlsx_is_refused_saying_it_is_text(tmp_path: Path) -> None:
    from gradesync.errors import InputError

    path = write(tmp_path, "grades.xlsx", "class,assignment,student,points\nSEC-1001,Quiz,000101,9\n")
    with pytest.raises(InputError) as e:
        read(path)
    assert "it holds text" in str(e.value) and "login" not in str(e.value)


def test_unknown_format_names_the_new_presets() -> None:
    with pytest.raises(ConfigError) as e:
        read_inputs([CONFIG / "canvas.toml"], Settings(), format="schoology")
    assert "blackboard" in str(e.value) and "brightspace" in str(e.value)


def test_oneroster_result_value_max_that_is_not_a_number_refuses_its_results(tmp_path: Path) -> None:
    (tmp_path / "lineItems.csv").write_text(
        "sourcedId,status,dateLastModified,title,classSourcedId,resultValueMin,resultValueMax\n"
        "li-1,active,,Quiz,SEC-1001,0,10\nli-2,active,,Lab,SEC-1001,0,fifty\n"
    )
    results = tmp_path / "results.csv"
    results.write_text(
        "sourcedId,status,dateLastModified,lineItemSourcedId,studentSourcedId,scoreStatus,score\n"
        "r-1,active,,li-1,000101,fully graded,9\nr-2,active,,li-2,000101,fully graded,40\n"
    )
    result = read_inputs([results], Settings())
    assert col(result, "points_possible")[0] == 10.0 and math.isnan(col(result, "points_possible")[1])
    assert col(result, "reason") == ["", "points_possible_mismatch"]
    assert "resultValueMax" in col(result, "message")[1]
