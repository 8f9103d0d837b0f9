"""The unattended-run tests again, with Windows' standard library simulated for gradesync's code.

``tests/winstdlib/sitecustomize.py`` takes away, for ``gradesync`` and ``graph_emulator`` only, the
modules and names Windows' Python does not have (``fcntl``, ``os.killpg``, ``signal.SIGKILL``, …) in
the pytest process and in every ``gradesync`` it starts. On Windows a run that reaches one of them
stops at once (``import fcntl`` in the lock would be ``ModuleNotFoundError`` before any sync or
apply). Here the unattended tests and the lock's tests must pass that way, and no gradesync code may even
try such a name (every attempt is logged, caught or not). What this cannot show is listed in the
module's docstring and the README ("Windows").
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SIM = REPO / "tests" / "winstdlib"
# the tests of unattended runs (lock, run directories, logs, notify, run.json, the pipeline's runs,
# tenant files, paths) and of the lock; not undo or doctor, which run no other code path of a run
SUITES = [
    "tests/unattended/test_unattended_cli.py",
    "tests/unattended/test_unattended_logs_runs.py",
    "tests/unattended/test_unattended_config.py",
    "tests/unattended/test_pipeline_api.py",
    "tests/unattended/test_portable.py",
    "tests/unattended/test_tenants.py",
    "tests/execute/test_journal_lock.py",
]


def _sim_env(log: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "GRADESYNC_"))}
    env.update(
        SIMULATE_WINDOWS_STDLIB="1",
        SIMULATE_WINDOWS_STDLIB_LOG=str(log),
        PYTHONPATH=os.pathsep.join([str(SIM), str(REPO)]),
    )
    return env


def test_the_simulation_takes_away_what_windows_lacks(tmp_path: Path) -> None:
    """The harness itself: gradesync's code cannot import fcntl nor reach os.killpg, others can."""
    log = tmp_path / "attempts.log"
    probe = """
import fcntl, os  # the probe's own code keeps the real modules
os.killpg
ours = {"__name__": "gradesync.probe"}
for code, error in (
    ("import fcntl", ModuleNotFoundError),
    ("import os; os.killpg", AttributeError),
    ("import signal; signal.SIGKILL", AttributeError),
    ("from os import pread", ImportError),
):
    try:
        exec(code, dict(ours))
    except error:
        print("refused:", code)
import gradesync.state.runs, gradesync.state.lock, gradesync.cli.apply
print("imported")
"""
    env = _sim_env(log)
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("refused:") == 4 and out.stdout.rstrip().endswith("imported")
    attempts = [line.split(None, 1)[1] for line in log.read_text().splitlines()]
    assert attempts[1:] == ["fcntl import", "os killpg", "signal SIGKILL", "os pread"]


@pytest.mark.slow
def test_unattended_runs_pass_without_posix_only_modules(tmp_path: Path) -> None:
    log = tmp_path / "attempts.log"
    argv = [
        *(sys.executable, "-m", "pytest", *SUITES, "-q", "-p", "no:cacheprovider", "-p", "no:xdist"),
        *("-o", "addopts=-ra --strict-markers"),
    ]
    env = _sim_env(log)
    # a guard against a hang only (the nested tests take ~20 s on an idle machine, several times that
    # on a loaded one); pytest-timeout's 300 s per test is the outer bound
    result = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=290, check=False)
    tail = (result.stdout + result.stderr)[-4000:]
    assert result.returncode == 0, tail
    assert " passed" in result.stdout and " failed" not in result.stdout, tail
    lines = log.read_text().splitlines()
    active = [line for line in lines if " simulation active " in line]
    tried = [line for line in lines if " simulation active " not in line]
    assert tried == [], f"gradesync code reached POSIX-only names: {tried}"
    # the pytest process and every `gradesync` it started ran with the simulation
    assert len(active) >= 5, lines
