"""``gradesync apply`` / ``sync`` end to end: exit codes, reports, the lock, and SIGKILL + --resume."""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from execute_helpers import assert_converged, build_plan, points_outcomes_of

from gradesync.cli import cli
from gradesync.execute.apply import plan_hash
from gradesync.plan.planfile import write_plan
from gradesync.state.journal import Journal
from gradesync.state.lock import RunLock
from gradesync.state.plankey import load_plan_key, plan_key_path
from graph_emulator import FaultConfig

LOOSE = ["--max-changes", "100%", "--max-decreases", "100%", "--min-coverage", "off"]
REPO = Path(__file__).resolve().parents[2]


def env_for(server: Any, token: str) -> dict[str, str]:
    return {"GRADESYNC_GRAPH_URL": server.base_url, "GRADESYNC_ACCESS_TOKEN": token}


def apply(tmp: Path, server: Any, token: str, *args: str, env: dict[str, str] | None = None) -> Any:
    runner = CliRunner()
    argv = [
        "apply",
        str(tmp / "plan.json"),
        "--state-dir",
        str(tmp / "state"),
        "--report-dir",
        str(tmp / "rep"),
    ]
    return runner.invoke(cli, [*argv, *args], env=env if env is not None else env_for(server, token))


def save(plan: Any, tmp: Path) -> Path:
    """The plan file, signed with the key of the state directory ``apply`` uses (as ``plan`` does)."""
    path = tmp / "plan.json"
    write_plan(plan, path, key=load_plan_key(plan_key_path(tmp / "state")))
    return path


def report_rows(tmp: Path) -> list[dict[str, str]]:
    with (tmp / "rep" / "reconciliation.csv").open(encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


def test_apply_exit_0_and_reports(emulator: Any, token: str, tmp_path: Path) -> None:
    plan = build_plan(emulator.state(), updates=5, creates=3, rejects=0, base_url=emulator.base_url)
    save(plan, tmp_path)
    result = apply(tmp_path, emulator, token, *LOOSE)
    assert result.exit_code == 0, result.output
    assert "reconciliation.csv:" in result.output
    assert_converged(emulator, plan)
    rows = report_rows(tmp_path)
    assert len(rows) == len(plan.rows)
    assert {r["status"] for r in rows} == {"updated", "created", "unchanged"}
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    assert summary["status_counts"]["updated"] == 5
    assert summary["graph_requests"]["writes"] == 8
    assert (tmp_path / "rep" / "report.html").exists()


def test_apply_exit_1_with_rejected_rows(emulator: Any, token: str, tmp_path: Path) -> None:
    plan = build_plan(emulator.state(), updates=2, creates=0, rejects=2, base_url=emulator.base_url)
    save(plan, tmp_path)
    result = apply(tmp_path, emulator, token, *LOOSE)
    assert result.exit_code == 1, result.output
    assert [r["status"] for r in report_rows(tmp_path)].count("rejected") == 2


def test_apply_exit_4_when_a_guard_refuses(emulator: Any, token: str, tmp_path: Path) -> None:
    plan = build_plan(emulator.state(), updates=40, creates=0, noops=2, rejects=0, base_url=emulator.base_url)
    save(plan, tmp_path)
    before = points_outcomes_of(emulator.state())
    result = apply(tmp_path, emulator, token)
    assert result.exit_code == 4, result.output
    assert "plan changes 40 of 42 grades (95%), above --max-changes 50%" in result.output
    assert points_outcomes_of(emulator.state()) == before


def test_apply_exit_4_for_an_old_plan(emulator: Any, token: str, tmp_path: Path) -> None:
    plan = build_plan(
        emulator.state(), updates=2, creates=0, created_at="2020-01-01T00:00:00Z", base_url=emulator.base_url
    )
    save(plan, tmp_path)
    result = apply(tmp_path, emulator, token, *LOOSE)
    assert result.exit_code == 4
    assert "--max-plan-age 24h" in result.output


def test_apply_exit_3_without_a_token(emulator: Any, token: str, tmp_path: Path) -> None:
    plan = build_plan(emulator.state(), updates=1, creates=0, base_url=emulator.base_url)
    save(plan, tmp_path)
    result = apply(
        tmp_path,
        emulator,
        token,
        env={"GRADESYNC_GRAPH_URL": emulator.base_url, "GRADESYNC_ACCESS_TOKEN": ""},
    )
    assert result.exit_code == 3
    assert "auth-no-token" in result.output


def test_apply_exit_2_for_an_unreadable_plan_or_bad_option(emulator: Any, token: str, tmp_path: Path) -> None:
    (tmp_path / "plan.json").write_text("{not json", encoding="utf-8")
    assert apply(tmp_path, emulator, token).exit_code == 2
    plan = build_plan(emulator.state(), updates=1, creates=0, base_url=emulator.base_url)
    save(plan, tmp_path)
    assert apply(tmp_path, emulator, token, "--max-changes", "lots").exit_code == 2
    other = {"GRADESYNC_GRAPH_URL": "http://127.0.0.1:9/v1.0", "GRADESYNC_ACCESS_TOKEN": token}
    result = apply(tmp_path, emulator, token, env=other)
    assert result.exit_code == 2
    assert "plan-graph-mismatch" in result.output


def test_apply_exit_5_when_the_lock_is_held(emulator: Any, token: str, tmp_path: Path) -> None:
    plan = build_plan(emulator.state(), updates=1, creates=0, rejects=0, base_url=emulator.base_url)
    save(plan, tmp_path)
    with RunLock(tmp_path / "state"):
        result = apply(tmp_path, emulator, token, *LOOSE)
    assert result.exit_code == 5
    assert f"pid={os.getpid()}" in result.output
    assert apply(tmp_path, emulator, token, *LOOSE).exit_code == 0  # released: the next run proceeds


def test_two_runs_at_once_second_exits_5(emulator_factory: Any, token: str, tmp_path: Path) -> None:
    server = emulator_factory(faults=FaultConfig(latency_ms=150, scope="http"))
    plan = build_plan(server.state(), updates=10, creates=0, rejects=0, base_url=server.base_url)
    save(plan, tmp_path)
    proc = _spawn(tmp_path, server, token)
    try:
        deadline = time.monotonic() + 20
        holder = tmp_path / "state" / "lock.holder"  # written once the run holds the lock
        while not (holder.exists() and holder.read_text().startswith("pid=")):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.02)
        second = apply(tmp_path, server, token, *LOOSE)
        assert second.exit_code == 5, second.output
        assert f"pid={proc.pid}" in second.output
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == 0


