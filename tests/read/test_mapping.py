"""The mapping file: TOML a person writes, and what each part of it does to the rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from gradesync.config import Settings
from gradesync.errors import ConfigError, InputError
from gradesync.read import read_inputs
from gradesync.read.mapping import Mapping, load_mapping
from gradesync.read.presets import PRESETS

CONFIG = Path(__file__).resolve().parents[2] / "config" / "mappings"

LONG = (
    "Report: term 1,,,,,,\n"
    "\n"
    "Student_Number,Course_Number,Section_Number,Assignment_Name,Score,Points_Possible,Exempt\n"
    "101,ALG,1,Quiz,9,10,0\n"
    "S000102,ALG,1,Quiz,8,10,\n"
    "103,ALG,2,Quiz,,10,Y\n"
    "104,,2,Quiz,5,10,0\n"
)
MAPPING = """
layout = "long"
header_row = 3

[student]
column = "Student_Number"
zero_pad = 6
strip_prefix = "S"

[class]
template = "{Course_Number}.{Section_Number}"

[assignment]
column = "Assignment_Name"
points = "Score"
maximum = "Points_Possible"
excuse = "Exempt"
"""


def test_a_long_mapping(tmp_path: Path) -> None:
    data = tmp_path / "scores.csv"
    data.write_text(LONG)
    (tmp_path / "m.toml").write_text(MAPPING)
    mapping = load_mapping(tmp_path / "m.toml")
    result = read_inputs([data], Settings(), mapping=mapping)
    f = result.frame
    assert f["student_key"].tolist() == ["000101", "000102", "000103", "000104"]  # padded, prefix stripped
    assert f["class_key"].tolist() == ["ALG.1", "ALG.1", "ALG.2", ""]
    assert f["excuse"].tolist() == [False, False, True, False]
    assert f["reason"].tolist() == ["", "", "", "missing_identifier"]  # a blank part: no class
    assert f["points_possible"].tolist() == [10, 10, 10, 10]
    assert f["source_row"].tolist() == [4, 5, 6, 7]
    assert "header is on row 3" in result.warnings[0]


def test_a_wide_mapping_with_a_table_patterns_and_ignored_rows(tmp_path: Path) -> None:
    data = tmp_path / "wide.csv"
    data.write_text(
        "ID,Name,Q1 [7],Essay (final),Avg,Letter\n1,Ann,5,8,6.5,B\nTEST,Tester,1,1,1,F\nTotals,,6,9,,\n"
    )
    mapping = Mapping.model_validate(
        {
            "student": {"column": "ID"},
            "class": {"key": "SEC-1"},
            "columns": {
                "decoration": r" \[\d+\]$",
                "assignments": {"Essay (final)": "Essay 1"},
                "ignore": ["Name"],
                "ignore_patterns": ["^Avg$"],
            },
            "ignore_rows": [{"column": "ID", "pattern": "^TEST$", "why": "the teacher's test account"}],
        }
    )
    result = read_inputs([data], Settings(), mapping=mapping)
    f = result.frame
    assert f["assignment_key"].tolist() == ["Q1", "Essay 1"] * 3  # Letter is never a grade column
    assert f["reason"].tolist() == ["", "", "ignored_row", "ignored_row", "ignored_row", "ignored_row"]
    assert "the teacher's test account" in f["message"].iloc[2]
    assert "summary row" in f["message"].iloc[4]


def test_to_toml_round_trips_every_preset(tmp_path: Path) -> None:
    for preset in PRESETS.values():
        path = tmp_path / f"{preset.name}.toml"
        path.write_text(preset.mapping.to_toml())
        assert load_mapping(path) == preset.mapping, preset.name


def test_the_example_mappings_load() -> None:
    examples = sorted(CONFIG.glob("*.toml"))
    assert {p.stem for p in examples} >= set(PRESETS) - {"oneroster"}
    for path in examples:
        load_mapping(path)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('[student]\ncolum = "x"\n', "student.colum"),
        ('[class]\ncolumn = "a"\nkey = "b"\n', "only one of"),
        ('[class]\ntemplate = "no fields"\n', "names no column"),
        ('[columns]\ndecoration = "("\n', "not a valid regular expression"),
        ("header_row = 0\n", "header_row"),
        ("layout = ", "not valid TOML"),
    ],
)
def test_a_wrong_mapping_names_the_file_and_the_key(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_mapping(path)
    assert str(path) in str(e.value) and fragment in str(e.value)


def test_a_mapping_naming_a_missing_column_says_which(tmp_path: Path) -> None:
    data = tmp_path / "a.csv"
    data.write_text("Pupil,Quiz\n1,5\n")
    mapping = Mapping.model_validate({"student": {"column": "Student"}, "class": {"key": "S"}})
    with pytest.raises(InputError) as e:
        read_inputs([data], Settings(), mapping=mapping)
    assert (
        e.value.code == "input-missing-column"
        and '"Pupil"' in str(e.value)
        and "student.column" in str(e.value)
    )


def test_merged_group_row_above_the_header_is_skipped(tmp_path: Path) -> None:
    data = tmp_path / "g.csv"
    data.write_text("Student,,Assignments,\nStudent ID,Name,Quiz,Lab\n000101,Ann,5,6\n")
    result = read_inputs([data], Settings(), class_key="SEC-1")
    assert result.frame["assignment_key"].tolist() == ["Quiz", "Lab"]
    assert "merged group row" in result.warnings[0]


def test_the_readme_example_mapping_loads(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### The mapping file", 1)[1]
    block = section.split("```toml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "example.toml"
    path.write_text(block)
    mapping = load_mapping(path)
    assert mapping.student.zero_pad == 6 and mapping.values.letters == {"A": "95%", "B": 85}
    assert mapping.columns.decoration == r" \((\d+)\)$"
