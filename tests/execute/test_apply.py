"""The executor against the emulator over real HTTP: happy path, stale plan, 409, unknown fates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from execute_helpers import (
    assert_converged,
    build_plan,
    client_for,
    exit_code,
    graph_patch,
    lose_create_answers,
    points_outcomes_of,
    status_counts,
)

from gradesync.config import Settings
from gradesync.errors import ExitCode, GuardError, UsageError
from gradesync.execute.apply import ApplyOptions, apply_plan, plan_hash
from gradesync.pipeline import Pipeline, make_client
from gradesync.state.journal import Journal
from graph_emulator import FaultConfig

# the test plans touch a few students of each assignment: coverage is off unless a test is about it
LOOSE = ApplyOptions()


def run(server: Any, token: str, plan: Any, state_dir: Path, options: ApplyOptions = LOOSE, **kw: Any) -> Any:
    with client_for(server, token, **kw) as client, Journal.in_dir(state_dir) as journal:
        return apply_plan(plan, client, journal=journal, options=options)


def test_happy_path_updates_and_creates(emulator: Any, token: str, tmp_path: Path) -> None:
    plan = build_plan(emulator.state(), updates=12, creates=5, noops=3, rejects=2)
    result = run(emulator, token, plan, tmp_path)
    assert_converged(emulator, plan)
    assert status_counts(result) == {"updated": 12, "created": 5, "unchanged": 3, "rejected": 2}
    assert len(result.rows) == len(plan.rows)
    assert list(result.rows["row_key"]) == list(plan.rows["row_key"])
    writes = result.rows[result.rows["action"].isin(["update", "create"])]
    assert (writes["after_points"] == writes["desired_points"]).all()
    assert exit_code(result) is ExitCode.ROWS_NOT_DONE  # the rejected rows
    # reads: one listing per touched assignment before, one after (plus pages); writes: one per op
    stats = result.graph_stats
    assert stats["writes"] == 17
    assert stats["by_method"]["PATCH"] == 12 and stats["by_method"]["POST"] == 5

    # the same plan again: refused without --resume; with it, nothing is re-sent
    with pytest.raises(UsageError) as e:
        run(emulator, token, plan, tmp_path)
    assert e.value.code == "plan-already-run"
    again = run(emulator, token, plan, tmp_path, _resume())
    assert again.graph_stats["writes"] == 0
    assert status_counts(again) == status_counts(result)
    assert_converged(emulator, plan)


def _resume(**kw: Any) -> ApplyOptions:
    return ApplyOptions(**{"resume": True, **kw})


def test_all_rows_ok_exits_zero(emulator: Any, token: str, tmp_path: Path) -> None:
    plan = build_plan(emulator.state(), updates=3, creates=2, rejects=0)
    result = run(emulator, token, plan, tmp_path)
    assert exit_code(result) is ExitCode.OK
    assert set(result.rows["status"]) == {"updated", "created", "unchanged"}


def test_stale_plan_is_a_conflict_and_not_written(emulator: Any, token: str, tmp_path: Path) -> None:
    plan = build_plan(emulator.state(), updates=6, creates=2, rejects=0)
    rows = plan.rows.set_index("row_key")
    changed_update = rows.loc[0]
    changed_create = rows[rows["action"] == "create"].iloc[0]
    graph_patch(emulator, token, changed_update, 0.5)  # a teacher changes a grade after the plan
    graph_patch(emulator, token, changed_create, 0.25)  # and grades an ungraded submission
    result = run(emulator, token, plan, tmp_path / "skip")
    by_key = result.rows.set_index("row_key")
    assert by_key.loc[0, "status"] == "conflict"
    assert "changed in Teams since the plan" in by_key.loc[0, "message"]
    assert by_key.loc[0, "after_points"] == 0.5
    assert by_key.loc[changed_create.name, "status"] == "conflict"
    state = points_outcomes_of(emulator.state())
    assert state[changed_update.submission_id][0]["points"] == 0.5  # not overwritten
    assert state[changed_create.submission_id][0]["points"] == 0.25
    assert status_counts(result)["updated"] == 5 and status_counts(result)["created"] == 1
    assert exit_code(result) is ExitCode.ROWS_NOT_DONE

    # overwrite mode writes anyway and says so
    over = run(emulator, token, plan, tmp_path / "overwrite", _resume(on_conflict="overwrite", resume=False))
    by_key = over.rows.set_index("row_key")
    assert by_key.loc[0, "status"] == "updated"
    assert "overwrote" in by_key.loc[0, "message"]
    assert_converged(emulator, plan)


def test_overwrites_count_against_the_guards_as_the_plans_own_changes_do(
    emulator: Any, token: str, tmp_path: Path
) -> None:
    """The registrar's plan changes 40 grades, D of them down; it passes --max-decreases D + 2.
    Before it is applied, teachers raise five of the raised ones in Teams above the gradebook.
    Applied with `--on-conflict overwrite`, each overwrite would now lower a teacher's grade: the
    plan's guard did not see those. Two fit under the limit and are written (noted as overwrites);
    the other three stay as the teachers set them, `conflict`, saying which limit kept them."""
    from gradesync.guards import GuardLimits, Limit, plan_figures

    plan = build_plan(emulator.state(), updates=40, creates=0, rejects=0)
    rows = plan.rows.set_index("row_key")
    raised = list(rows[(rows["action"] == "update") & ~rows["decrease"].astype(bool)].index[:5])
    for k in raised:
        graph_patch(emulator, token, rows.loc[k], float(rows.loc[k, "desired_points"]) + 0.5)
    limit = f"{plan_figures(plan.rows).decreases + 2}"
    limits = GuardLimits(
        max_changes=None, max_decreases=Limit.parse(limit), min_coverage=None, max_plan_age=None
    )
    result = run(emulator, token, plan, tmp_path, ApplyOptions(on_conflict="overwrite", limits=limits))
    out = result.rows.set_index("row_key").loc[raised]
    assert list(out["status"]).count("updated") == 2 and list(out["status"]).count("conflict") == 3
    assert out.loc[out["status"] == "updated", "message"].str.contains("overwrote").all()
    kept = out[out["status"] == "conflict"]
    assert kept["message"].str.contains(f"not overwritten: .*above --max-decreases {limit}", regex=True).all()
    held = points_outcomes_of(emulator.state())
    for k, row in kept.iterrows():
        teacher = float(rows.loc[k, "desired_points"]) + 0.5
        assert row["after_points"] == teacher
        assert held[rows.loc[k, "submission_id"]][0]["points"] == teacher  # the teacher's grade stays
    assert status_counts(result)["updated"] == 37  # 35 untouched by teachers + 2 overwrites
    assert exit_code(result) is ExitCode.ROWS_NOT_DONE


def _pipeline_apply(server: Any, token: str, plan: Any, state_dir: Path) -> Any:
    """Apply ``plan`` the way every front end does: through the pipeline, whose guards (the default
    ``[apply]`` settings) decide before the executor starts."""
    settings = Settings().override("graph", base_url=server.base_url, max_attempts=1)
    settings = settings.override("apply", state_dir=str(state_dir / "state"))
    settings = settings.override("run", runs_dir=str(state_dir / "runs"))
    plan.graph_base_url = server.base_url  # the Graph it was planned against
    with make_client(settings, token=token) as client:
        return Pipeline(settings, client, argv=["test"]).apply(plan, report_dir=state_dir / "reports")


def test_guards_refuse_before_any_request(emulator: Any, token: str, tmp_path: Path) -> None:
    plan = build_plan(emulator.state(), updates=30, creates=0, noops=2, decrease=True, rejects=0)
    emulator.reset_stats()
    result = _pipeline_apply(emulator, token, plan, tmp_path)
    assert isinstance(result.error, GuardError) and result.exit_code is ExitCode.GUARD
    assert "plan changes 30 of 32 grades (94%), above --max-changes 50%" in result.error.message
    assert "--max-decreases 20%" in result.error.message
    assert emulator.stats()["graph_requests"] == 0
    assert not any(Journal.in_dir(tmp_path / "state").ops(plan_hash(plan)).values())


def test_coverage_guard_refuses_an_export_that_lost_rows(emulator: Any, token: str, tmp_path: Path) -> None:
    plan = build_plan(emulator.state(), updates=45, creates=0, rejects=0)
    emulator.reset_stats()
    result = _pipeline_apply(emulator, token, plan, tmp_path)
    assert result.exit_code is ExitCode.GUARD
    assert "below --min-coverage 60%" in result.error.message
    assert emulator.stats()["writes_applied"] == 0


def test_plan_age_guard(emulator: Any, token: str, tmp_path: Path) -> None:
    plan = build_plan(emulator.state(), updates=2, creates=0, created_at="2020-01-01T00:00:00Z")
    result = _pipeline_apply(emulator, token, plan, tmp_path)
    assert result.exit_code is ExitCode.GUARD
    assert "older than --max-plan-age 24h" in result.error.message


def test_a_grade_given_between_our_read_and_our_create_is_a_conflict_not_overwritten(
    emulator: Any, token: str, tmp_path: Path
) -> None:
    """A teacher grades submissions that had no points outcome when gradesync read them, just before
    gradesync's creates reach Graph (the emulator applies the edits right before it handles the
    first grade write): each create gets 409, gradesync re-reads, finds the teacher's grade — and
    leaves it: ``conflict`` with the teacher's value, no PATCH over it."""
    plan = build_plan(emulator.state(), updates=0, creates=3, rejects=0)
    creates = plan.rows[plan.rows["action"] == "create"]
    edits = [
        {"class_id": r.class_id, "assignment_id": r.assignment_id, "submission_id": r.submission_id}
        | {"points": 0.25}
        for r in creates.itertuples()
    ]
    emulator.reset_stats()
    payload = {"edits": edits, "after_writes": 1}
    scheduled = httpx.post(f"{emulator.url}/_emulator/teacher-edits", json=payload)
    assert scheduled.json() == {"scheduled": 3}
    with client_for(emulator, token) as client, Journal.in_dir(tmp_path) as journal:
        result = apply_plan(plan, client, journal=journal, options=LOOSE)
        attempts = journal.attempts(plan_hash(plan), int(creates.iloc[0]["row_key"]))
    rows = result.rows.loc[creates.index]
    assert set(rows["status"]) == {"conflict"}
    assert (rows["after_points"] == 0.25).all()  # the teacher's value, in the report
    assert rows["message"].str.contains("now 0.25, left as the teacher set it").all()
    held = points_outcomes_of(emulator.state())
    assert all([o["points"] for o in held[r.submission_id]] == [0.25] for r in creates.itertuples())
    assert "PATCH" not in result.graph_stats["by_method"]  # nothing written over the teacher's grades
    assert result.graph_stats["by_method"]["POST"] == 3
    assert [a["status"] for a in attempts] == ["sending", "conflict"]
    assert exit_code(result) is ExitCode.ROWS_NOT_DONE


