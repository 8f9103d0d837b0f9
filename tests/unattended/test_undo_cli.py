"""``gradesync undo RUN`` as a registrar or a scheduler meets it: the README's exit-code table, over
real HTTP against the emulator.

One sync of a small wrong file (a grade changed, a grade entered where there was none), then the
undo's preview and apply in each situation the table names.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from gradesync.cli import cli
from gradesync.state.lock import RunLock
from graph_emulator.state import iter_submissions, points_outcome

LOOSE = ["--max-changes", "100%", "--max-decreases", "100%", "--min-coverage", "off"]


def _cells(state: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A graded cell and a cell with no points outcome, in one assignment, of students with a UPN."""
    users = {u["id"]: u for u in state["users"]}
    for cls, asg, _ in iter_submissions(state):
        if not (asg.get("grading") or {}).get("maxPoints") or asg.get("status") != "assigned":
            continue
        graded = empty = None
        for _, a, sub in iter_submissions(state):
            uid = (sub.get("recipient") or {}).get("userId")
            if a["id"] != asg["id"] or not uid or sub.get("status") in ("excused", "returned"):
                continue
            po = points_outcome(sub)
            cell = {"class": cls["externalId"], "assignment": asg["displayName"], "sid": sub["id"],
                    "student": users[uid]["userPrincipalName"], "max": asg["grading"]["maxPoints"],
                    "before": None if po is None else po.get("points")}  # fmt: skip
            if po is not None and po.get("points") is not None and graded is None:
                graded = cell
            elif po is None and empty is None:
                empty = cell
        if graded and empty:
            return graded, empty
    raise AssertionError("no assignment with both a graded and an ungraded submission")


def _grade(server: Any, sid: str) -> float | None:
    sub = next(s for _, _, s in iter_submissions(server.state()) if s["id"] == sid)
    return (points_outcome(sub) or {}).get("points")


class Gradesync:
    """``gradesync`` with the emulator's URL and token, one state and runs directory."""

    def __init__(self, server: Any, token: str, tmp: Path) -> None:
        self.env = {"GRADESYNC_GRAPH_URL": server.base_url, "GRADESYNC_ACCESS_TOKEN": token}
        self.tmp = tmp
        self.dirs = ["--state-dir", str(tmp / "state"), "--runs-dir", str(tmp / "runs")]

    def __call__(self, *args: str, token: str | None = None) -> Result:
        env = dict(self.env, **({"GRADESYNC_ACCESS_TOKEN": token} if token else {}))
        config = self.tmp / "gradesync.toml"
        config.write_text('[policy]\nexcused_marks = ["EX"]\n[graph]\nmax_attempts = 2\n', encoding="utf-8")
        return CliRunner().invoke(cli, [*args, "--config", str(config), *self.dirs], env=env)

    def sync(self, rows: list[tuple[dict[str, Any], str]]) -> str:
        path = self.tmp / f"export-{len(list(self.tmp.glob('export-*')))}.csv"
        with path.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["class", "assignment", "student", "points"])
            w.writerows([(c["class"], c["assignment"], c["student"], p) for c, p in rows])
        result = self("sync", str(path), *LOOSE, "--quiet")
        assert result.exit_code == 0, result.output
        return sorted(p.name for p in (self.tmp / "runs").iterdir())[-1]


def test_undo_exit_codes(emulator: Any, token: str, tmp_path: Path) -> None:
    graded, empty = _cells(emulator.state())
    wrong = graded["before"] + 1 if graded["before"] + 1 <= graded["max"] else graded["before"] - 1
    gs = Gradesync(emulator, token, tmp_path)
    run = gs.sync([(graded, f"{wrong:g}"), (empty, "2")])

    # 2: no such run (the hint lists the newest runs), or a directory that is not a run
    missing = gs("undo", "20240101T000000000Z-000000")
    assert missing.exit_code == 2 and "run-not-found" in missing.output and run in missing.output
    assert gs("undo", str(tmp_path)).exit_code == 2
    # 4: the preview says apply would refuse: the grade the run entered is undone by a clear
    preview = gs("undo", run)
    assert preview.exit_code == 4, preview.output
    assert "1 of them had no grade before the run" in preview.output
    assert "clears 1 grade(s); clearing needs --allow-clear" in preview.output
    refused = gs("undo", run, "--apply")
    assert refused.exit_code == 4 and "guard-refused" in refused.output
    assert _grade(emulator, graded["sid"]) == wrong  # nothing written
    # 0: with --allow-clear the preview would go on, and it writes its plan for a later apply
    ok = gs(
        "undo",
        run,
        "--allow-clear",
        "--out",
        str(tmp_path / "undo.json"),
        "--report-dir",
        str(tmp_path / "r"),
    )
    assert ok.exit_code == 0, ok.output
    digest = json.loads((tmp_path / "undo.json").read_text())["digest"][:12]
    assert f"plan digest: {digest}" in ok.output and (tmp_path / "r" / "report.html").is_file()
    # 3: Graph refuses the token for the preview's read of Teams
    assert gs("undo", run, "--allow-clear", token="not-the-token").exit_code == 3
    # 5: another run holds the lock: the undo's apply waits its turn like any run
    with RunLock(tmp_path / "state"):
        assert gs("undo", run, "--apply", "--allow-clear").exit_code == 5
    # 0: the reviewed undo plan, applied with its digest; its run records what it undid
    applied = gs("apply", str(tmp_path / "undo.json"), "--digest", digest, "--allow-clear")
    assert applied.exit_code == 0, applied.output
    assert _grade(emulator, graded["sid"]) == graded["before"] and _grade(emulator, empty["sid"]) is None
    newest = sorted((tmp_path / "runs").iterdir())[-1]
    assert json.loads((newest / "run.json").read_text())["undo_of"] == run
    # 0: undone twice: nothing left to put back, nothing written
    writes = emulator.stats()["writes_applied"]
    twice = gs("undo", run, "--apply", "--allow-clear")
    assert twice.exit_code == 0 and "already undone" in twice.output
    assert emulator.stats()["writes_applied"] == writes
    # 8: the preview's reports cannot be written (a file where a directory should be)
    (tmp_path / "blocker").write_text("not a directory")
    assert gs("undo", run, "--report-dir", str(tmp_path / "blocker" / "r")).exit_code == 8


def test_undo_of_a_run_with_an_excuse_exits_1(emulator: Any, token: str, tmp_path: Path) -> None:
    graded, _ = _cells(emulator.state())
    gs = Gradesync(emulator, token, tmp_path)
    run = gs.sync([(graded, "EX")])
    preview = gs("undo", run)
    assert preview.exit_code == 1, preview.output
    assert "cannot undo" in preview.output and "no action that takes an excuse back" in preview.output
    applied = gs("undo", run, "--apply")
    assert applied.exit_code == 1 and "run:" in applied.output


def test_undo_with_graph_unreachable_exits_7(emulator_factory: Any, token: str, tmp_path: Path) -> None:
    server = emulator_factory()
    graded, _ = _cells(server.state())
    gs = Gradesync(server, token, tmp_path)
    run = gs.sync([(graded, f"{graded['before'] / 2:g}")])
    server.stop()
    result = gs("undo", run)
    assert result.exit_code == 7 and "graph-unreachable" in result.output
