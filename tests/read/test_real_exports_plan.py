"""Real exports planned against the emulator: each preset's sample plans exactly these operations.

In-process for every preset (read → resolve over HTTP → plan); end to end as ``gradesync plan``
subprocesses for Canvas, the registrar's hand-made workbook and the OneRoster zip. Planning never
writes. A percent or a fraction is converted to points against Teams' maximum (55% of 10 → 5.5),
and never planned as the fraction of a point.
"""

from __future__ import annotations

import csv
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from gradesync.config import Settings
from gradesync.graph import GraphClient, RateLimit
from gradesync.pipeline import make_plan

EXPORTS = Path(__file__).resolve().parents[2] / "sample_data" / "exports"

Op = tuple[int, str, str, str, Any]  # source_row, student, assignment, action, desired points (None)


def _plan(emulator: Any, token: str, paths: list[Path], class_key: str | None = None) -> pd.DataFrame:
    settings = Settings.model_validate({"graph": {"base_url": emulator.base_url}})
    with GraphClient(emulator.base_url, lambda: token, rate_limit=RateLimit.off()) as client:
        plan = make_plan(paths, settings, client, class_key=class_key)
    return plan.rows


def _ops(rows: pd.DataFrame) -> list[Op]:
    out = []
    for r in rows.to_dict("records"):
        d = r["desired_points"]
        out.append(
            (
                int(r["source_row"]),
                r["student_key"],
                r["assignment_key"],
                r["action"],
                None if math.isnan(d) else d,
            )
        )
    return out


