"""Transient stays transient: a row that failed for a passing reason is carried over, never final
``failed``, and ``--resume`` finishes it — reads and writes failing, a token refused mid-run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from execute_helpers import (
    FAST,
    assert_converged,
    build_plan,
    exit_code,
    graph_patch,
    lose_create_answers,
    status_counts,
)

from gradesync.errors import AuthError, ExitCode, GraphAuthError
from gradesync.execute.apply import ApplyOptions, apply_plan
from gradesync.graph import GraphClient, RateLimit, RetryPolicy, SubResponse
from gradesync.state.journal import Journal
from graph_emulator import FaultConfig, ThrottleConfig

LOOSE = ApplyOptions(wave_size=10)
RESUME = ApplyOptions(resume=True)
ONE_TRY = RetryPolicy(max_attempts=1, base_delay=0.001, max_delay=0.001, max_total_seconds=1.0)


class Tokens:
    """A token provider that the test can turn bad (whatever the client asks: a fresh one or not)."""

    def __init__(self, good: str) -> None:
        self.token = good

    def __call__(self, *args: Any, **kwargs: Any) -> str:
        return self.token


def _client(server: Any, tokens: Any, policy: RetryPolicy = FAST) -> GraphClient:
    return GraphClient(
        server.base_url,
        tokens,
        policy=policy,
        rate_limit=RateLimit.off(),
        max_in_flight=1,
        sleep=lambda s: None,
    )


def test_reads_and_writes_failing_carry_rows_over_and_resume_finishes_them(
    emulator_factory: Any, token: str, tmp_path: Path
) -> None:
    """503s (not applied) on most sub-requests, one re-verify round: reads and writes fail."""
    server = emulator_factory(faults=FaultConfig.only("503", 0.7, seed=11, scope="sub"))
    plan = build_plan(server.state(), updates=40, creates=8, rejects=0)
    with _client(server, Tokens(token), ONE_TRY) as client, Journal.in_dir(tmp_path) as journal:
        options = ApplyOptions(max_rounds=1)
        first = apply_plan(plan, client, journal=journal, options=options)
    assert server.stats()["faults"]
    assert "failed" not in set(first.rows["status"])
    assert status_counts(first).get("carried_over", 0) > 0
    assert exit_code(first) is ExitCode.CARRIED_OVER
    carried = first.rows[first.rows["status"] == "carried_over"]
    assert carried["message"].str.contains("carried over|not sent", regex=True).all()

    server.configure(faults=None)
    # one row never sent meanwhile gets its desired grade some other way: re-checked, it is unchanged
    unsent = carried[carried["message"].str.startswith("not sent")].iloc[0]
    graph_patch(server, token, unsent, float(unsent.desired_points))
    with _client(server, Tokens(token)) as client, Journal.in_dir(tmp_path) as journal:
        second = apply_plan(plan, client, journal=journal, options=RESUME)
    assert exit_code(second) is ExitCode.OK
    assert "failed" not in set(second.rows["status"])
    assert second.rows.set_index("row_key").loc[unsent.row_key, "status"] == "unchanged"
    assert_converged(server, plan)


def test_a_token_refused_mid_run_stops_sending_and_carries_the_rest_over(
    emulator: Any, token: str, tmp_path: Path
) -> None:
    plan = build_plan(emulator.state(), updates=40, creates=0, rejects=0)
    tokens = Tokens(token)

    emulator.reset_stats()
    with _client(emulator, tokens) as client, Journal.in_dir(tmp_path) as journal:
        real = client.batch

        def batch(reqs: list, **kw: Any) -> dict:
            answers = real(reqs, **kw)
            tokens.token = "expired-token"  # the token expires once the first envelope is answered
            return answers

        client.batch = batch  # type: ignore[method-assign]
        first = apply_plan(plan, client, journal=journal, options=LOOSE)
    assert isinstance(first.error, AuthError)
    assert exit_code(first) is ExitCode.AUTH
    assert "failed" not in set(first.rows["status"])
    assert status_counts(first) == {"updated": 10, "carried_over": 30, "unchanged": 2}
    assert emulator.stats()["unauthorized"] <= 2  # nothing more was sent after the refusal

    with _client(emulator, Tokens(token)) as client, Journal.in_dir(tmp_path) as journal:
        second = apply_plan(plan, client, journal=journal, options=RESUME)
    assert exit_code(second) is ExitCode.OK
    assert status_counts(second) == {"updated": 40, "unchanged": 2}
    assert_converged(emulator, plan)


def test_a_401_inside_batch_sub_responses_is_carried_over_not_failed(
    emulator: Any, token: str, tmp_path: Path
) -> None:
    """Graph can refuse the token per sub-request (the emulator checks the envelope only, so the
    second round of sub-responses is replaced by what Graph sends: 401 InvalidAuthenticationToken)."""
    plan = build_plan(emulator.state(), updates=30, creates=0, rejects=0)
    calls: list[int] = []
    with _client(emulator, Tokens(token)) as client, Journal.in_dir(tmp_path) as journal:
        real = client.batch

        def batch(reqs: list, **kw: Any) -> dict:
            calls.append(len(reqs))
            if len(calls) == 1:
                return real(reqs, **kw)
            err = GraphAuthError("Lifetime validation failed, the token is expired.", status=401)
            return {r.id: SubResponse(r.id, 401, None, {}, err, False, 1) for r in reqs}

        client.batch = batch  # type: ignore[method-assign]
        first = apply_plan(plan, client, journal=journal, options=LOOSE)
    assert len(calls) == 2  # no envelope after the refused one
    assert exit_code(first) is ExitCode.AUTH
    assert status_counts(first) == {"updated": calls[0], "carried_over": 30 - calls[0], "unchanged": 2}
    with _client(emulator, Tokens(token)) as client, Journal.in_dir(tmp_path) as journal:
        second = apply_plan(plan, client, journal=journal, options=RESUME)
    assert status_counts(second) == {"updated": 30, "unchanged": 2}
    assert_converged(emulator, plan)


def test_lost_creates_finish_under_a_tenant_limit_far_below_graphs(
    emulator_factory: Any, token: str, tmp_path: Path
) -> None:
    """The tenant admits 20 requests per 10 s (2/s, a seventeenth of Graph's 35/s); the creates
    land but their answers are lost. The pace learnt from the 429s holds for the reads that confirm
    them and for any create sent again: every create is confirmed within a resume, none twice."""
    server = emulator_factory(throttle=ThrottleConfig(per_10s=20, per_hour=10_000))
    plan = build_plan(server.state(), updates=10, creates=7, rejects=0)
    runs = []
    for attempt in range(2):
        client = GraphClient(server.base_url, Tokens(token), rate_limit=RateLimit.graph())
        with client, Journal.in_dir(tmp_path) as journal:
            if attempt == 0:  # the creates land, their answers do not
                lose_create_answers(client, server)
            runs.append(apply_plan(plan, client, journal=journal, options=ApplyOptions(resume=attempt > 0)))
        if exit_code(runs[-1]) is ExitCode.OK:
            break
    assert server.stats()["throttled"] > 0  # the limit was met
    assert status_counts(runs[-1]) == {"updated": 10, "created": 7, "unchanged": 2}
    assert_converged(server, plan)  # one points outcome each: no create sent twice
