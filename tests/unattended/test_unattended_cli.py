"""``gradesync sync``/``apply`` as a scheduler runs them: real subprocesses against the emulator.

What an operator relies on: a full sync with a known token and client secret leaves neither in any
file it writes nor in its output; the cron line of docs/scheduling/crontab works as written; two runs
at once (the second exits 5 and creates no run directory); run directories, retention and --notify.
"""

from __future__ import annotations

import csv
import json
import os
import re
import select
import subprocess
import sys
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from gradesync.cli import cli

REPO = Path(__file__).resolve().parents[2]
SAMPLE = str(REPO / "sample_data" / "sis_long.csv")
LOOSE = ["--max-changes", "100%", "--max-decreases", "100%", "--min-coverage", "off"]


def _env(server: Any, token: str, **extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GRADESYNC_")}
    return {**base, "GRADESYNC_GRAPH_URL": server.base_url, "GRADESYNC_ACCESS_TOKEN": token, **extra}


def _sync(tmp: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[bytes]:
    argv = [sys.executable, "-m", "gradesync", "sync", SAMPLE, "--state-dir", str(tmp / "state"), *args]
    return subprocess.run(argv, env=env, cwd=tmp, capture_output=True, timeout=120, check=False)


def _all_bytes(*roots: Path) -> list[tuple[Path, bytes]]:
    return [
        (p, p.read_bytes()) for root in roots if root.exists() for p in sorted(root.rglob("*")) if p.is_file()
    ]


def _run_dirs(tmp: Path) -> list[Path]:
    runs = tmp / "runs"
    return sorted(p for p in runs.iterdir() if p.is_dir()) if runs.exists() else []


def test_a_full_sync_leaves_no_secret_anywhere(emulator: Any, token: str, tmp_path: Path) -> None:
    secret = "Cl1ent-S3cret~known.value"
    result = _sync(
        tmp_path,
        _env(emulator, token, GRADESYNC_CLIENT_SECRET=secret),
        *LOOSE, "--log-format", "json", "--log-level", "DEBUG", "--report-dir", str(tmp_path / "rep"),
    )  # fmt: skip
    assert result.returncode == 1, result.stderr  # 1: the sample's deliberately rejected rows
    (run_dir,) = _run_dirs(tmp_path)
    files = _all_bytes(run_dir, tmp_path / "state", tmp_path / "rep")
    names = {p.name for p, _ in files}
    assert {"run.json", "gradesync.log", "journal.sqlite", "plan.json", "summary.json"} <= names
    assert {"reconciliation.csv", "report.html"} <= names
    log_lines = (run_dir / "gradesync.log").read_text().splitlines()
    assert len(log_lines) > 20 and all(json.loads(line)["run_id"] == run_dir.name for line in log_lines)
    for needle in (token.encode(), secret.encode()):
        hits = [str(p) for p, data in files if needle in data]
        hits += [
            name for name, out in (("stdout", result.stdout), ("stderr", result.stderr)) if needle in out
        ]
        assert hits == [], f"{needle!r} found in {hits}"
    assert b"***" not in (run_dir / "run.json").read_bytes()  # nothing needed redacting in the argv


def test_a_refused_token_appears_nowhere_and_exits_3(emulator: Any, tmp_path: Path) -> None:
    wrong = "wr0ng-token-for-this-tenant"
    result = _sync(tmp_path, _env(emulator, wrong), *LOOSE, "--log-level", "DEBUG")
    assert result.returncode == 3, result.stderr
    (run_dir,) = _run_dirs(tmp_path)
    record = json.loads((run_dir / "run.json").read_text())
    assert record["exit_code"] == 3 and record["status"] == "failed" and record["error"]["code"]
    log_text = (run_dir / "gradesync.log").read_text()
    assert "exit code 3" in log_text
    files = _all_bytes(tmp_path)
    assert [str(p) for p, data in files if wrong.encode() in data] == []
    assert wrong.encode() not in result.stdout + result.stderr


def test_run_directories_are_kept_pruned_and_recorded(emulator: Any, token: str, tmp_path: Path) -> None:
    runner = CliRunner()
    env = {k: v for k, v in _env(emulator, token).items() if k.startswith("GRADESYNC_")}
    hook_out = tmp_path / "notified.txt"
    notify = f"{sys.executable} -c \"import sys,os; open({str(hook_out)!r},'a').write(sys.argv[-1]+' '+os.environ['GRADESYNC_EXIT_CODE']+chr(10))\""  # noqa: E501
    seen = []
    for _ in range(3):
        args = ["sync", SAMPLE, "--state-dir", str(tmp_path / "state"), *LOOSE, "--keep-runs", "2"]
        result = runner.invoke(cli, [*args, "--notify", notify, "--quiet"], env=env)
        assert result.exit_code in (0, 1), result.output
        seen.append(re.search(r"^run: (.+)$", result.output, re.M).group(1))  # type: ignore[union-attr]
    kept = _run_dirs(tmp_path)
    assert [str(p) for p in kept] == seen[1:]  # the oldest was pruned, the current never
    record = json.loads((kept[-1] / "run.json").read_text())
    assert record["command"] == "sync" and record["status"] == "finished"
    assert record["journal"] == str(tmp_path / "state" / "journal.sqlite")
    assert Path(record["summary"]) == kept[-1] / "summary.json" and Path(record["plan"]).is_file()
    assert record["gradesync_version"] and record["finished_at"] >= record["started_at"]
    assert result.output.count("\n") == 4  # --quiet: the three report paths and the run directory
    notified = hook_out.read_text().splitlines()
    assert [line.split()[0] for line in notified] == [str(Path(s) / "summary.json") for s in seen]


def test_explicit_report_dir_and_apply_keeps_a_plan_copy(emulator: Any, token: str, tmp_path: Path) -> None:
    runner = CliRunner()
    env = {k: v for k, v in _env(emulator, token).items() if k.startswith("GRADESYNC_")}
    rep = tmp_path / "rep"
    args = ["sync", SAMPLE, "--state-dir", str(tmp_path / "state"), "--report-dir", str(rep), *LOOSE]
    assert runner.invoke(cli, [*args, "--dry-run"], env=env).exit_code in (0, 1)
    (run_dir,) = _run_dirs(tmp_path)
    assert sorted(p.name for p in run_dir.iterdir()) == ["gradesync.log", "run.json"]
    assert json.loads((run_dir / "run.json").read_text())["summary"] == str(rep / "summary.json")
    apply_args = ["apply", str(rep / "plan.json"), "--state-dir", str(tmp_path / "state"), *LOOSE]
    result = runner.invoke(cli, apply_args, env=env)
    assert result.exit_code == 1, result.output
    (newest,) = (d for d in _run_dirs(tmp_path) if d != run_dir)
    assert {"plan.json", "summary.json", "reconciliation.csv", "run.json"} <= {
        p.name for p in newest.iterdir()
    }
    assert (newest / "plan.json").read_bytes() == (rep / "plan.json").read_bytes()


def _wait_readable(path: Path, limit: float = 120.0) -> bytes:
    """Block until the writer end of FIFO ``path`` has written (an event, not a sleep); ``limit`` is
    only a safety net against a hung test."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        ready, _, _ = select.select([fd], [], [], limit)
        assert ready, f"nothing arrived on {path}"
        return os.read(fd, 100)
    finally:
        os.close(fd)


def test_two_syncs_at_once_the_second_exits_5(emulator: Any, token: str, tmp_path: Path) -> None:
    # The first run holds the lock until the test lets it go: its --notify hook (run while the lock
    # is held) says "holding" through one FIFO, then waits for "go" on another. No timing involved.
    holding, release = tmp_path / "holding.fifo", tmp_path / "release.fifo"
    os.mkfifo(holding)
    os.mkfifo(release)
    hook = f"sh -c 'echo holding > {holding}; cat {release} > /dev/null'"
    env = _env(emulator, token)
    argv = [sys.executable, "-m", "gradesync", "sync", SAMPLE, "--state-dir", str(tmp_path / "state"), *LOOSE]
    first = subprocess.Popen([*argv, "--notify", hook], env=env, cwd=tmp_path,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        assert _wait_readable(holding).strip() == b"holding"
        second = _sync(tmp_path, env, *LOOSE)
        assert second.returncode == 5
        assert f"pid={first.pid}".encode() in second.stderr and b"[locked]" in second.stderr
        assert len(_run_dirs(tmp_path)) == 1  # the refused run made no run directory
    finally:
        try:  # the hook is waiting on it by now; if the first run died early, nobody reads
            fd = os.open(release, os.O_WRONLY | os.O_NONBLOCK)
            os.write(fd, b"go\n")
            os.close(fd)
        except OSError:
            pass
        first.wait(timeout=60)
    assert first.returncode == 1  # the sample's rejected rows


def test_the_crontab_line_runs_as_written(emulator: Any, token: str, tmp_path: Path) -> None:
    line = next(
        ln
        for ln in (REPO / "docs" / "scheduling" / "crontab").read_text().splitlines()
        if ln and ln[0] != "#"
    )
    fields = line.split(None, 5)
    assert len(fields) == 6 and fields[:5] == ["15", "2", "*", "*", "*"]
    command = fields[5]
    # The test's stand-ins for the production paths; the command line itself is used as written.
    var = tmp_path / "var"
    env_file = tmp_path / "env"
    env_file.write_text(f"GRADESYNC_GRAPH_URL={emulator.base_url}\nGRADESYNC_ACCESS_TOKEN={token}\n")
    export = tmp_path / "grades.csv"
    # A nightly export that Teams already agrees with (a first, loose sync loads it; its rejected rows are
    # left out), so the cron line's default guards pass and the run exits 0.
    first = CliRunner().invoke(cli, ["sync", SAMPLE, "--state-dir", str(tmp_path / "seed"), *LOOSE],
                               env=dict(_env(emulator, token)))  # fmt: skip
    assert first.exit_code == 1
    (seed_run,) = _run_dirs(tmp_path)
    with (seed_run / "reconciliation.csv").open(encoding="utf-8-sig", newline="") as fh:
        good = {
            int(r["source_row"])
            for r in csv.DictReader(fh)
            if r["status"] in ("updated", "created", "unchanged")
        }
    with Path(SAMPLE).open(newline="", encoding="utf-8-sig") as fh:
        header, *body = list(csv.reader(fh))
    keep = [row for n, row in enumerate(body, start=2) if n in good]  # source_row 1 is the header
    with export.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([header, *keep])
    command = (
        command.replace("/opt/gradesync", str(REPO))
        .replace("/etc/gradesync/env", str(env_file))
        .replace("/srv/sis/export/grades.csv", str(export))
        .replace("/var/lib/gradesync", str(var))
    )
    result = subprocess.run(["/bin/sh", "-c", command], capture_output=True, timeout=120, check=False,
                            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    (run_dir,) = sorted((var / "runs").iterdir())
    assert {"run.json", "gradesync.log", "summary.json", "reconciliation.csv", "report.html"} <= {
        p.name for p in run_dir.iterdir()
    }
    assert json.loads((run_dir / "run.json").read_text())["exit_code"] == 0
    assert all(json.loads(line) for line in (run_dir / "gradesync.log").read_text().splitlines())
    assert result.stderr == b""  # --quiet: nothing for cron to mail but the report paths
