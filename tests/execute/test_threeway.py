"""Three-way sync against the emulator: a grade a teacher changed in Teams is not clobbered.

Each test syncs through the real CLI, then changes the grade in the emulator the way a teacher would
(a PATCH over HTTP with the emulator's token), then syncs the same gradebook value again.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from gradesync.cli import cli
from gradesync.plan.planfile import read_plan
from gradesync.state.memory import Memory
from graph_emulator.state import iter_submissions, points_outcome

LOOSE = ["--max-changes", "100%", "--max-decreases", "100%", "--min-coverage", "off"]


def _quiet(sub: dict[str, Any]) -> bool:
    """No feedback text and no rubric on the submission (excusing it deletes nothing)."""
    return not any(
        o.get("feedback") or o.get("publishedFeedback") or o.get("type") == "rubric" for o in sub["outcomes"]
    )


def pick(
    state: dict[str, Any], n: int = 1, *, status: str | None = None, quiet: bool = False
) -> list[dict[str, Any]]:
    """``n`` graded individual submissions (not excused) with a points outcome, one per assigned
    assignment; with ``status``, only submissions in that status; with ``quiet``, only submissions
    holding no feedback or rubric."""
    users = {u["id"]: u for u in state["users"]}
    out, seen = [], set()
    for cls, asg, sub in iter_submissions(state):
        po = points_outcome(sub)
        uid = (sub.get("recipient") or {}).get("userId")
        graded = (asg.get("grading") or {}).get("maxPoints")
        if not (po and uid and graded and sub.get("status") != "excused" and asg["id"] not in seen):
            continue
        if asg.get("status", "assigned") != "assigned" or (status and sub.get("status") != status):
            continue
        if quiet and not _quiet(sub):
            continue
        if not cls.get("externalId") or not users.get(uid, {}).get("userPrincipalName"):
            continue
        seen.add(asg["id"])
        out.append(
            {
                "class_id": cls["id"],
                "class_key": cls["externalId"],
                "assignment_id": asg["id"],
                "assignment": asg["displayName"],
                "student": users[uid]["userPrincipalName"],
                "submission_id": sub["id"],
                "outcome_id": po["id"],
                "max": float(graded),
            }
        )
        if len(out) == n:
            break
    assert len(out) == n
    return out


def write_csv(path: Path, rows: list[tuple[dict[str, Any], str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["class", "assignment", "student", "points"])
        for t, points in rows:
            w.writerow([t["class_key"], t["assignment"], t["student"], points])
    return path


def sync(tmp: Path, server: Any, token: str, inputs: Path, *args: str, config: str = "") -> Any:
    cfg = tmp / "gradesync.toml"
    cfg.write_text(config, encoding="utf-8")
    env = {"GRADESYNC_GRAPH_URL": server.base_url, "GRADESYNC_ACCESS_TOKEN": token}
    argv = ["sync", str(inputs), "--config", str(cfg), "--state-dir", str(tmp / "state")]
    argv += ["--report-dir", str(tmp / "rep"), "--runs-dir", str(tmp / "runs"), *LOOSE, *args]
    return CliRunner().invoke(cli, argv, env=env)


def teacher_sets(server: Any, token: str, t: dict[str, Any], points: float) -> None:
    """What a teacher does in Teams: PATCH the points outcome directly."""
    url = (
        f"{server.base_url}/education/classes/{t['class_id']}/assignments/{t['assignment_id']}"
        f"/submissions/{t['submission_id']}/outcomes/{t['outcome_id']}"
    )
    body = {
        "@odata.type": "#microsoft.graph.educationPointsOutcome",
        "points": {"@odata.type": "#microsoft.graph.educationAssignmentPointsGrade", "points": points},
    }
    r = httpx.patch(url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert r.status_code == 200, r.text


def points_now(server: Any, t: dict[str, Any]) -> float | None:
    for _, _, sub in iter_submissions(server.state()):
        if sub["id"] == t["submission_id"]:
            grade = (points_outcome(sub) or {}).get("points")
            return None if grade is None else float(grade)
    raise AssertionError("submission gone")


def recon(tmp: Path) -> list[dict[str, str]]:
    with (tmp / "rep" / "reconciliation.csv").open(encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


def summary(tmp: Path) -> dict[str, Any]:
    return json.loads((tmp / "rep" / "summary.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("policy", ["report", "teacher-wins", "sis-wins"])
def test_teacher_override_policies(emulator: Any, token: str, tmp_path: Path, policy: str) -> None:
    (t,) = pick(emulator.state())
    sis, teacher = t["max"] - 1, t["max"] - 3
    inputs = write_csv(tmp_path / "grades.csv", [(t, f"{sis:g}")])
    config = f'[policy]\nteacher_override = "{policy}"\n'

    first = sync(tmp_path, emulator, token, inputs, config=config)
    assert first.exit_code == 0, first.output
    assert points_now(emulator, t) == sis
    with Memory.in_dir(tmp_path / "state") as memory:  # remembered when the journal recorded it
        assert (memory.get(t["submission_id"]) or {})["points"] == sis

    teacher_sets(emulator, token, t, teacher)
    second = sync(tmp_path, emulator, token, inputs, config=config)
    (row,) = recon(tmp_path)
    assert row["reason"] == "teacher_override"
    assert row["override_policy"] == policy
    assert row["last_written_points"] == f"{sis:g}"
    assert "a teacher changed this grade in Teams" in row["message"]
    s = summary(tmp_path)
    assert s["teacher_overrides"] == 1
    html = (tmp_path / "rep" / "report.html").read_text(encoding="utf-8")
    assert "id='teacher-overrides'" in html
    if policy == "report":  # kept, listed, and the nightly job is flagged
        assert second.exit_code == 1, second.output
        assert (row["action"], row["status"]) == ("noop", "teacher_override")
        assert points_now(emulator, t) == teacher
        assert s["overrides_for_review"] == 1 and s["has_problems"]
    elif policy == "teacher-wins":  # kept, quietly counted
        assert second.exit_code == 0, second.output
        assert (row["action"], row["status"]) == ("noop", "unchanged")
        assert points_now(emulator, t) == teacher
        assert s["overrides_for_review"] == 0 and not s["has_problems"]
    else:  # sis-wins: overwritten, listed
        assert second.exit_code == 0, second.output
        assert (row["action"], row["status"]) == ("update", "updated")
        assert points_now(emulator, t) == sis
        assert s["overrides_for_review"] == 0


def test_first_run_without_memory_is_an_ordinary_change(emulator: Any, token: str, tmp_path: Path) -> None:
    (t,) = pick(emulator.state())
    teacher_sets(emulator, token, t, t["max"] - 3)  # changed in Teams, but gradesync never wrote it
    inputs = write_csv(tmp_path / "grades.csv", [(t, f"{t['max'] - 1:g}")])
    result = sync(tmp_path, emulator, token, inputs)
    assert result.exit_code == 0, result.output
    (row,) = recon(tmp_path)
    assert (row["action"], row["reason"], row["status"]) == ("update", "", "updated")
    assert points_now(emulator, t) == t["max"] - 1


def test_an_agreed_teacher_grade_becomes_the_new_base(emulator: Any, token: str, tmp_path: Path) -> None:
    """Report policy: once the gradebook takes the teacher's grade, later changes are ordinary again."""
    (t,) = pick(emulator.state())
    sis, teacher, later = t["max"] - 1, t["max"] - 3, t["max"] - 2
    assert sync(tmp_path, emulator, token, write_csv(tmp_path / "a.csv", [(t, f"{sis:g}")])).exit_code == 0
    teacher_sets(emulator, token, t, teacher)
    agreed = sync(tmp_path, emulator, token, write_csv(tmp_path / "b.csv", [(t, f"{teacher:g}")]))
    assert agreed.exit_code == 0, agreed.output
    assert recon(tmp_path)[0]["status"] == "unchanged"
    with Memory.in_dir(tmp_path / "state") as memory:
        assert (memory.get(t["submission_id"]) or {})["points"] == teacher
    changed = sync(tmp_path, emulator, token, write_csv(tmp_path / "c.csv", [(t, f"{later:g}")]))
    assert changed.exit_code == 0, changed.output
    assert (recon(tmp_path)[0]["reason"], recon(tmp_path)[0]["status"]) == ("", "updated")
    assert points_now(emulator, t) == later


def test_plan_command_reads_the_memory(emulator: Any, token: str, tmp_path: Path) -> None:
    (t,) = pick(emulator.state())
    inputs = write_csv(tmp_path / "grades.csv", [(t, f"{t['max'] - 1:g}")])
    assert sync(tmp_path, emulator, token, inputs).exit_code == 0
    teacher_sets(emulator, token, t, t["max"] - 3)
    env = {"GRADESYNC_GRAPH_URL": emulator.base_url, "GRADESYNC_ACCESS_TOKEN": token}
    argv = ["plan", str(inputs), "--state-dir", str(tmp_path / "state"), "--out", str(tmp_path / "p.json")]
    result = CliRunner().invoke(cli, [*argv, "--report-dir", str(tmp_path / "prep")], env=env)
    assert result.exit_code == 1, result.output  # report policy: needs a person
    assert json.loads((tmp_path / "p.json").read_text(encoding="utf-8"))["schema_version"] == 3
    plan = read_plan(tmp_path / "p.json")
    (row,) = plan.rows.to_dict("records")
    assert (row["action"], row["reason"], row["override_policy"]) == ("noop", "teacher_override", "report")
    assert plan.operations() == []
