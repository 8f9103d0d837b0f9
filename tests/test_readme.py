"""The README's quick tour, and the undo of its apply, work as written (against the emulator on a
free port)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from graph_emulator.state import iter_submissions, points_outcome

ROOT = Path(__file__).resolve().parents[1]


def _tour_blocks() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    tour = readme.split("## Quick tour", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", tour, re.S)


def test_quick_tour_runs_as_written(emulator, token, tmp_path):
    """The tour, then its "Undo a run" section in the same directory (what the tour's apply left)."""
    before = emulator.state()
    server_block, client_block = _tour_blocks()
    assert "gradesync emulator" in server_block and "--tenant sample_data/tenant.json" in server_block
    (tmp_path / "sample_data").symlink_to(ROOT / "sample_data")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRADESYNC_")}
    codes = []
    for raw in client_block.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        words = shlex.split(line)
        if words[0] == "export":
            for assignment in words[1:]:
                name, value = assignment.split("=", 1)
                env[name] = value
            continue
        assert words[0] == ".venv/bin/gradesync", line
        result = subprocess.run(
            [sys.executable, "-m", "gradesync", *words[1:]],
            cwd=tmp_path,
            env={**env, "GRADESYNC_GRAPH_URL": emulator.base_url, "GRADESYNC_ACCESS_TOKEN": token},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        codes.append((words[1], result.returncode, result.stderr[-500:]))
    assert env["GRADESYNC_GRAPH_URL"] == "http://127.0.0.1:8765/v1.0"  # the tour's own port, replaced here
    # plan: 1 (the sample's deliberate problems); apply: 1 for the same rejected rows, and it wrote
    assert [(c, code) for c, code, _ in codes] == [("plan", 1), ("apply", 1)], codes
    assert (tmp_path / "reports" / "reconciliation.csv").exists()
    assert emulator.stats()["writes_applied"] > 0
    _undo_section_runs_as_written(emulator, token, tmp_path, before)


def _section_block(title: str) -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```sh\n(.*?)```", section, re.S)
    return block


def _undo_section_runs_as_written(emulator, token, tmp_path, before):
    """The "Undo a run" block in one shell, line by line, after the tour: the preview is refused for
    the clears (exit 4), the apply puts every grade back."""
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRADESYNC_")}
    env.update(GRADESYNC_GRAPH_URL=emulator.base_url, GRADESYNC_ACCESS_TOKEN=token)
    lines = [line for line in _section_block("Undo a run").splitlines() if line.strip()]
    script = "".join(f'{line}\necho "exit $?"\n' for line in lines)
    result = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300, check=False)  # fmt: skip
    codes = [int(x) for x in re.findall(r"^exit (\d+)$", result.stdout, re.M)]
    assert codes == [0, 0, 4, 0], (codes, result.stdout[-2000:], result.stderr[-2000:])
    clears = re.search(r"^(\d+) of them had no grade before the run", result.stdout, re.M)
    assert clears and f"plan clears {clears.group(1)} grade(s)" in result.stdout  # why the preview said 4
    grades = {s["id"]: s.get("outcomes") for _, _, s in iter_submissions(emulator.state())}
    # every grade as before the tour (a grade the tour entered: its outcome is there, with no grade)
    for _, _, sub in iter_submissions(before):
        po = points_outcome(sub)
        now = points_outcome({"outcomes": grades[sub["id"]]})
        assert (po or {}).get("points") == (now or {}).get("points"), sub["id"]


def test_the_library_example_runs_as_written(emulator, token, tmp_path):
    """The README's "gradesync as a library" block, run in a fresh interpreter against the emulator
    (its config file and grades.csv made here: the sample export under that name)."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("**gradesync as a library.**", 1)[1]
    (code,) = re.findall(r"```python\n(.*?)```", section, re.S)[:1]
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "gradesync.toml").write_text(
        f'[graph]\nbase_url = "{emulator.base_url}"\n[apply]\nstate_dir = "state"\n'
    )
    (tmp_path / "grades.csv").write_bytes((ROOT / "sample_data" / "sis_long.csv").read_bytes())
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRADESYNC_")}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={**env, "GRADESYNC_ACCESS_TOKEN": token},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Plan (dry run)" in result.stdout and "\n1 (" in result.stdout  # exit 1: rows need attention
    assert (tmp_path / "plan.json").is_file() and (tmp_path / "reports" / "report.html").is_file()
