"""The Blackboard, Brightspace and Moodle samples, built from each vendor's documented layout, planned
against the emulator: each plans exactly these operations, says what it refused and why.

The expected operations follow from ``sample_data/tenant.json`` (what each submission holds) and the
samples' cells, as the comments say. Blackboard usernames are login names: the tests set
``[input] username_domain = "contoso.edu"`` as a school would, so Noah Lopez (no SIS id in Teams, no
Student ID in Blackboard) is found by his Username alone.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from gradesync.config import Settings
from gradesync.graph import GraphClient, RateLimit
from gradesync.pipeline import make_plan
from gradesync.read import read_inputs

EXPORTS = Path(__file__).resolve().parents[2] / "sample_data" / "exports"
Q, L, E = "Unit 1 Quiz", "Lab Report 1", "Essay 1"
NOAH = "noah.lopez104@contoso.edu"  # his Username with the school's domain: what found him
ZOE = "zoe.hughes138"  # her Brightspace Username: her first identifier with a value
Op = tuple[int, str, str, str, Any]


def _settings(emulator: Any, **input_kw: Any) -> Settings:
    return Settings.model_validate({"graph": {"base_url": emulator.base_url}, "input": input_kw})


def _plan(
    emulator: Any, token: str, path: Path, class_key: str, mapping: Path | None = None, **input_kw: Any
) -> pd.DataFrame:
    if mapping is not None:
        input_kw["mapping"] = str(mapping)  # [input] mapping: as a configuration names one
    settings = _settings(emulator, **input_kw)
    with GraphClient(emulator.base_url, lambda: token, rate_limit=RateLimit.off()) as client:
        plan = make_plan([path], settings, client, class_key=class_key)
    return plan.rows


def _ops(rows: pd.DataFrame) -> list[Op]:
    return [
        (
            int(r["source_row"]),
            r["student_key"],
            r["assignment_key"],
            r["action"],
            None if math.isnan(r["desired_points"]) else r["desired_points"],
        )
        for r in rows.to_dict("records")
    ]


def _row(rows: pd.DataFrame, source_row: int, assignment: str) -> dict[str, Any]:
    hit = rows[(rows["source_row"] == source_row) & (rows["assignment_key"] == assignment)]
    assert len(hit) == 1
    return hit.iloc[0].to_dict()


def test_blackboard_original_tab_download_named_xls(emulator: Any, token: str) -> None:
    """UTF-16 tab text named .xls, SEC-1001: the maxima in the headers (10, 50) are Teams' own; the
    calculated Weighted Total and Total are not assignments; Noah Lopez is found only by Username."""
    before = emulator.state()
    path = EXPORTS / "blackboard_grade_center.xls"
    assert read_inputs([path], Settings(), class_key="SEC-1001").preset == "blackboard"
    rows = _plan(emulator, token, path, "SEC-1001", username_domain="contoso.edu")
    assert _ops(rows) == [
        (2, "000101", Q, "noop", 9.5), (2, "000101", L, "update", 45.0),  # Teams: 9.5; a null outcome
        (3, "000102", Q, "update", 8.0), (3, "000102", L, "noop", None),  # Teams: 2; a blank cell
        (4, "000103", Q, "create", 7.0), (4, "000103", L, "noop", 27.5),  # no outcome yet; the same
        (5, NOAH, Q, "update", 6.0), (5, NOAH, L, "noop", 12.5),  # Teams: 5; 12.5
    ]  # fmt: skip
    assert set(rows["points_possible"]) == {10.0, 50.0}
    assert set(rows["source_column"]) == {
        "Unit 1 Quiz [Total Pts: 10 Score] |1260436",
        "Lab Report 1 [Total Pts: 50 Score] |1260437",
    }
    noah = _row(rows, 5, Q)
    assert noah["student_name"] == "Noah Lopez"
    assert (
        'student matched by Username "noah.lopez104@contoso.edu" (upn); Student ID is blank' in noah["note"]
    )
    assert emulator.state() == before  # planning never writes


def test_blackboard_username_without_the_schools_domain_finds_nobody(emulator: Any, token: str) -> None:
    rows = _plan(emulator, token, EXPORTS / "blackboard_grade_center.xls", "SEC-1001")
    noah = _row(rows, 5, Q)
    assert (noah["action"], noah["reason"]) == ("reject", "unknown_student")
    assert 'Username "noah.lopez104" (upn)' in noah["message"]
    assert (rows["source_row"] < 5).sum() == 6 and not (
        rows[rows["source_row"] < 5]["action"] == "reject"
    ).any()


def test_blackboard_comma_download_refuses_a_50_point_item_against_100_in_teams(
    emulator: Any, token: str
) -> None:
    """SEC-1002: "Lab Report 1 [Total Pts: 50 Score]" while Teams' Lab Report 1 is worth 100 — 45/50
    is never written as 45/100. Mei's row names two students (her Student ID, Rosa's Username)."""
    rows = _plan(
        emulator, token, EXPORTS / "blackboard_grade_center.csv", "SEC-1002", username_domain="contoso.edu"
    )
    assert _ops(rows) == [
        (2, "000129", Q, "update", 15.0), (2, "000129", L, "reject", 45.0),
        (3, "000130", Q, "noop", 12.5), (3, "000130", L, "reject", 44.0),
        (4, "000131", Q, "reject", 16.0), (4, "000131", L, "reject", 30.0),
        (5, "zoe.hughes138@contoso.edu", Q, "noop", 9.0), (5, "zoe.hughes138@contoso.edu", L, "noop", None),
    ]  # fmt: skip
    lab = _row(rows, 2, L)
    assert lab["reason"] == "points_possible_mismatch"
    assert lab["message"].startswith(
        'the file gives 50 points possible for "Lab Report 1", but Teams has a maximum of 100 points; '
    )
    assert 'maximum_mismatch = "scale"' in lab["message"]
    mei = _row(rows, 4, Q)
    assert mei["reason"] == "identifier_conflict"
    assert mei["message"].startswith(
        'Student ID "000131" is Mei O\'Neil but Username "rosa.oneil132@contoso.edu" is Rosa O\'Neil'
    )


def test_blackboard_mapping_that_scales_says_so_on_every_scaled_row(emulator: Any, token: str) -> None:
    """The preset written out with ``[values] maximum_mismatch = "scale"``: 45 of 50 → 90 of 100."""
    rows = _plan(
        emulator,
        token,
        EXPORTS / "blackboard_grade_center.csv",
        "SEC-1002",
        mapping=EXPORTS / "blackboard_scale.mapping.toml",
    )
    assert _ops(rows) == [
        (2, "000129", Q, "update", 15.0), (2, "000129", L, "update", 90.0),  # Teams: 10.5
        (3, "000130", Q, "noop", 12.5), (3, "000130", L, "update", 88.0),  # Teams: 87.5
        (4, "000131", Q, "reject", 16.0), (4, "000131", L, "reject", 30.0),  # still two students
        (5, "zoe.hughes138@contoso.edu", Q, "noop", 9.0), (5, "zoe.hughes138@contoso.edu", L, "noop", None),
    ]  # fmt: skip
    assert _row(rows, 2, L)["note"] == (
        "45 of 50 (the file's maximum) scaled to 90 of 100 (Teams' maximum), as the mapping says "
        '([values] maximum_mismatch = "scale")'
    )
    assert _row(rows, 2, Q)["note"] == ""  # 20 is Teams' maximum too: nothing to scale


def test_blackboard_ultra_download(emulator: Any, token: str) -> None:
    """SEC-1003: the Ultra gradebook's calculated Overall Grade (letters) is not an assignment."""
    path = EXPORTS / "blackboard_ultra_gradebook.csv"
    assert read_inputs([path], Settings(), class_key="SEC-1003").preset == "blackboard-ultra"
    rows = _plan(emulator, token, path, "SEC-1003", username_domain="contoso.edu")
    assert _ops(rows) == [
        (2, "000157", Q, "update", 40.0), (2, "000157", E, "noop", 12.5),  # Teams: 0; 12.5
        (3, "zoe.tanaka158@contoso.edu", Q, "noop", 19.0), (3, "zoe.tanaka158@contoso.edu", E, "noop", 7.0),
        (4, "000159", Q, "noop", 11.5), (4, "000159", E, "update", 2.0),  # Teams: 11.5; 1
    ]  # fmt: skip


