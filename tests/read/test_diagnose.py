"""File-level diagnoses: one sentence when most rows of a file fail the same way."""

from __future__ import annotations

from pathlib import Path

from gradesync.config import Settings
from gradesync.read import read_inputs


def _read(tmp_path: Path, text: str, **kw: object) -> list[str]:
    path = tmp_path / "f.csv"
    path.write_text(text)
    return read_inputs([path], Settings(), **kw).diagnoses  # type: ignore[arg-type]


def test_most_grades_are_letters(tmp_path: Path) -> None:
    (d,) = _read(tmp_path, "student_id,Quiz,Lab\n000101,A,B+\n000102,C-,9\n", class_key="SEC-1")
    assert "3 of 4 grades" in d and "letter grades" in d and "[values.letters]" in d


def test_most_grades_are_dates(tmp_path: Path) -> None:
    (d,) = _read(tmp_path, "student_id,Quiz\n000101,2024-09-10\n000102,2024-09-08\n000103,7\n", class_key="S")
    assert "are dates" in d and "Excel turned typed scores" in d


def test_a_class_column_of_names(tmp_path: Path) -> None:
    (d,) = _read(tmp_path, "section,student_id,Quiz\nAlgebra I - P1,000101,5\nAlgebra I - P1,000102,6\n")
    assert 'column "section" holds names like "Algebra I - P1"' in d and 'class_by = "displayName"' in d


def test_ids_that_lost_their_leading_zeros(tmp_path: Path) -> None:
    (d,) = _read(tmp_path, "student_id,Quiz\n000101,5\n102,6\n103,7\n", class_key="S")
    assert '"102" beside "000101"' in d and "zero_pad = 6" in d


def test_a_clean_file_has_no_diagnosis(tmp_path: Path) -> None:
    assert _read(tmp_path, "student_id,Quiz\n000101,5\n000102,6\nClass Average,5.5\n", class_key="S") == []
