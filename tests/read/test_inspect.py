"""``gradesync inspect``: how a file is understood, offline and with a lookup of what Teams holds."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from gradesync.cli import cli
from gradesync.config import Settings
from gradesync.read import load_mapping, read_inputs
from gradesync.read.inspect import SnapshotLookup, id_format, inspect_inputs

EXPORTS = Path(__file__).resolve().parents[2] / "sample_data" / "exports"
TEAMS = SnapshotLookup(
    class_keys=["SEC-1001", "SEC-1002"],
    class_names=["Algebra I - P1", "Biology - P2"],
    assignments=["Unit 1 Quiz", "Lab Report 1", "Essay 1"],
    student_ids=["000101", "000102", "000103", "000105"],
)


def test_canvas_offline_without_class_still_explains_the_file() -> None:
    ins = inspect_inputs([EXPORTS / "canvas_gradebook.csv"], Settings())
    f = ins.files[0]
    assert (f.preset, f.layout, f.header_row) == ("canvas", "wide", 1)
    roles = {c.header: (c.role, c.assignment) for c in f.columns}
    assert roles["SIS User ID"] == ("student", "")
    assert roles["Unit 1 Quiz (48211)"] == ("assignment", "Unit 1 Quiz")
    assert roles["Current Score"][0] == "ignored"
    assert f.ignored_rows[-1] == {
        "row": 7,
        "why": '"Test Student" in column "Student": Canvas\'s test student',
    }
    assert f.id_formats == {"6 digits": 4}
    assert any('column "Section" holds section names' in d for d in ins.diagnoses)
    assert not ins.teams and "offline" in ins.render()
    json.dumps(ins.asdict())  # the web app's Map page takes it as JSON


def test_did_you_mean_against_teams(tmp_path: Path) -> None:
    path = tmp_path / "g.csv"
    path.write_text("section_id,student_id,Unit 1 Quizz,Lab Report 1\nSEC-1010,101,5,6\n")
    ins = inspect_inputs([path], Settings(), TEAMS)
    cols = {c.header: c for c in ins.files[0].columns}
    assert cols["Unit 1 Quizz"].in_teams is False and cols["Unit 1 Quizz"].did_you_mean == ["Unit 1 Quiz"]
    assert cols["Lab Report 1"].in_teams is True
    klass = ins.files[0].classes[0]
    assert (klass.key, klass.in_teams) == ("SEC-1010", False) and "SEC-1001" in klass.did_you_mean
    assert any("zero_pad = 6" in d for d in ins.diagnoses)  # 101 is 000101 once padded
    assert "NOT in Teams; did you mean 'Unit 1 Quiz'?" in ins.render()


def test_write_mapping_from_a_generic_file_reads_back_the_same(tmp_path: Path) -> None:
    src = tmp_path / "wb.csv"
    src.write_text("Gradebook,,,\nStudent ID,Name,Quiz,Total\n000101,Ann,5,5\nClass Average,,5,\n")
    out = tmp_path / "wb.mapping.toml"
    result = CliRunner().invoke(
        cli, ["inspect", str(src), "--class", "SEC-1", "--offline", "--write-mapping", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "header on row 2" in result.output and 'row 4: "Class Average"' in result.output
    mapping = load_mapping(out)
    assert (mapping.header_row, mapping.student.column, mapping.class_.key) == (2, "Student ID", "SEC-1")
    again = read_inputs([src], Settings())  # the mapping beside the file is used
    assert again.frame["assignment_key"].tolist() == ["Quiz", "Quiz"]
    assert again.frame["reason"].tolist() == ["", "ignored_row"]


def test_inspect_json_and_an_unreadable_file() -> None:
    ok = CliRunner().invoke(cli, ["inspect", str(EXPORTS / "oneroster_gradebook.zip"), "--offline", "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["files"][0]["preset"] == "oneroster"
    bad = CliRunner().invoke(cli, ["inspect", "/no/such/file.csv", "--offline"])
    assert bad.exit_code == 2


def test_id_formats() -> None:
    assert [id_format(v) for v in ("000101", "S000101", "ana@x.edu", "A B")] == [
        "6 digits", "S + 6 digits", "email", "other text",
    ]  # fmt: skip
