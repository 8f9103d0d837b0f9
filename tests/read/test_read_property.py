"""Hypothesis: identifiers written to CSV (and xlsx text cells) come back unchanged."""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from read_testkit import settings as make_settings
from read_testkit import xlsx

from gradesync.read import read_inputs

# Identifiers as exports hold them: digits with leading zeros, numbers in E notation, codes, names.
_ALPHABET = st.characters(
    codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp", "Zs"), exclude_characters="\ufeff"
)
ids = st.one_of(
    st.from_regex(r"\A0{0,4}[0-9]{1,12}\Z"),
    st.from_regex(r"\A[0-9]\.[0-9]{1,3}E\+[0-9]{2}\Z"),
    st.from_regex(r"\A(NaN|nan|NULL|null|None|N/A|NA|-|TRUE|false|inf)\Z"),  # "#N/A" is an Excel error
    st.text(_ALPHABET, min_size=1, max_size=12),
)
rows_strategy = st.lists(st.tuples(ids, ids, ids), min_size=1, max_size=20)


def _csv(rows: list[tuple[str, str, str]], delimiter: str) -> str:
    out = io.StringIO()
    w = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    w.writerow(["Class", "Assignment", "Student", "Points"])
    for c, a, s in rows:
        w.writerow([c, a, s, "1"])
    return out.getvalue()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=rows_strategy, delimiter=st.sampled_from([",", ";", "\t"]), bom=st.booleans())
def test_ids_round_trip_through_csv(rows: list[tuple[str, str, str]], delimiter: str, bom: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ids.csv"
        path.write_bytes(("\ufeff" if bom else "").encode() + _csv(rows, delimiter).encode())
        frame = read_inputs([path], make_settings()).frame
    assert frame["class_key"].tolist() == [r[0] for r in rows]
    assert frame["assignment_key"].tolist() == [r[1] for r in rows]
    assert frame["student_key"].tolist() == [r[2] for r in rows]
    assert frame["source_row"].tolist() == list(range(2, len(rows) + 2))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(st.tuples(ids, ids), min_size=1, max_size=8))
def test_ids_round_trip_through_xlsx_text_cells(rows: list[tuple[str, str]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        sheet = [["Class", "Assignment", "Student", "Points"]] + [[c, "Quiz", s, 1] for c, s in rows]
        path = xlsx(Path(tmp), "ids.xlsx", {"Sheet1": sheet})
        frame = read_inputs([path], make_settings()).frame
    assert frame["class_key"].tolist() == [r[0] for r in rows]
    assert frame["student_key"].tolist() == [r[1] for r in rows]
