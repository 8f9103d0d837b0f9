"""docs/scheduling's examples run as written, with only the machine's paths swapped for the test's:
the systemd unit's ExecStart (and ``systemd-analyze verify`` on the units), the Windows task's
command line (under the simulated Windows standard library: tests/winstdlib), and the tenants/
directory checked by ``gradesync config check --tenants`` as the README shows it. The cron line has
its own test (test_unattended_cli.py); the container, Kubernetes and Airflow examples theirs
(tests/container, tests/airflow)."""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SCHEDULING = REPO / "docs" / "scheduling"
SAMPLE = REPO / "sample_data" / "sis_long.csv"
GRADESYNC = str(Path(sys.executable).parent / "gradesync")


def _clean_env(**extra: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("GRADESYNC_")}, **extra}


def _agreeing_export(emulator: Any, token: str, tmp_path: Path) -> Path:
    """A nightly export Teams already agrees with: a first, loose sync loads the sample (its rejected
    rows left out), so an example's default guards pass and its run exits 0."""
    seed = subprocess.run(
        [GRADESYNC, "sync", str(SAMPLE), "--state-dir", str(tmp_path / "seed" / "state"), "--quiet",
         "--max-changes", "100%", "--max-decreases", "100%", "--min-coverage", "off"],
        env=_clean_env(GRADESYNC_GRAPH_URL=emulator.base_url, GRADESYNC_ACCESS_TOKEN=token),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert seed.returncode == 1, seed.stderr  # the sample's deliberately rejected rows
    (run_dir,) = (tmp_path / "seed" / "runs").iterdir()
    with (run_dir / "reconciliation.csv").open(encoding="utf-8-sig", newline="") as fh:
        good = {int(r["source_row"]) for r in csv.DictReader(fh) if r["status"] in ("updated", "created")}
    with SAMPLE.open(newline="", encoding="utf-8-sig") as fh:
        header, *body = list(csv.reader(fh))
    export = tmp_path / "grades.csv"
    with export.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([header, *(row for n, row in enumerate(body, start=2) if n in good)])
    return export


def _unit_lines(name: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in (SCHEDULING / name).read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def test_the_systemd_service_runs_as_written(emulator: Any, token: str, tmp_path: Path) -> None:
    unit = _unit_lines("gradesync.service")
    assert unit["Type"] == ["oneshot"] and unit["SuccessExitStatus"] == ["5 6"]
    export = _agreeing_export(emulator, token, tmp_path)
    var = tmp_path / "var"
    credentials = tmp_path / "credentials"  # what LoadCredential= gives the service as %d
    credentials.mkdir()
    (credentials / "client_secret").write_text("unused-with-a-token\n", encoding="utf-8")
    swap = {
        "/opt/gradesync": str(REPO),
        "/srv/sis/export/grades.csv": str(export),
        "/var/lib/gradesync": str(var),
    }
    command = unit["ExecStart"][0]
    for old, new in swap.items():
        command = command.replace(old, new)
    env = _clean_env(GRADESYNC_GRAPH_URL=emulator.base_url, GRADESYNC_ACCESS_TOKEN=token)
    for assignment in unit["Environment"]:  # Environment=NAME=value, %d = the credentials directory
        name, _, value = assignment.partition("=")
        env[name] = value.replace("%d", str(credentials))
    result = subprocess.run(shlex.split(command), env=env, cwd=REPO, capture_output=True, text=True,
                            timeout=120, check=False)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    (run_dir,) = (var / "runs").iterdir()
    assert json.loads((run_dir / "run.json").read_text())["exit_code"] == 0
    assert all(json.loads(line)["run_id"] == run_dir.name for line in result.stderr.splitlines())  # journal

    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed: the units' syntax was not verified")
    units = tmp_path / "units"
    units.mkdir()
    for name in ("gradesync.service", "gradesync.timer"):
        text = (SCHEDULING / name).read_text(encoding="utf-8").replace("/opt/gradesync", str(REPO))
        (units / name).write_text(text, encoding="utf-8")
    verify = subprocess.run(["systemd-analyze", "verify", str(units / "gradesync.service"),
                             str(units / "gradesync.timer")], capture_output=True, text=True, timeout=60,
                            check=False)  # fmt: skip
    assert verify.returncode == 0 and verify.stderr.strip() == "", verify.stderr


def _windows_task() -> tuple[str, str, str]:
    """(executable, arguments, the schtasks /TR command line) as windows-task.ps1 writes them."""
    text = (SCHEDULING / "windows-task.ps1").read_text(encoding="utf-8")
    exe = re.search(r"^\$gradesync = '([^']+)'", text, re.M)
    parts = re.findall(r"'([^']*)'", text[text.index("$arguments") : text.index("$action")])
    tr = re.search(r'/TR "([^"]+)"', text)
    assert exe and parts and tr
    return exe[1], "".join(parts), tr[1]


def test_the_windows_task_runs_as_written_with_windows_standard_library(
    emulator: Any, token: str, tmp_path: Path
) -> None:
    """The task's command line, its Windows paths swapped for the test's, run by gradesync with the
    modules and names Windows' Python lacks taken away (PowerShell and Task Scheduler themselves
    cannot run here)."""
    exe, arguments, schtasks = _windows_task()
    assert schtasks == f"{exe} {arguments}"  # both ways of registering run the same command
    export = _agreeing_export(emulator, token, tmp_path)
    config = tmp_path / "gradesync.toml"
    config.write_text("", encoding="utf-8")
    data = tmp_path / "ProgramData"
    swap = {
        r"D:\SIS\export\grades.csv": str(export),
        r"C:\gradesync\config\gradesync.toml": str(config),
        r"C:\ProgramData\gradesync\state": str(data / "state"),
        r"C:\ProgramData\gradesync\runs": str(data / "runs"),
    }
    for old, new in swap.items():
        arguments = arguments.replace(old, new)
    assert "\\" not in arguments, arguments  # every Windows path was swapped
    env = _clean_env(
        GRADESYNC_GRAPH_URL=emulator.base_url,
        GRADESYNC_ACCESS_TOKEN=token,
        SIMULATE_WINDOWS_STDLIB="1",
        SIMULATE_WINDOWS_STDLIB_LOG=str(tmp_path / "attempts.log"),
        PYTHONPATH=str(REPO / "tests" / "winstdlib"),
    )
    result = subprocess.run([GRADESYNC, *arguments.split()], env=env, cwd=tmp_path, capture_output=True,
                            text=True, timeout=120, check=False)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    (run_dir,) = (data / "runs").iterdir()
    assert json.loads((run_dir / "run.json").read_text())["exit_code"] == 0
    attempts = (tmp_path / "attempts.log").read_text().splitlines()
    assert [a for a in attempts if "simulation active" not in a] == []  # nothing POSIX-only was reached
    assert any("simulation active" in a for a in attempts)


def test_the_tenants_directory_checks_as_the_readme_shows(tmp_path: Path) -> None:
    argv = [GRADESYNC, "config", "check", "--tenants", "tenants/"]
    result = subprocess.run(argv, cwd=REPO, env=_clean_env(), capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    names = sorted(p.stem for p in (REPO / "tenants").glob("*.toml"))
    assert len(names) >= 2 and all(re.search(rf"^{n}: tenant ", result.stdout, re.M) for n in names)
    assert f"{len(names)} tenant(s), 0 unusable" in result.stdout
