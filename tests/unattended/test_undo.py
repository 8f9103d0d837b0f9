"""Undo a run, against the emulator over real HTTP: ``Pipeline.undo`` previews, ``Pipeline.apply``
applies it exactly as the web app and ``gradesync undo --apply`` do.

A registrar's sequence: a sync of the wrong file writes grades; the registrar undoes the run. What
Teams held before the run is taken from the emulator before the sync, and every cell is compared
with it afterwards. Teachers act through the emulator's own controls (``/_emulator/teacher-edits``)
or Graph itself (a ``return``), as they would in Teams.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gradesync.config import Settings
from gradesync.errors import ExitCode
from gradesync.graph import GraphClient, RateLimit, RetryPolicy
from gradesync.pipeline import Event, Pipeline, make_client
from graph_emulator.state import iter_submissions, points_outcome

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample_data" / "sis_long.csv"
LOOSE = {"max_changes": "off", "max_decreases": "off", "min_coverage": "off"}

_CLIENTS: list[Any] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _CLIENTS:
        _CLIENTS.pop().close()


def _settings(base_url: str, tmp: Path, *, policy: dict[str, Any] | None = None, **apply: Any) -> Settings:
    settings = Settings().override("graph", base_url=base_url, max_attempts=1, max_retry_seconds=5.0)
    if policy:
        settings = settings.override("policy", **policy)
    return settings.override("apply", state_dir=str(tmp / "state"), **{**LOOSE, **apply})


def _pipeline(settings: Settings, token: str, events: list[Event] | None = None) -> Pipeline:
    _CLIENTS.append(client := make_client(settings, token=token))
    return Pipeline(settings, client, listener=events.append if events is not None else None, argv=["test"])


def _grades(server: Any) -> dict[str, float | None]:
    """Submission id → the points Teams holds (None: no grade, or no points outcome)."""
    out = {}
    for _, _, sub in iter_submissions(server.state()):
        grade = (points_outcome(sub) or {}).get("points")
        out[sub["id"]] = None if grade is None else float(grade)
    return out


def _submission(server: Any, sid: str) -> dict[str, Any]:
    return next(sub for _, _, sub in iter_submissions(server.state()) if sub["id"] == sid)


def _cells(server: Any, n: int, *, graded: bool = True) -> list[dict[str, Any]]:
    """``n`` individual submissions of points assignments, one per assignment and student: graded
    ones (an outcome with points) or ungraded ones (no points outcome yet); students with a UPN."""
    state = server.state()
    users = {u["id"]: u for u in state["users"]}
    out, seen = [], set()
    for cls, asg, sub in iter_submissions(state):
        po = points_outcome(sub)
        uid = (sub.get("recipient") or {}).get("userId")
        has_grade = bool(po and po.get("points") is not None)
        if not (uid and (asg.get("grading") or {}).get("maxPoints") and asg.get("status") == "assigned"):
            continue
        if sub.get("status") in ("excused", "returned", "reassigned") or has_grade != graded:
            continue
        if graded is False and po is not None:
            continue
        if not cls.get("externalId") or not users[uid].get("userPrincipalName") or (asg["id"], uid) in seen:
            continue
        seen.add((asg["id"], uid))
        out.append(
            {
                "class_id": cls["id"],
                "class_key": cls["externalId"],
                "assignment_id": asg["id"],
                "assignment": asg["displayName"],
                "student": users[uid]["userPrincipalName"],
                "submission_id": sub["id"],
                "before": float(po["points"]) if has_grade else None,
                "max": float(asg["grading"]["maxPoints"]),
            }
        )
        if len(out) == n:
            return out
    raise AssertionError(f"the sample tenant has fewer than {n} such submissions")


def _other(cell: dict[str, Any], step: float = 1.0) -> float:
    """A value different from the cell's own, within its maximum (what a wrong file holds)."""
    before = cell["before"] or 0.0
    return before + step if before + step <= cell["max"] else before - step


