"""Convergence under 30% injected faults: every valid row reaches its desired value, once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from execute_helpers import assert_converged, build_plan, client_for, status_counts

from gradesync.execute.apply import ApplyOptions, apply_plan
from gradesync.state.journal import Journal
from graph_emulator import FaultConfig

OPTIONS = ApplyOptions(wave_size=40)


def thirty_percent(seed: int) -> FaultConfig:
    return FaultConfig(
        seed=seed,
        rate_429=0.06,  # with Retry-After (decimal seconds)
        rate_429_no_ra=0.04,
        rate_500=0.03,
        rate_503=0.04,
        rate_504=0.03,
        rate_drop=0.03,  # applied, then the connection is cut
        rate_slow=0.03,  # applied, answered after the client's timeout
        rate_applied_error=0.04,  # applied, answered 429/5xx
        slow_seconds=0.4,
        retry_after=0.01,
        latency_ms=1,
        scope="both",
    )


@pytest.mark.parametrize("seed", [1, 2])
def test_converges_under_thirty_percent_faults(
    emulator_factory: Any, token: str, tmp_path: Path, seed: int
) -> None:
    server = emulator_factory(faults=thirty_percent(seed))
    plan = build_plan(server.state(), updates=60, creates=25, noops=5, rejects=3)
    with client_for(server, token, timeout=0.2) as client, Journal.in_dir(tmp_path) as journal:
        result = apply_plan(plan, client, journal=journal, options=OPTIONS)
    stats = server.stats()
    assert sum(stats["faults"].values()) > 10  # faults really happened
    assert_converged(server, plan)
    # the report accounts for every input row, each with a status
    assert list(result.rows["row_key"]) == list(plan.rows["row_key"])
    assert status_counts(result) == {"updated": 60, "created": 25, "unchanged": 5, "rejected": 3}
    assert (result.rows["status"] != "").all()
