"""The corpus of bad inputs (tests/corpus): each file gives the outcome written in expected.toml.

Every case runs in-process (read → resolve against the emulator over HTTP → the pure planner); the
cases marked ``cli`` also run end-to-end as ``gradesync plan`` subprocesses, checking the exit status,
stderr, plan.csv (formula injection neutralised) and report.html (every value escaped). Planning
never writes: each case checks that the emulator saw only GETs and its state did not change.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from gradesync.config import Settings
from gradesync.errors import InputError
from gradesync.graph import GraphClient, RateLimit
from gradesync.models import Action
from gradesync.pipeline import make_plan
from tests.corpus import make_corpus

CORPUS = Path(__file__).resolve().parent / "corpus"
CASES: list[dict[str, Any]] = tomllib.loads((CORPUS / "expected.toml").read_text(encoding="utf-8"))["case"]
BY_NAME = {c["name"]: c for c in CASES}
ACTIONS = [a.value for a in Action]


def _ids(cases: list[dict[str, Any]]) -> list[Any]:
    return [
        pytest.param(
            c["name"],
            id=c["name"],
            marks=[pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")]
            if c.get("skip_root") and hasattr(os, "geteuid")
            else [],
        )
        for c in cases
    ]


def _input(case: dict[str, Any], tmp_path: Path) -> Path:
    if "generate" in case:
        return make_corpus.GENERATORS[case["generate"]](tmp_path)
    return CORPUS / case["file"]


def _sheet(case: dict[str, Any]) -> str | None:
    args = case.get("args", [])
    return args[args.index("--sheet") + 1] if "--sheet" in args else None


def _check_no_writes(emulator: Any, before: dict[str, Any]) -> None:
    stats = emulator.stats()
    assert set(stats["by_method"]) <= {"GET"}, stats["by_method"]
    assert emulator.state() == before, "planning must not write"


def _check_error(case: dict[str, Any], path: Path, text: str) -> None:
    """The message of an InputError (or a CLI's stderr) names the file, row and column."""
    text = " ".join(text.split())  # a console may wrap long lines
    assert str(path) in text, text
    if "row" in case:
        assert f", row {case['row']}" in text, text
    if "column" in case:
        assert f"column {case['column']!r}" in text, text
    for fragment in case.get("fragments", []):
        assert fragment in text, (fragment, text)


def _check_rows(case: dict[str, Any], rows: pd.DataFrame) -> None:
    """``rows``: one per input row with source_row, source_column, action, reason, message, note,
    student, desired_points (text or numbers)."""
    counts = rows["action"].value_counts().to_dict()
    if "counts" in case:
        expected = {a: case["counts"].get(a, 0) for a in ACTIONS}
        assert {a: counts.get(a, 0) for a in ACTIONS} == expected
    seen = pd.Series(False, index=rows.index)
    for spec in case.get("rows", []):
        hit = rows["source_row"].astype(int) == spec["row"]
        if "column" in spec:
            hit &= rows["source_column"] == spec["column"]
        assert hit.sum() == 1, (spec, rows.loc[hit].to_dict("records"))
        seen |= hit
        row = rows.loc[hit].iloc[0]
        where = f"{case['name']} row {spec['row']}: {row.to_dict()}"
        assert row["action"] == spec["action"], where
        assert row["reason"] == spec.get("reason", ""), where
        for fragment in spec.get("message", []):
            assert fragment in row["message"], (fragment, where)
        for fragment in spec.get("note", []):
            assert fragment in row["note"], (fragment, where)
        if "student" in spec:
            assert row["student"] == spec["student"], where
        if "points" in spec:
            assert float(row["desired_points"]) == spec["points"], where
        if "sheet" in spec:
            assert row["source_sheet"] == spec["sheet"], where
    if "other_rows" in case:
        rest = rows.loc[~seen]
        assert len(rest) > 0
        for key, value in case["other_rows"].items():
            assert (rest[key] == value).all(), rest.loc[rest[key] != value].head().to_dict("records")
    # every rejected row says why, in words
    rejected = rows.loc[rows["action"] == "reject"]
    assert (rejected["reason"] != "").all() and (rejected["message"].str.len() > 0).all()


def _exit_of(rows: pd.DataFrame) -> int:
    return 1 if (rows["action"] == "reject").any() else 0


# ---------------------------------------------------------------------------------------------
# in-process: read_inputs → resolve (HTTP, emulator) → build_plan
# ---------------------------------------------------------------------------------------------
def test_the_corpus_has_at_least_40_cases_each_with_an_outcome() -> None:
    assert len(CASES) >= 40
    assert len(BY_NAME) == len(CASES), "case names must be unique"
    for case in CASES:
        assert case["exit"] in (0, 1, 2), case["name"]
        assert ("file" in case) != ("generate" in case), case["name"]
        if "file" in case:
            assert (CORPUS / case["file"]).is_file(), case["file"]
        assert ("error" in case) == (case["exit"] == 2), case["name"]
        assert case.get("about"), case["name"]


@pytest.mark.parametrize("name", _ids(CASES))
def test_case_in_process(name: str, tmp_path: Path, emulator: Any, token: str) -> None:
    case = BY_NAME[name]
    path = _input(case, tmp_path)
    settings = Settings.model_validate({"graph": {"base_url": emulator.base_url}})
    before = emulator.state()
    emulator.reset_stats()
    with GraphClient(emulator.base_url, lambda: token, rate_limit=RateLimit.off()) as client:
        if case["exit"] == 2:
            with pytest.raises(InputError) as info:
                make_plan([path], settings, client, sheet=_sheet(case))
            err = info.value
            assert err.code == case["error"], str(err)
            assert err.exit_code == 2
            assert err.file == str(path)
            assert err.row == case.get("row"), str(err)
            if "column" in case:
                assert err.column == case["column"]
            _check_error(case, path, str(err))
            assert emulator.stats()["graph_requests"] == 0, "an unreadable file must not reach Graph"
            return
        plan = make_plan([path], settings, client, sheet=_sheet(case))
    _check_no_writes(emulator, before)
    rows = plan.rows.rename(columns={"student_key": "student"})
    assert len(rows) == sum(i.rows for i in plan.inputs)
    assert _exit_of(rows) == case["exit"]
    _check_rows(case, rows)
    for fragment in case.get("warnings", []):
        assert any(fragment in w for w in plan.warnings), (fragment, plan.warnings)
    # the valid rows of a partly bad file still plan
    if case["exit"] == 1 and (case.get("counts") or {}).keys() - {"reject"}:
        assert rows["action"].isin(["update", "create", "noop"]).any()


# ---------------------------------------------------------------------------------------------
# end-to-end: `gradesync plan` as a subprocess against the emulator
# ---------------------------------------------------------------------------------------------
CLI_CASES = [c for c in CASES if c.get("cli") and not c.get("once")]


def test_at_least_ten_cases_run_end_to_end() -> None:
    assert len(CLI_CASES) >= 10
    assert {c["exit"] for c in CLI_CASES} == {0, 1, 2}


def _run_plan(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GRADESYNC_")}
    return subprocess.run(
        [sys.executable, "-m", "gradesync", "plan", *args],
        env={**base, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _read_plan_csv(path: Path) -> pd.DataFrame:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        records = list(csv.DictReader(fh))
    return pd.DataFrame(records, dtype=object)


@pytest.mark.parametrize("name", _ids(CLI_CASES))
def test_case_end_to_end(name: str, tmp_path: Path, emulator: Any, token: str) -> None:
    case = BY_NAME[name]
    path = _input(case, tmp_path)
    before = emulator.state()
    emulator.reset_stats()
    out, reports = tmp_path / "plan.json", tmp_path / "reports"
    result = _run_plan(
        [str(path), *case.get("args", []), "--out", str(out), "--report-dir", str(reports)],
        {"GRADESYNC_GRAPH_URL": emulator.base_url, "GRADESYNC_ACCESS_TOKEN": token},
        tmp_path,
    )
    assert result.returncode == case["exit"], result.stdout + result.stderr
    _check_no_writes(emulator, before)
    assert token not in result.stdout + result.stderr
    if case["exit"] == 2:
        assert "Traceback" not in result.stderr
        assert not out.exists()
        if "cli_fragments" in case:
            for fragment in case["cli_fragments"]:
                assert fragment in result.stderr, result.stderr
            return
        assert f"[{case['error']}]" in result.stderr, result.stderr
        _check_error(case, path, result.stderr)
        assert not out.exists()
        return
    plan_csv = _read_plan_csv(reports / "plan.csv")
    plan = json.loads(out.read_text())
    assert len(plan_csv) == plan["row_count"]
    # plan.csv holds neutralised text: compare the checks on the text a person would have typed
    as_typed = plan_csv.copy()
    for col in ("student", "message", "source_column"):
        as_typed[col] = as_typed[col].map(lambda v: v[1:] if v.startswith("'") else v)
    _check_rows(case, as_typed)
    html = (reports / "report.html").read_text(encoding="utf-8")
    if name == "formula_injection":
        _check_formula_injection(plan_csv, html)
    if name == "html_in_names":
        _check_html_escaped(plan_csv, html)


def _check_formula_injection(plan_csv: pd.DataFrame, html: str) -> None:
    """Every cell that would start a formula in Excel is prefixed with ' in plan.csv."""
    for col in plan_csv.columns:
        for value in plan_csv[col]:
            if value[:1] in ("=", "+", "@") or (value[:1] == "-" and not _is_number(value)):
                pytest.fail(f"plan.csv column {col} holds a live formula: {value!r}")
    students = set(plan_csv["student"])
    assert {'\'=HYPERLINK("http://x","y")', "'+cmd|' /C calc'!A0", "'@SUM(1+1)"} <= students
    assert "'-2+3" in set(plan_csv["points_raw"])
    assert "'=1+1" in set(plan_csv["assignment"])
    assert "=HYPERLINK(&quot;http://x&quot;,&quot;y&quot;)" in html or "=HYPERLINK(&#34;" in html


def _check_html_escaped(plan_csv: pd.DataFrame, html: str) -> None:
    assert "<script>alert(" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;alert(3)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(2)&gt;" in html
    assert "<script>alert(3)</script>" in set(plan_csv["student"])


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# the zip bomb: refused before anything is inflated
# ---------------------------------------------------------------------------------------------
def test_zip_bomb_is_refused_with_bounded_memory(tmp_path: Path) -> None:
    """A fresh interpreter reads the bomb; its peak memory stays far below the 256 MB inside."""
    bomb = make_corpus.zip_bomb(tmp_path)
    assert bomb.stat().st_size < 2_000_000
    code = (
        "import resource, sys\n"
        "from gradesync.config import Settings\n"
        "from gradesync.errors import InputError\n"
        "from gradesync.read import read_inputs\n"
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "try:\n"
        "    read_inputs([sys.argv[1]], Settings())\n"
        "    print('read', flush=True)\n"
        "except InputError as e:\n"
        "    print(e.code)\n"
        "print(base, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(bomb)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    code_line, rss_line = result.stdout.split("\n")[:2]
    assert code_line == "input-suspicious-xlsx"
    base_kb, peak_kb = (int(x) for x in rss_line.split())
    assert peak_kb - base_kb < 64 * 1024, f"reading the bomb grew memory by {(peak_kb - base_kb) // 1024} MB"
