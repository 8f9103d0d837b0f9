"""rows.json: a run's rows come back with their types (what the web app's Result page reads instead
of parsing reconciliation.csv, whose numbers and booleans are formatted for Excel)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from gradesync.report.rowsfile import ROW_TYPES, RowsFileError, read_rows, write_rows


def _rows() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "row_key": np.arange(4, dtype=np.int64),
            "source_file": pd.Categorical(["canvas.csv"] * 3 + ["notas-álgebra.csv"]),
            "source_row": [2, 3, 4, 7],
            "class_key": ["SEC-1001", "SEC-1001", "SEC-1001", ""],
            "student_key": ["000101", "00123", "=cmd()", None],  # ids stay text, zeros and all
            "before_points": [9.5, np.nan, 40.0, np.nan],
            "desired_points": [10.0, 55.55, 0.0, np.nan],
            "action": ["update", "create", "update", "reject"],
            "status": ["updated", "created", "conflict", "rejected"],
            "message": ["", "", 'teacher said "no"', "row 7: 8,5 — an unquoted comma"],
            "clear": [False, False, True, False],
            "decrease": [False, False, True, None],
            "not_kept": [object(), 1, 2, 3],  # a column rows.json does not keep
        }
    )


def test_rows_come_back_typed(tmp_path):
    rows = _rows()
    path = write_rows(rows, tmp_path / "rows.json")
    back = read_rows(path)
    assert list(back.columns) == [c for c in ROW_TYPES if c in rows.columns]
    assert back["student_key"].tolist() == ["000101", "00123", "=cmd()", ""]  # no formula quote, no 123
    assert back["source_file"].tolist() == ["canvas.csv"] * 3 + ["notas-álgebra.csv"]
    assert back["before_points"].dtype == "float64" and math.isnan(back["before_points"][1])
    assert back["desired_points"].tolist()[:3] == [10.0, 55.55, 0.0]
    assert back["clear"].dtype == bool and back["clear"].tolist() == [False, False, True, False]
    assert back["decrease"].tolist() == [False, False, True, False]
    assert back["row_key"].dtype == "int64" and back["source_row"].tolist() == [2, 3, 4, 7]
    assert back["message"][2] == 'teacher said "no"'
    assert read_rows(path, ["status", "absent"]).columns.tolist() == ["status"]


def test_text_is_stored_once_per_value(tmp_path):
    n = 10_000
    rows = pd.DataFrame({"status": ["updated"] * n, "student_key": [f"{i % 30:06d}" for i in range(n)]})
    data = json.loads(write_rows(rows, tmp_path / "rows.json").read_text())
    assert (
        data["columns"]["status"]["values"] == ["updated"]
        and len(data["columns"]["student_key"]["values"]) == 30
    )


@pytest.mark.parametrize(
    "body",
    [b"", b"{}", b'{"format": "gradesync-rows", "version": 99, "rows": 0, "columns": {}}',
     b'{"format": "gradesync-rows", "version": 1, "rows": 2, "columns": {"status": {"type": "text", '
     b'"values": ["a"], "codes": [0, 5]}}}'],
)  # fmt: skip
def test_a_damaged_file_is_an_error(tmp_path, body):
    path = tmp_path / "rows.json"
    path.write_bytes(body)
    with pytest.raises(RowsFileError):
        read_rows(path)
