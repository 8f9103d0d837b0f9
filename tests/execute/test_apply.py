"""The executor against the emulator over real HTTP: happy path, stale plan, 409, unknown fates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from execute_helpers import assert_converged, build_plan, client_for, graph_patch, points_outcomes_of

from gradesync.errors import ExitCode, GuardError, UsageError
from gradesync.execute.apply import ApplyOptions, apply_plan, plan_hash
from gradesync.guards import Limit
from gradesync.state.journal import Journal
from graph_emulator import FaultConfig

# the test plans touch a few students of each assignment: coverage is off unless a test is about it
LOOSE = ApplyOptions(max_changes=Limit.parse("100%"), max_decreases=Limit.parse("100%"), min_coverage=None)


def run(server: Any, token: str, plan: Any, state_dir: Path, options: ApplyOptions = LOOSE, **kw: Any) -> Any:
    with client_for(server, token, **kw) as client, Journal.in_dir(state_dir) as journal:
        return apply_plan(plan, client, journal=journal, options=options)


def test_happy_path_updates_and_creates(emulator: Any, token: str, tmp_path: Path) -> None:
    plan = build_plan(emulator.state(), updates=12, creates=5, noops=3, rejects=2)
    result = run(emulator, token, plan, tmp_path)
    assert_converged(emulator, plan)
    assert result.status_counts == {"updated": 12, "created": 5, "unchanged": 3, "rejected": 2}
    assert len(result.rows) == len(plan.rows)
    assert list(result.rows["row_key"]) == list(plan.rows["row_key"])
    writes = result.rows[result.rows["action"].isin(["update", "create"])]
    assert (writes["after_points"] == writes["desired_points"]).all()
    assert result.exit_code is ExitCode.ROWS_NOT_DONE  # the rejected rows
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
    assert again.status_counts == result.status_counts
    assert_converged(emulator, plan)


def _resume(**kw: Any) -> ApplyOptions:
    base = {
        "max_changes": Limit.parse("100%"),
        "max_decreases": Limit.parse("100%"),
        "min_coverage": None,
        "resume": True,
    }
    return ApplyOptions(**{**base, **kw})


def test_all_rows_ok_exits_zero(emulator: Any, token: str, tmp_path: Path) -> None:
    plan = build_plan(emulator.state(), updates=3, creates=2, rejects=0)
    result = run(emulator, token, plan, tmp_path)
    assert result.exit_code is ExitCode.OK
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
    assert result.status_counts["updated"] == 5 and result.status_counts["created"] == 1
    assert result.exit_code is ExitCode.ROWS_NOT_DONE

    # overwrite mode writes anyway and says so
    over = run(emulator, token, plan, tmp_path / "overwrite", _resume(on_conflict="overwrite", resume=False))
    by_key = over.rows.set_index("row_key")
    assert by_key.loc[0, "status"] == "updated"
    assert "overwrote" in by_key.loc[0, "message"]
    assert_converged(emulator, plan)


def test_guards_refuse_before_any_request(emulator: Any, token: str, tmp_path: Path) -> None:
    plan = build_plan(emulator.state(), updates=30, creates=0, noops=2, decrease=True, rejects=0)
    emulator.reset_stats()
    with pytest.raises(GuardError) as e:
        run(emulator, token, plan, tmp_path, ApplyOptions())
    assert "plan changes 30 of 32 grades (94%), above --max-changes 50%" in e.value.message
    assert "--max-decreases 20%" in e.value.message
    assert emulator.stats()["graph_requests"] == 0
    assert not any(Journal.in_dir(tmp_path).ops(plan_hash(plan)).values())


def test_coverage_guard_refuses_an_export_that_lost_rows(emulator: Any, token: str, tmp_path: Path) -> None:
    plan = build_plan(emulator.state(), updates=45, creates=0, rejects=0)
    emulator.reset_stats()
    with pytest.raises(GuardError) as e:
        run(emulator, token, plan, tmp_path, ApplyOptions(max_changes=None, max_decreases=None))
    assert "below --min-coverage 60%" in e.value.message
    assert emulator.stats()["writes_applied"] == 0


def test_plan_age_guard(emulator: Any, token: str, tmp_path: Path) -> None:
    plan = build_plan(emulator.state(), updates=2, creates=0, created_at="2020-01-01T00:00:00Z")
    with pytest.raises(GuardError) as e:
        run(emulator, token, plan, tmp_path)
    assert "older than --max-plan-age 24h" in e.value.message


def test_409_on_create_rereads_and_patches(emulator: Any, token: str, tmp_path: Path) -> None:
    """A points outcome appears between the stale check and the POST (a teacher, or a lost create)."""
    plan = build_plan(emulator.state(), updates=0, creates=3, rejects=0)
    creates = plan.rows[plan.rows["action"] == "create"]
    with client_for(emulator, token) as client, Journal.in_dir(tmp_path) as journal:
        real_batch = client.batch
        fired = []

        def batch(reqs: list) -> dict:
            if not fired and any(r.method == "POST" for r in reqs):
                fired.append(True)
                for row in creates.itertuples():
                    graph_patch(emulator, token, row, 0.0)
            return real_batch(reqs)

        client.batch = batch  # type: ignore[method-assign]
        result = apply_plan(plan, client, journal=journal, options=LOOSE)
        attempts = journal.attempts(plan_hash(plan), int(creates.iloc[0]["row_key"]))
    assert fired
    assert_converged(emulator, plan)
    assert set(result.rows.loc[creates.index, "status"]) == {"created"}
    assert "appeared during this run" in result.rows.loc[creates.index[0], "message"]
    assert [a["status"] for a in attempts] == ["sending", "sending", "created"]
    assert result.graph_stats["by_method"]["POST"] == 3 and result.graph_stats["by_method"]["PATCH"] == 3


def test_create_with_unknown_fate_makes_no_duplicate(
    emulator_factory: Any, token: str, tmp_path: Path
) -> None:
    """applied-then-error: the POST lands but its answer is a 5xx/429 — re-read, never re-POST blindly."""
    tenant_server = emulator_factory(faults=FaultConfig.only("applied_error", 0.5, seed=3, scope="sub"))
    plan = build_plan(tenant_server.state(), updates=4, creates=12, rejects=0)
    result = run(tenant_server, token, plan, tmp_path)
    assert result.graph_stats["fate_unknown"] > 0  # the path was exercised
    assert_converged(tenant_server, plan)
    assert result.exit_code is ExitCode.OK
    assert tenant_server.stats()["faults"]


def test_dry_run_writes_nothing(emulator: Any, token: str, tmp_path: Path) -> None:
    plan = build_plan(emulator.state(), updates=4, creates=2, rejects=0)
    before = points_outcomes_of(emulator.state())
    with client_for(emulator, token) as client:
        result = apply_plan(plan, client, journal=None, options=_resume(resume=False, dry_run=True))
    assert points_outcomes_of(emulator.state()) == before
    assert result.status_counts == {"pending": 6, "unchanged": 2}
    assert result.graph_stats["writes"] == 0
    assert result.exit_code is ExitCode.OK