def test_brightspace_export(emulator: Any, token: str) -> None:
    """SEC-1002, key field Both: "#" prefixes taken off; the MaxPoints in each header checked (Lab
    Report 1 is 50 here, 100 in Teams); final grades and the scheme symbol are not assignments; Zoe
    Hughes (no OrgDefinedId, a Username Teams does not know) is found by her Email."""
    path = EXPORTS / "brightspace_grades.csv"
    assert read_inputs([path], Settings(), class_key="SEC-1002").preset == "brightspace"
    rows = _plan(emulator, token, path, "SEC-1002")
    assert _ops(rows) == [
        (2, "000129", Q, "update", 16.0), (2, "000129", E, "noop", 3.0), (2, "000129", L, "reject", 45.0),
        (3, "000130", Q, "noop", 12.5), (3, "000130", E, "update", 9.5), (3, "000130", L, "noop", None),
        (4, ZOE, Q, "noop", 9.0), (4, ZOE, E, "noop", 8.5), (4, ZOE, L, "noop", None),  # found by Email
    ]  # fmt: skip
    assert _row(rows, 2, L)["reason"] == "points_possible_mismatch"
    assert _row(rows, 4, Q)["note"] == (
        'student matched by Email "zoe.hughes138@contoso.edu" (mail); OrgDefinedId is blank; '
        'Username "zoe.hughes138" found nobody'
    )