def _csv(path: Path, rows: list[tuple[dict[str, Any], str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["class", "assignment", "student", "points"])
        for cell, points in rows:
            w.writerow([cell["class_key"], cell["assignment"], cell["student"], points])
    return path


def _teacher_sets(server: Any, cell: dict[str, Any], points: float) -> None:
    """A teacher grades the cell in Teams, now (the emulator's teacher-edit control)."""
    edit = {k: cell[k] for k in ("class_id", "assignment_id", "submission_id")} | {"points": points}
    httpx.post(server.url + "/_emulator/teacher-edits", json={"edits": [edit]}, timeout=10).raise_for_status()


def _rows(result: Any) -> dict[str, dict[str, Any]]:
    """A result's rows by submission id."""
    return {str(r["submission_id"]): r for r in result.rows.to_dict("records")}


def _run_json(result: Any) -> dict[str, Any]:
    return json.loads((result.run_dir / "run.json").read_text())


# --- the sample: every cell back --------------------------------------------------------------------
def test_undo_puts_back_every_grade_the_sample_sync_wrote(emulator: Any, token: str, tmp_path: Path) -> None:
    before = _grades(emulator)
    settings = _settings(emulator.base_url, tmp_path)
    run = _pipeline(settings, token).sync([SAMPLE])
    assert run.error is None and run.status_counts is not None
    written = run.status_counts["updated"] + run.status_counts["created"]
    after_run = _grades(emulator)
    changed = {sid for sid in before if before[sid] != after_run[sid]}
    assert len(changed) == written > 0

    events: list[Event] = []
    preview = _pipeline(settings, token, events).undo(run.run_dir.name, report_dir=tmp_path / "undo-preview")
    no_grade_before = sum(1 for sid in changed if before[sid] is None)
    assert no_grade_before > 0  # the sample fills empty grades and creates outcomes
    assert preview.guard_verdict == [f"plan clears {no_grade_before} grade(s); clearing needs --allow-clear"]
    assert preview.exit_code == ExitCode.GUARD and len(preview.digest) == 64
    assert preview.plan.undo_of == run.run_dir.name and preview.plan.counts()["update"] == written
    assert preview.summary.digest == preview.digest[:12]
    assert f"{no_grade_before} of them had no grade before the run" in " ".join(preview.warnings)
    assert (tmp_path / "undo-preview" / "report.html").is_file()
    assert {e.stage for e in events if e.kind == "stage"} >= {"read", "resolve", "plan", "guards"}

    undone = _pipeline(settings.override("apply", allow_clear=True), token).apply(
        preview.plan, approved_digest=preview.digest[:12]
    )
    assert undone.exit_code == ExitCode.OK, undone.error
    assert undone.status_counts == {"updated": written}
    now = _grades(emulator)
    for sid in changed:  # every cell the run wrote holds exactly what it held before the run
        assert now[sid] == before[sid], (sid, before[sid], after_run[sid], now[sid])
    assert now == before
    record = _run_json(undone)
    assert record["undo_of"] == run.run_dir.name and record["command"] == "apply" and record["exit_code"] == 0
    assert (undone.run_dir / "plan.json").is_file()  # the undo's own run can itself be undone


# --- teacher-aware ----------------------------------------------------------------------------------
def test_a_grade_changed_in_teams_since_the_run_is_left_and_reported_conflict(
    emulator: Any, token: str, tmp_path: Path
) -> None:
    cells = _cells(emulator, 4)
    wrong = {c["submission_id"]: _other(c) for c in cells}
    inputs = _csv(tmp_path / "wrong.csv", [(c, f"{wrong[c['submission_id']]:g}") for c in cells])
    settings = _settings(emulator.base_url, tmp_path)
    run = _pipeline(settings, token).sync([inputs])
    assert run.exit_code == ExitCode.OK and run.status_counts == {"updated": 4}

    early, late = cells[0], cells[1]
    _teacher_sets(emulator, early, 0.5)  # after the run, before the preview
    pipeline = _pipeline(settings, token)
    preview = pipeline.undo(run.run_dir.name)
    assert preview.guard_verdict == [] and preview.exit_code == ExitCode.OK
    rows = _rows(preview.result())
    assert rows[early["submission_id"]]["note"].startswith("changed in Teams since the run: Teams holds 0.5")
    assert rows[early["submission_id"]]["action"] == "update"  # the executor decides, on a fresh read
    _teacher_sets(emulator, late, 1.5)  # after the preview, before the apply: only the executor sees it

    undone = pipeline.apply(preview.plan, approved_digest=preview.digest[:12])
    assert undone.exit_code == ExitCode.ROWS_NOT_DONE  # conflicts need a person
    result = _rows(undone)
    now = _grades(emulator)
    for cell, teacher in ((early, 0.5), (late, 1.5)):
        row = result[cell["submission_id"]]
        assert row["status"] == "conflict" and row["after_points"] == teacher
        assert now[cell["submission_id"]] == teacher  # the teacher's grade, untouched
        assert "changed in Teams since the plan" in row["message"]
    for cell in cells[2:]:
        assert result[cell["submission_id"]]["status"] == "updated"
        assert now[cell["submission_id"]] == cell["before"]


def test_an_undo_after_a_later_run_leaves_that_runs_grades_then_undoing_both_in_turn_restores(
    emulator: Any, token: str, tmp_path: Path
) -> None:
    """Run A writes three cells; run B rewrites one of them. Undoing A leaves B's grade (changed since
    A: conflict); undoing B, then A again, puts everything back."""
    cells = _cells(emulator, 3)
    settings = _settings(emulator.base_url, tmp_path)
    pipeline = _pipeline(settings, token)
    first = pipeline.sync([_csv(tmp_path / "a.csv", [(c, f"{_other(c):g}") for c in cells])])
    shared = cells[0]
    second = pipeline.sync([_csv(tmp_path / "b.csv", [(shared, f"{_other(shared, 2.0):g}")])])
    assert first.status_counts == {"updated": 3} and second.status_counts == {"updated": 1}

    undo_a = pipeline.undo(first.run_dir.name)
    applied = _rows(pipeline.apply(undo_a.plan, approved_digest=undo_a.digest[:12]))
    assert applied[shared["submission_id"]]["status"] == "conflict"
    assert applied[shared["submission_id"]]["after_points"] == _other(shared, 2.0)
    assert [applied[c["submission_id"]]["status"] for c in cells[1:]] == ["updated", "updated"]

    undo_b = pipeline.undo(second.run_dir.name)
    assert (
        _rows(pipeline.apply(undo_b.plan, approved_digest=undo_b.digest[:12]))[shared["submission_id"]][
            "status"
        ]
        == "updated"
    )
    assert _grades(emulator)[shared["submission_id"]] == _other(shared)  # what A wrote, before B
    again = pipeline.undo(first.run_dir.name)
    assert again.plan.counts()["update"] == 1  # only the cell left behind the first time
    pipeline.apply(again.plan, approved_digest=again.digest[:12])
    now = _grades(emulator)
    assert [now[c["submission_id"]] for c in cells] == [c["before"] for c in cells]


# --- clears -----------------------------------------------------------------------------------------
def test_a_grade_the_run_created_is_undone_by_a_clear_that_needs_allow_clear(
    emulator: Any, token: str, tmp_path: Path
) -> None:
    new = _cells(emulator, 2, graded=False)  # no points outcome before the run: the run creates one
    old = _cells(emulator, 1)
    inputs = _csv(tmp_path / "g.csv", [(new[0], "3"), (new[1], "4"), (old[0], f"{_other(old[0]):g}")])
    settings = _settings(emulator.base_url, tmp_path)
    run = _pipeline(settings, token).sync([inputs])
    assert run.status_counts == {"created": 2, "updated": 1}

    pipeline = _pipeline(settings, token)
    preview = pipeline.undo(run.run_dir.name)
    assert preview.guard_verdict == ["plan clears 2 grade(s); clearing needs --allow-clear"]
    writes = emulator.stats()["writes_applied"]
    refused = pipeline.apply(preview.plan, approved_digest=preview.digest[:12])
    assert refused.exit_code == ExitCode.GUARD and refused.error is not None
    assert emulator.stats()["writes_applied"] == writes  # nothing written, not even the plain update
    assert _run_json(refused)["undo_of"] == run.run_dir.name

    again = _pipeline(settings.override("apply", allow_clear=True), token)
    fresh = again.undo(run.run_dir.name)  # a refused undo wrote nothing: the same plan again
    assert fresh.guard_verdict == [] and fresh.plan.counts()["update"] == 3
    undone = again.apply(fresh.plan, approved_digest=fresh.digest[:12])
    assert undone.exit_code == ExitCode.OK and undone.status_counts == {"updated": 3}
    for cell in new:
        outcome = points_outcome(_submission(emulator, cell["submission_id"]))
        assert outcome is not None and outcome["points"] is None  # no grade, as before the run
    assert _grades(emulator)[old[0]["submission_id"]] == old[0]["before"]


# --- what cannot be undone --------------------------------------------------------------------------
def test_an_excuse_in_the_run_is_reported_not_undoable(emulator: Any, token: str, tmp_path: Path) -> None:
    excused, graded = _cells(emulator, 2)
    inputs = _csv(tmp_path / "g.csv", [(excused, "EX"), (graded, f"{_other(graded):g}")])
    settings = _settings(emulator.base_url, tmp_path, policy={"excused_marks": ["EX"]})
    run = _pipeline(settings, token).sync([inputs])
    assert run.status_counts == {"excused": 1, "updated": 1}

    pipeline = _pipeline(settings, token)
    preview = pipeline.undo(run.run_dir.name)
    rows = _rows(preview.result())
    row = rows[excused["submission_id"]]
    assert (row["action"], row["reason"]) == ("reject", "undo_excused")
    assert "no action that takes an excuse back" in row["message"]
    assert preview.exit_code == ExitCode.ROWS_NOT_DONE  # a person must grade it again in Teams
    assert any("cannot be undone: excused" in w for w in preview.warnings)

    undone = pipeline.apply(preview.plan, approved_digest=preview.digest[:12])
    assert undone.exit_code == ExitCode.ROWS_NOT_DONE
    assert undone.status_counts == {"rejected": 1, "updated": 1}
    assert _submission(emulator, excused["submission_id"])["status"] == "excused"  # untouched
    assert _grades(emulator)[graded["submission_id"]] == graded["before"]


def test_a_grade_the_students_have_seen_is_reported_not_undoable(
    emulator: Any, token: str, tmp_path: Path
) -> None:
    """The run returns one assignment's grades (--return); a teacher returns another cell after the
    run. The students have seen both: neither is changed behind their back."""
    found = _cells(emulator, 60)
    returned_by_run = [c for c in found if c["assignment_id"] == found[0]["assignment_id"]][:3]
    others = [c for c in found if c["assignment_id"] != found[0]["assignment_id"]][:3]
    assert len(others) == 3
    teacher_returns = others[0]
    cells = returned_by_run + others
    inputs = _csv(tmp_path / "g.csv", [(c, f"{_other(c):g}") for c in cells])
    # every status a sample submission has: the point here is what students have seen, not which
    # submissions a teacher would return (the default rule, tested in tests/execute/)
    settings = _settings(emulator.base_url, tmp_path).override(
        "publish", assignments=[cells[0]["assignment"]], statuses=["submitted", "returned", "working"]
    )
    run = _pipeline(settings, token).sync([inputs], publish=True)
    assert run.exit_code == ExitCode.OK and run.summary is not None
    assert run.summary.returned == len(returned_by_run)
    path = (
        f"/education/classes/{teacher_returns['class_id']}/assignments/{teacher_returns['assignment_id']}"
        f"/submissions/{teacher_returns['submission_id']}/return"
    )
    httpx.post(emulator.base_url + path, headers={"Authorization": f"Bearer {token}"}).raise_for_status()

    pipeline = _pipeline(settings, token)
    preview = pipeline.undo(run.run_dir.name)
    rows = _rows(preview.result())
    seen = [*returned_by_run, teacher_returns]
    for cell in seen:
        row = rows[cell["submission_id"]]
        assert (row["action"], row["reason"]) == ("reject", "undo_published")
        assert row["message"].startswith(f"the students have seen {_other(cell):g}")
    undone = pipeline.apply(preview.plan, approved_digest=preview.digest[:12])
    now = _grades(emulator)
    for cell in cells:
        assert now[cell["submission_id"]] == (_other(cell) if cell in seen else cell["before"])
    assert undone.status_counts == {"rejected": len(seen), "updated": len(cells) - len(seen)}


def test_rows_the_run_carried_over_have_nothing_to_undo(emulator: Any, token: str, tmp_path: Path) -> None:
    """The token is refused after the first wave of writes (80 with one envelope in flight): the rest
    is carried over, never sent. The undo puts back the written cells and says the others were never
    sent."""
    cells = _cells(emulator, 100)
    inputs = _csv(tmp_path / "g.csv", [(c, f"{_other(c):g}") for c in cells])
    settings = _settings(emulator.base_url, tmp_path)
    plan = _pipeline(settings, token).plan([inputs]).plan
    tokens = {"now": token}

    def expire(event: Event) -> None:
        if event.kind == "progress" and event.message == "writing" and event.done:
            tokens["now"] = "expired-token"

    client = GraphClient(emulator.base_url, lambda *a, **k: tokens["now"], policy=RetryPolicy(max_attempts=1),
                         rate_limit=RateLimit.off(), max_in_flight=1)  # fmt: skip
    _CLIENTS.append(client)
    small_waves = settings.override("apply", max_in_flight=1)
    run = Pipeline(small_waves, client, listener=expire, argv=["test"]).apply(plan)
    # the next wave's read or its writes are refused: either way nothing more is sent
    assert run.exit_code in (ExitCode.AUTH, ExitCode.CARRIED_OVER) and run.status_counts is not None
    carried = {r["submission_id"] for r in run.rows.to_dict("records") if r["status"] == "carried_over"}
    assert 0 < len(carried) < len(cells)

    pipeline = _pipeline(settings, token)
    preview = pipeline.undo(run.run_dir.name)
    rows = _rows(preview.result())
    for sid in carried:  # never sent, or sent in an envelope Graph refused whole: nothing landed
        assert rows[sid]["action"] == "noop"
        assert rows[sid]["reason"] in ("undo_not_written", "undo_already")
        assert "carried over" in rows[sid]["message"] and "nothing to undo" in rows[sid]["message"]
    undone = pipeline.apply(preview.plan, approved_digest=preview.digest[:12])
    assert undone.exit_code == ExitCode.OK
    assert undone.status_counts == {"updated": len(cells) - len(carried), "unchanged": len(carried)}
    now = _grades(emulator)
    assert [now[c["submission_id"]] for c in cells] == [c["before"] for c in cells]


# --- twice, and the undo of an undo -----------------------------------------------------------------
def test_undoing_twice_writes_nothing_and_undoing_the_undo_writes_the_run_again(
    emulator: Any, token: str, tmp_path: Path
) -> None:
    cells = _cells(emulator, 3)
    inputs = _csv(tmp_path / "g.csv", [(c, f"{_other(c):g}") for c in cells])
    settings = _settings(emulator.base_url, tmp_path)
    pipeline = _pipeline(settings, token)
    run = pipeline.sync([inputs])
    first = pipeline.undo(run.run_dir.name)
    undo_run = pipeline.apply(first.plan, approved_digest=first.digest[:12])
    assert undo_run.status_counts == {"updated": 3}

    second = pipeline.undo(run.run_dir.name)
    assert second.warnings[0].startswith(
        f"run {run.run_dir.name} was already undone by run {undo_run.run_dir.name}"
    )
    assert set(second.plan.rows["reason"]) == {"undo_already"} and second.plan.operations() == []
    writes = emulator.stats()["writes_applied"]
    nothing = pipeline.apply(second.plan, approved_digest=second.digest[:12])
    assert nothing.exit_code == ExitCode.OK and emulator.stats()["writes_applied"] == writes

    redo = pipeline.undo(undo_run.run_dir.name)  # the undo's own run, undone: the run's grades again
    redone = pipeline.apply(redo.plan, approved_digest=redo.digest[:12])
    assert _run_json(redone)["undo_of"] == undo_run.run_dir.name
    now = _grades(emulator)
    assert [now[c["submission_id"]] for c in cells] == [_other(c) for c in cells]


def test_an_undo_never_overwrites_even_when_the_configuration_says_overwrite(
    emulator: Any, token: str, tmp_path: Path
) -> None:
    cells = _cells(emulator, 2)
    settings = _settings(emulator.base_url, tmp_path, on_conflict="overwrite")
    pipeline = _pipeline(settings, token)
    run = pipeline.sync([_csv(tmp_path / "g.csv", [(c, f"{_other(c):g}") for c in cells])])
    _teacher_sets(emulator, cells[0], 0.5)
    preview = pipeline.undo(run.run_dir.name)
    undone = pipeline.apply(preview.plan, approved_digest=preview.digest[:12])
    assert _rows(undone)[cells[0]["submission_id"]]["status"] == "conflict"
    assert _grades(emulator)[cells[0]["submission_id"]] == 0.5
    assert _grades(emulator)[cells[1]["submission_id"]] == cells[1]["before"]


def test_a_dry_run_and_a_refused_run_have_nothing_to_undo(emulator: Any, token: str, tmp_path: Path) -> None:
    cells = _cells(emulator, 2)
    inputs = _csv(tmp_path / "g.csv", [(c, f"{_other(c):g}") for c in cells])
    pipeline = _pipeline(_settings(emulator.base_url, tmp_path), token)
    dry = pipeline.sync([inputs], dry_run=True)
    strict = _pipeline(_settings(emulator.base_url, tmp_path, max_changes="1"), token)
    refused = strict.sync([inputs])
    assert refused.exit_code == ExitCode.GUARD
    for run in (dry, refused):
        preview = pipeline.undo(run.run_dir)  # a run directory's path works as well as its id
        assert set(preview.plan.rows["reason"]) == {"undo_not_written"}, run.run_dir
        assert preview.plan.operations() == [] and preview.exit_code == ExitCode.OK
