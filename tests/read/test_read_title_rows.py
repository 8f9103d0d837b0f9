"""A title above the header row is skipped (with a warning); without any header, the file is refused."""

from __future__ import annotations

import pytest

from gradesync.config import Settings
from gradesync.errors import InputError
from gradesync.read import read_inputs


def test_title_and_blank_line_above_a_csv_header_are_skipped(tmp_path):
    path = tmp_path / "g.csv"
    path.write_text(
        "Gradebook export - Algebra I,,,\n"
        "Printed 2026-11-20,,,\n"
        "\n"
        "section_id,assignment,student_id,points\n"
        "SEC-1001,Unit 1 Quiz,000101,7\n"
        "SEC-1001,Unit 1 Quiz,000102,6\n"
    )
    result = read_inputs([path], Settings())
    assert result.frame["source_row"].tolist() == [5, 6]
    assert result.frame["student_key"].tolist() == ["000101", "000102"]
    assert any("header is on row 4; rows 1–3 above it skipped" in w for w in result.warnings)


def test_a_title_and_no_header_at_all_is_still_refused(tmp_path):
    path = tmp_path / "g.csv"
    path.write_text("Gradebook export,,\nfoo,bar,baz\n1,2,3\n")
    with pytest.raises(InputError) as e:
        read_inputs([path], Settings())
    assert e.value.code == "input-no-header" and e.value.row == 1


def test_a_configured_student_column_is_what_the_search_looks_for(tmp_path):
    path = tmp_path / "g.csv"
    path.write_text("Term 1 marks,,,\nsection_id,assignment,Learner,points\nSEC-1001,Unit 1 Quiz,000101,7\n")
    settings = Settings.model_validate({"input": {"student_column": "Learner"}})
    result = read_inputs([path], settings)
    assert result.frame["student_key"].tolist() == ["000101"]
    assert result.frame["source_row"].tolist() == [3]