def _spawn(tmp: Path, server: Any, token: str, *extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, **env_for(server, token)}
    argv = [sys.executable, "-m", "gradesync", "apply", str(tmp / "plan.json"), "--quiet"]
    argv += ["--state-dir", str(tmp / "state"), "--report-dir", str(tmp / "rep"), "--max-in-flight", "1"]
    return subprocess.Popen(
        [*argv, *LOOSE, *extra], env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume(emulator_factory: Any, token: str, tmp_path: Path) -> None:
    """Kill ``gradesync apply`` with SIGKILL at random instants (10 seeds); ``--resume`` converges with
    no duplicate points outcome and every input row in the report."""
    server = emulator_factory(faults=FaultConfig(latency_ms=25, jitter_ms=10, scope="http"))
    killed_mid_run = 0
    phases: list[str] = []  # what each kill left in the journal
    for seed in range(10):
        server.reset()
        tmp = tmp_path / f"seed{seed}"
        tmp.mkdir()
        plan = build_plan(
            server.state(), updates=50, creates=20, noops=3, rejects=1, base_url=server.base_url
        )
        save(plan, tmp)
        proc = _spawn(tmp, server, token)
        journal_file = tmp / "state" / "journal.sqlite"
        deadline = time.monotonic() + 20  # the interpreter's start-up is not the interesting part:
        while not journal_file.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)  # wait for the run to open its journal, then kill at a random instant
        time.sleep(random.Random(seed).uniform(0.0, 0.6))
        if proc.poll() is None:
            killed_mid_run += 1
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        if journal_file.exists():
            with Journal(journal_file) as journal:
                left = {r.status for r in journal.ops(plan_hash(plan)).values()}
            phases.append("sending" if "sending" in left else "partial" if len(left) > 1 else "|".join(left))
        result = apply(tmp, server, token, "--resume", *LOOSE)
        assert result.exit_code == 1, result.output  # 1: the rejected row
        assert_converged(server, plan)
        rows = report_rows(tmp)
        assert sorted(int(r["source_row"]) for r in rows) == sorted(plan.rows["source_row"].tolist())
        statuses = [r["status"] for r in rows]
        assert statuses.count("rejected") == 1
        assert statuses.count("updated") == 50 and statuses.count("created") == 20, statuses
    assert killed_mid_run >= 5, phases  # most kills really interrupted a run
    assert "sending" in phases, phases  # some kill left a batch whose fate was unknown


def test_a_corrupt_journal_exits_8_with_its_named_error(emulator: Any, token: str, tmp_path: Path) -> None:
    plan = build_plan(emulator.state(), updates=3, creates=0, rejects=0, base_url=emulator.base_url)
    save(plan, tmp_path)
    (tmp_path / "state" / "journal.sqlite").write_bytes(b"not a database\x00" * 300)
    emulator.reset_stats()
    result = apply(tmp_path, emulator, token, *LOOSE)
    assert result.exit_code == 8, result.output
    assert "storage-journal-corrupt" in result.output
    assert emulator.stats()["writes_applied"] == 0