def test_our_own_create_that_landed_unanswered_is_found_and_not_sent_again(
    emulator: Any, token: str, tmp_path: Path
) -> None:
    """Every create lands but is answered with an error (the emulator's applied-then-error fault,
    switched on for the envelope of creates only): gradesync re-reads, finds its own value —
    ``created``, one points outcome each, no second POST."""
    plan = build_plan(emulator.state(), updates=0, creates=5, rejects=0)
    with client_for(emulator, token) as client, Journal.in_dir(tmp_path) as journal:
        lose_create_answers(client, emulator)
        result = apply_plan(plan, client, journal=journal, options=LOOSE)
    assert_converged(emulator, plan)
    assert result.graph_stats["fate_unknown"] == 5
    assert set(result.rows.loc[plan.rows["action"] == "create", "status"]) == {"created"}
    assert result.graph_stats["by_method"]["POST"] == 5


def test_create_with_unknown_fate_makes_no_duplicate(
    emulator_factory: Any, token: str, tmp_path: Path
) -> None:
    """applied-then-error: the POST lands but its answer is a 5xx/429 — re-read, never re-POST blindly."""
    tenant_server = emulator_factory(faults=FaultConfig.only("applied_error", 0.5, seed=3, scope="sub"))
    plan = build_plan(tenant_server.state(), updates=4, creates=12, rejects=0)
    result = run(tenant_server, token, plan, tmp_path)
    assert result.graph_stats["fate_unknown"] > 0  # the path was exercised
    assert_converged(tenant_server, plan)
    assert exit_code(result) is ExitCode.OK
    assert tenant_server.stats()["faults"]


def test_dry_run_writes_nothing(emulator: Any, token: str, tmp_path: Path) -> None:
    plan = build_plan(emulator.state(), updates=4, creates=2, rejects=0)
    before = points_outcomes_of(emulator.state())
    with client_for(emulator, token) as client:
        result = apply_plan(plan, client, journal=None, options=_resume(resume=False, dry_run=True))
    assert points_outcomes_of(emulator.state()) == before
    assert status_counts(result) == {"pending": 6, "unchanged": 2}
    assert result.graph_stats["writes"] == 0
    assert exit_code(result) is ExitCode.OK
