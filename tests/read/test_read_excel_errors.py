"""Excel error cells (#N/A, #DIV/0! …) are values that are not numbers, never blank cells.

python-calamine reads them as ""; a blank points cell means "no change", so a broken VLOOKUP in a
gradebook would silently keep the old grade. The reader recovers them from the sheet's XML.
"""

from __future__ import annotations

from pathlib import Path

import openpyxl

from gradesync.config import Settings
from gradesync.read import read_inputs


def _workbook(path: Path, *, origin: str = "A1", sheets: tuple[str, ...] = ("Grades",)) -> Path:
    wb = openpyxl.Workbook()
    first = wb.active
    first.title = sheets[0]
    for extra in sheets[1:]:
        wb.create_sheet(extra)
    ws = wb[sheets[-1]]
    col0 = ord(origin[0]) - ord("A")
    row0 = int(origin[1:])
    rows = [
        ("section_id", "assignment", "student_id", "points"),
        ("SEC-1001", "Unit 1 Quiz", "000101", ("#N/A", "e")),
        ("SEC-1001", "Unit 1 Quiz", "000102", 5),
        ("SEC-1001", "Unit 1 Quiz", ("#REF!", "e"), 7),
        ("SEC-1001", "Unit 1 Quiz", "000104", None),
    ]
    for i, row in enumerate(rows):
        for j, value in enumerate(row):
            cell = ws.cell(row=row0 + i, column=col0 + j + 1)
            if isinstance(value, tuple):
                cell.value, cell.data_type = value
            else:
                cell.value = value
    wb.save(path)
    return path


def test_error_cells_are_invalid_points_not_blank(tmp_path):
    frame = read_inputs([_workbook(tmp_path / "g.xlsx")], Settings()).frame
    by_row = frame.set_index("source_row")
    assert by_row.loc[2, "points_raw"] == "#N/A"
    assert by_row.loc[2, "reason"] == "invalid_points"
    assert '"#N/A"' in by_row.loc[2, "message"] and '"points"' in by_row.loc[2, "message"]
    assert by_row.loc[3, "reason"] == ""  # the plain number still plans
    assert by_row.loc[4, "student_key"] == "#REF!"  # an error id is text, never a blank identifier
    assert by_row.loc[5, "reason"] == "blank_points"  # a truly empty cell is still "no change"


def test_error_cells_found_on_a_later_sheet_and_away_from_a1(tmp_path):
    path = _workbook(tmp_path / "g.xlsx", origin="C3", sheets=("Notes", "Grades"))
    frame = read_inputs([path], Settings(), sheet="Grades").frame
    assert frame.loc[frame["points_raw"] == "#N/A", "source_row"].tolist() == [4]
    assert frame.loc[frame["source_row"] == 4, "reason"].item() == "invalid_points"
