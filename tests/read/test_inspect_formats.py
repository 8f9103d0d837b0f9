"""``gradesync inspect`` on the vendors' exports: the format detected (or the one the header almost
is), each column's declared maximum beside Teams', and for an export of no known format the mapping
lines that would read it."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from gradesync.cli import cli
from gradesync.config import Settings
from gradesync.read import load_mapping, read_inputs
from gradesync.read.inspect import SnapshotLookup, inspect_inputs

EXPORTS = Path(__file__).resolve().parents[2] / "sample_data" / "exports"
SEC_1002 = SnapshotLookup(
    class_keys=["SEC-1002"],
    class_names=["Biology - P2"],
    assignments=["Unit 1 Quiz", "Lab Report 1", "Essay 1"],
    assignment_maxima={"unit 1 quiz": [20.0], "lab report 1": [100.0], "essay 1": [10.0]},
)


def test_blackboard_columns_show_the_declared_maximum_beside_teams() -> None:
    ins = inspect_inputs(
        [EXPORTS / "blackboard_grade_center.csv"], Settings(), SEC_1002, class_key="SEC-1002"
    )
    f = ins.files[0]
    assert (f.preset, f.preset_title) == (
        "blackboard",
        "Blackboard Learn Original Grade Center download (Work Offline)",
    )
    cols = {c.header: c for c in f.columns}
    lab = cols["Lab Report 1 [Total Pts: 50 Score] |2260437"]
    assert (lab.role, lab.assignment, lab.maximum, lab.teams_maximum) == (
        "assignment",
        "Lab Report 1",
        50.0,
        [100.0],
    )
    assert lab.maximum_from == 'the header "[Total Pts: 50 Score]"'
    assert cols["Total [Total Pts: up to 70 Score] |2260434"].role == "ignored"
    assert (cols["Username"].role, cols["Student ID"].role) == ("student-fallback", "student")
    text = ins.render()
    assert (
        "→ 'Lab Report 1' (in Teams); maximum 50 (the header \"[Total Pts: 50 Score]\"), Teams 100: DIFFERS"
        in text
    )
    assert "→ 'Unit 1 Quiz' (in Teams); maximum 20 (the header \"[Total Pts: 20 Score]\"), Teams 20\n" in text


def test_moodle_twins_are_shown_as_twins() -> None:
    ins = inspect_inputs([EXPORTS / "moodle_display_types.csv"], Settings(), class_key="SEC-1002")
    roles = {c.header: (c.role, c.assignment) for c in ins.files[0].columns}
    assert roles["Quiz: Unit 1 Quiz (Percentage)"] == ("twin", "Unit 1 Quiz")
    assert roles["Quiz: Unit 1 Quiz (Real)"] == ("assignment", "Unit 1 Quiz")
    assert "as percents: each is checked" in ins.render()


def test_a_header_that_almost_is_a_format_says_what_differs(tmp_path: Path) -> None:
    path = tmp_path / "gc.csv"
    path.write_text(
        '"Last Name","First Name","Student ID","Unit 1 Quiz [Total Pts: 10 Score] |1"\n'
        '"Moreau","Ana","000101","9"\n'
    )
    ins = inspect_inputs([path], Settings(), class_key="SEC-1001")
    f = ins.files[0]
    assert f.preset is None
    assert f.near_miss == (
        "looks like a Blackboard Learn Original Grade Center download (Work Offline) export, but the header "
        'differs: no "Username"'
    )
    assert f.near_miss in ins.render()
    assert f.columns[3].maximum == 10.0  # the generic reading keeps the header's maximum too


def test_an_unknown_layout_gets_the_mapping_lines_that_read_it(tmp_path: Path) -> None:
    src = tmp_path / "export.csv"
    src.write_text(
        "Unique User ID,First Name,Last Name,Section Code,Quiz 1 (out of 10),Quiz 2,Comments\n"
        "000101,Ana,Moreau,SEC-1001,9,7,good\n000102,Ana,Alvarez,SEC-1001,8,,late\n000103,Noah,Ahmed,SEC-1001,,6,\n"
    )
    out = tmp_path / "export.mapping.toml"
    result = CliRunner().invoke(cli, ["inspect", str(src), "--offline", "--write-mapping", str(out)])
    assert result.exit_code == 0, result.output
    assert "no known export format, and the header aliases cannot read it" in result.output
    mapping = load_mapping(out)
    assert mapping.student.column == "Unique User ID" and mapping.class_.column == "Section Code"
    assert mapping.columns.ignore == ["First Name", "Last Name", "Comments"]
    again = read_inputs([src], Settings())  # the written mapping beside the file is used
    assert again.frame["assignment_key"].tolist() == ["Quiz 1 (out of 10)", "Quiz 2"] * 3
    assert again.frame["points_possible"].tolist()[:2][0] == 10.0


def test_an_unreadable_file_with_no_student_column_is_still_refused(tmp_path: Path) -> None:
    src = tmp_path / "notes.csv"
    src.write_text("Topic,Notes\nAlgebra,fine\n")
    result = CliRunner().invoke(cli, ["inspect", str(src), "--offline"])
    assert result.exit_code == 2 and "input-no-header" in result.output