def test_moodle_display_types(emulator: Any, token: str) -> None:
    """SEC-1002 with Real, Percentage and Letter columns: one assignment per item; each percent checked
    against its points and Teams' maximum (Mei: 18 of 20 is 90 %, not 95 %); "-" is no grade."""
    rows = _plan(emulator, token, EXPORTS / "moodle_display_types.csv", "SEC-1002")
    assert _ops(rows) == [
        (2, "000129", Q, "update", 15.0), (2, "000129", E, "noop", 3.0),  # 75 %, 30 %: they agree
        (3, "000130", Q, "noop", None), (3, "000130", E, "update", 9.5),  # "-"; 95 %
        (4, "000131", Q, "reject", 18.0), (4, "000131", E, "noop", 7.0),  # 95 % ≠ 18/20
        (5, "zoe.hughes138@contoso.edu", Q, "noop", 9.0), (5, "zoe.hughes138@contoso.edu", E, "noop", 8.5),
    ]  # fmt: skip
    mei = _row(rows, 4, Q)
    assert mei["reason"] == "points_possible_mismatch"
    assert mei["message"].startswith(
        '18 points and its percent column\'s "95.00 %" disagree for "Unit 1 Quiz"'
    )
    assert "maximum of about 18.95" in mei["message"]
    assert _row(rows, 3, Q)["reason"] == "blank_points"  # "-" is no grade: never 0, never a clear


def test_blackboard_tab_download_end_to_end(tmp_path: Path, emulator: Any, token: str) -> None:
    """``gradesync plan`` on the .xls as downloaded, with the school's domain in its configuration."""
    shutil.copy(EXPORTS / "blackboard_grade_center.xls", tmp_path / "gc_ALG1_fullgc_2024-09-16.xls")
    (tmp_path / "gradesync.toml").write_text('[input]\nusername_domain = "contoso.edu"\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRADESYNC_")}
    env |= {"GRADESYNC_GRAPH_URL": emulator.base_url, "GRADESYNC_ACCESS_TOKEN": token}
    result = subprocess.run(
        [sys.executable, "-m", "gradesync", "plan", "gc_ALG1_fullgc_2024-09-16.xls", "--class", "SEC-1001",
         "--config", "gradesync.toml", "--out", "plan.json", "--report-dir", "reports"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "named .xls but is tab-separated text (utf-16); read as text" in result.stderr
    plan = pd.read_csv(tmp_path / "reports" / "plan.csv", dtype=str, keep_default_na=False)
    assert plan["action"].tolist() == ["noop", "update", "update", "noop", "create", "noop", "update", "noop"]