Q, L = "Unit 1 Quiz", "Lab Report 1"
ANA, ANA2, NOAH = "ana.moreau101@contoso.edu", "ana.alvarez102@contoso.edu", "noah.ahmed103@contoso.edu"
CASES: dict[str, tuple[str, str | None, list[Op]]] = {
    "canvas": (
        "canvas_gradebook.csv",
        "SEC-1001",
        [
            (3, "000101", Q, "noop", 9.5), (3, "000101", L, "update", 40.0),
            (4, "000102", Q, "update", 8.0), (4, "000102", L, "excuse", None),
            (5, "000103", Q, "create", 7.0), (5, "000103", L, "noop", 27.5),
            (6, "000105", Q, "noop", 3.5), (6, "000105", L, "noop", None),
            (7, "", Q, "noop", None), (7, "", L, "noop", None),  # Test Student: ignored_row
        ],
    ),
    "powerschool": (
        "powerschool_scores.csv",  # with powerschool_scores.mapping.toml beside it: two sections
        None,
        [
            (2, "000101", Q, "noop", 9.5), (3, "000102", Q, "update", 6.0), (4, "000103", Q, "excuse", None),
            (5, "000105", Q, "update", 4.0), (6, "000130", Q, "update", 13.0),
            (7, "000131", Q, "create", 18.0),
        ],
    ),
    "infinite-campus": (
        "infinite_campus_scores.csv",
        None,
        [(2, "000101", L, "update", 45.0), (3, "000102", L, "excuse", None), (4, "000103", L, "noop", 27.5),
         (5, "000105", L, "noop", None)],
    ),
    "skyward": (
        "skyward_gradebook.csv",
        "SEC-1001",
        [
            (2, "000101", Q, "noop", 9.5), (2, "000101", L, "noop", None),
            (3, "000102", Q, "update", 3.0), (3, "000102", L, "excuse", None),
            (4, "000103", Q, "noop", None), (4, "000103", L, "update", 30.0),
            (5, "", Q, "noop", None), (5, "", L, "noop", None),
        ],
    ),
    "google-classroom": (
        "google_classroom_grades.csv",
        "SEC-1001",
        [
            (2, "", Q, "noop", None), (2, "", L, "noop", None),  # the due-date row
            (4, "", Q, "noop", None), (4, "", L, "noop", None),  # Class average
            (5, ANA, Q, "noop", 9.5), (5, ANA, L, "update", 45.0),
            (6, ANA2, Q, "update", 5.0), (6, ANA2, L, "noop", None),
            (7, NOAH, Q, "create", 8.5), (7, NOAH, L, "update", 28.0),
        ],
    ),
    "moodle": (
        "moodle_grades.csv",
        "SEC-1001",
        [
            (2, "000101", Q, "noop", 9.5), (2, "000101", L, "noop", None),
            (3, "000102", Q, "update", 7.0), (3, "000102", L, "update", 21.0),
            (4, "000103", Q, "noop", None), (4, "000103", L, "noop", 27.5),
        ],
    ),
    "oneroster": (
        "oneroster_gradebook.zip",
        None,
        [
            (2, "000101", Q, "noop", 9.5), (3, "000102", Q, "update", 7.0), (4, "000103", Q, "excuse", None),
            (5, "000105", L, "update", 30.0), (6, "000101", L, "noop", None),
            (7, "000106", Q, "noop", None),  # tobedeleted: ignored_row
            (8, "000131", Q, "create", 19.0),
        ],
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", list(CASES))
def test_each_preset_plans_exactly_these_operations(name: str, emulator: Any, token: str) -> None:
    file, class_key, expected = CASES[name]
    before = emulator.state()
    rows = _plan(emulator, token, [EXPORTS / file], class_key)
    assert _ops(rows) == expected
    assert not (rows["action"] == "reject").any(), rows[rows["action"] == "reject"][["source_row", "message"]]
    ignored = rows[rows["reason"] == "ignored_row"]
    assert (ignored["action"] == "noop").all()
    assert emulator.state() == before  # planning never writes


def _check_workbook(rows: pd.DataFrame) -> None:
    by = {(int(r["source_row"]), r["assignment_key"]): r for _, r in rows.iterrows()}
    assert (by[4, L]["action"], float(by[4, L]["desired_points"])) == ("update", 40.0)
    assert (by[6, Q]["action"], by[6, Q]["reason"]) == ("reject", "letter_grade")
    assert (by[6, L]["action"], float(by[6, L]["desired_points"])) == ("noop", 27.5)
    assert (by[7, Q]["action"], by[7, Q]["reason"]) == ("reject", "date_not_points")
    assert "Excel turned this into a date" in by[7, Q]["message"]
    for r in (8, 9):  # Class Average, Total
        assert {by[r, Q]["reason"], by[r, L]["reason"]} == {"ignored_row"}
    percent = by[4, Q]
    assert str(percent["points_raw"]) == "55%"
    assert str(percent["desired_points"]) not in ("0.55", "0.55000")  # never the fraction of a point
    assert (percent["action"], float(percent["desired_points"])) == ("update", 5.5)  # 55% of 10
    assert (by[5, Q]["action"], float(by[5, Q]["desired_points"])) == ("update", 8.0)  # 8/10, max 10
    assert (by[5, L]["action"], by[5, L]["reason"]) == ("reject", "fraction_mismatch")  # 17/20, max 50


def test_registrar_workbook_in_process(emulator: Any, token: str) -> None:
    rows = _plan(emulator, token, [EXPORTS / "registrar_workbook.xlsx"])  # its mapping is beside it
    assert len(rows) == 12  # 6 input rows × 2 assignment columns: every row is in the plan
    _check_workbook(rows)


# ---------------------------------------------------------------------------------------------
# end to end: `gradesync plan` as a subprocess
# ---------------------------------------------------------------------------------------------
def _run_plan(
    args: list[str], emulator: Any, token: str, cwd: Path
) -> tuple[subprocess.CompletedProcess[str], pd.DataFrame]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRADESYNC_")}
    env |= {"GRADESYNC_GRAPH_URL": emulator.base_url, "GRADESYNC_ACCESS_TOKEN": token}
    result = subprocess.run(
        [sys.executable, "-m", "gradesync", "plan", *args, "--out", "plan.json", "--report-dir", "reports"],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    rows = pd.DataFrame()
    if (cwd / "reports" / "plan.csv").exists():
        with (cwd / "reports" / "plan.csv").open(encoding="utf-8-sig", newline="") as fh:
            rows = pd.DataFrame(list(csv.DictReader(fh)), dtype=object)
    return result, rows


def _cli_ops(rows: pd.DataFrame) -> list[Op]:
    return [
        (
            int(r["source_row"]),
            r["student"],
            r["assignment"],
            r["action"],
            float(r["desired_points"]) if r["desired_points"] else None,
        )
        for r in rows.to_dict("records")
    ]


def test_canvas_end_to_end(tmp_path: Path, emulator: Any, token: str) -> None:
    before = emulator.state()
    result, rows = _run_plan(
        [str(EXPORTS / "canvas_gradebook.csv"), "--class", "SEC-1001"], emulator, token, tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert _cli_ops(rows) == CASES["canvas"][2]
    assert emulator.state() == before


def test_canvas_end_to_end_without_class_explains_the_section_column(
    tmp_path: Path, emulator: Any, token: str
) -> None:
    result, _ = _run_plan([str(EXPORTS / "canvas_gradebook.csv")], emulator, token, tmp_path)
    assert result.returncode == 2
    text = " ".join(result.stderr.split())
    assert 'column "Section" holds section names like "Algebra I - P1"' in text and "--class" in text


def test_oneroster_zip_end_to_end(tmp_path: Path, emulator: Any, token: str) -> None:
    result, rows = _run_plan([str(EXPORTS / "oneroster_gradebook.zip")], emulator, token, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _cli_ops(rows) == CASES["oneroster"][2]


def test_registrar_workbook_end_to_end(tmp_path: Path, emulator: Any, token: str) -> None:
    for name in ("registrar_workbook.xlsx", "registrar_workbook.mapping.toml"):
        shutil.copy(EXPORTS / name, tmp_path / name)
    result, rows = _run_plan(["registrar_workbook.xlsx"], emulator, token, tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr  # A- and the date are refused
    assert "registrar_workbook.mapping.toml" in result.stderr  # says which mapping it used
    rows = rows.rename(columns={"assignment": "assignment_key"})
    _check_workbook(rows)
