"""Every write on a fresh read, and a hard deadline — over real HTTP, driven by events.

Time is an injected monotonic clock: the test moves it at chosen moments (just before an envelope
leaves, or while a transport carries it), so "a pause of 10 s" or "an envelope that takes 3 s" costs
no real time and nothing waits on a sleep. Teacher edits are real requests to the emulator, made at
those same moments.
"""

from __future__ import annotations

import json
import random
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from execute_helpers import (
    FAST,
    assert_converged,
    build_plan,
    client_for,
    exit_code,
    graph_patch,
    points_outcomes_of,
    status_counts,
)

from gradesync.errors import ExitCode
from gradesync.execute.apply import ApplyOptions, apply_plan, order_of
from gradesync.graph import GraphClient, RateLimit
from gradesync.models import Plan
from gradesync.state.journal import Journal
from graph_emulator import FaultConfig
from graph_emulator.state import iter_submissions

WINDOW = 5.0


def with_reads(plan: Plan, at: datetime) -> Plan:
    """``plan`` as a sync makes it: each assignment's submissions read at ``at`` (``read_at``)."""
    stamp = at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    pairs = set(zip(plan.rows["class_id"], plan.rows["assignment_id"], strict=True))
    plan.read_at = {f"{c}/{a}": stamp for c, a in pairs if isinstance(c, str)}
    return plan


@dataclass
class Clock:
    """The executor's monotonic clock, moved only by the test."""

    t: float = 1000.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self) -> float:
        with self.lock:
            return self.t

    def advance(self, seconds: float) -> float:
        with self.lock:
            self.t += seconds
            return self.t


def _options(clock: Clock, now: datetime, window: float = WINDOW, **kw: Any) -> ApplyOptions:
    return ApplyOptions(read_write_window=timedelta(seconds=window), clock=clock, now=lambda: now, **kw)


def _writes(reqs: list[Any]) -> list[int]:
    return [int(r.id) for r in reqs if r.method in ("PATCH", "POST")]


def _first_envelope(plan: Plan) -> list[int]:
    return [op.row_key for op in order_of(plan.operations())][:20]


def test_a_read_gone_stale_while_the_envelope_waited_is_made_again_and_the_teachers_grade_kept(
    emulator: Any, token: str, tmp_path: Path
) -> None:
    """A sync's fresh plan: its read is the before-write check. Teachers grade three of the first
    envelope's submissions after that read; then something holds the envelope back 10 s (a
    Retry-After, a full lane) before it leaves. The gate sees its read would be 10 s old, holds it
    back, the executor reads again, finds the teachers' grades: conflicts, never overwritten."""
    now = datetime.now(UTC)
    plan = with_reads(build_plan(emulator.state(), updates=40, creates=0, rejects=0), now)
    rows = plan.rows.set_index("row_key")
    edited = _first_envelope(plan)[2:5]
    for k in edited:
        graph_patch(emulator, token, rows.loc[k], 0.5)
    clock = Clock()
    emulator.reset_stats()
    with client_for(emulator, token, max_in_flight=1) as client, Journal.in_dir(tmp_path) as journal:
        real = client.batch
        paused: list[int] = []

        def batch(reqs: list, **kw: Any) -> Any:
            if _writes(reqs) and not paused:
                paused.append(len(reqs))
                clock.advance(10.0)  # held up 10 s before it leaves
            return real(reqs, **kw)

        client.batch = batch  # type: ignore[method-assign]
        result = apply_plan(plan, client, journal=journal, options=_options(clock, now))
    out = result.rows.set_index("row_key")
    held = points_outcomes_of(emulator.state())
    for k in edited:
        assert out.loc[k, "status"] == "conflict", out.loc[k, "message"]
        assert out.loc[k, "after_points"] == 0.5
        assert held[rows.loc[k, "submission_id"]][0]["points"] == 0.5
    assert status_counts(result) == {"updated": 37, "conflict": 3, "unchanged": 2}
    assert emulator.stats()["by_method"]["GET"] >= 1  # read again before writing
    assert emulator.stats()["by_method"]["PATCH"] == 37  # the held-back envelope left once, re-decided


@pytest.mark.parametrize("seed", [1, 2])
def test_an_edit_made_longer_than_the_window_before_its_write_is_never_overwritten(
    emulator: Any, token: str, tmp_path: Path, seed: int
) -> None:
    """A long apply (96 writes, a stale plan) while teachers grade: before each envelope leaves the
    clock moves 1.5 s, and now and then 7 s (a pause longer than the window); at each such moment two
    teachers grade two submissions not yet written. Every edit made more than the window before its
    write is a conflict with the teacher's grade kept; the others are reported as Teams holds them."""
    now = datetime.now(UTC)
    plan = build_plan(emulator.state(), updates=96, creates=0, noops=0, rejects=0)
    rows = plan.rows.set_index("row_key")
    rng = random.Random(seed)
    clock = Clock()
    edits: dict[int, float] = {}  # row → when the teacher graded it
    sent: dict[int, float] = {}  # row → when its write left (the last time: held-back ones leave later)
    with client_for(emulator, token, max_in_flight=1) as client, Journal.in_dir(tmp_path) as journal:
        real = client.batch

        def batch(reqs: list, **kw: Any) -> Any:
            keys = _writes(reqs)
            if keys:
                later = [k for k in rows.index if k not in sent and k not in edits and k not in keys]
                for k in rng.sample(later, min(2, len(later))):
                    graph_patch(emulator, token, rows.loc[k], 0.5)
                    edits[k] = clock()
                at = clock.advance(7.0 if rng.random() < 0.3 else 1.5)
                answers = real(reqs, **kw)
                sent.update({k: at for k in keys if answers[str(k)].error is None})
                return answers
            return real(reqs, **kw)

        client.batch = batch  # type: ignore[method-assign]
        result = apply_plan(plan, client, journal=journal, options=_options(clock, now))
    out = result.rows.set_index("row_key")
    held = points_outcomes_of(emulator.state())
    protected = [k for k, t in edits.items() if k not in sent or sent[k] - t > WINDOW]
    assert len(protected) >= 5, "the seed must give edits made longer than the window before the write"
    for k in protected:
        assert held[rows.loc[k, "submission_id"]][0]["points"] == 0.5, (
            k,
            "a teacher's grade was overwritten",
        )
        # a conflict, or (held back by one long pause after another) not sent at all: carried over
        assert out.loc[k, "status"] in ("conflict", "carried_over"), (k, out.loc[k, "message"])
    for k in edits:  # what Teams holds, as the row reports it (a row never sent reports its last read)
        if out.loc[k, "status"] != "carried_over":
            assert out.loc[k, "after_points"] == held[rows.loc[k, "submission_id"]][0]["points"]
    assert set(out.loc[out.index.difference(list(edits)), "status"]) <= {"updated", "carried_over"}


def test_each_assignment_is_read_once_just_before_its_writes_and_a_fresh_plan_not_at_all(
    emulator: Any, token: str, tmp_path: Path
) -> None:
    """Each read once: a sync's plan within the window is the before-write check (no read); an older
    reviewed plan reads each touched assignment once, right before its writes."""
    now = datetime.now(UTC)
    base = build_plan(emulator.state(), updates=40, creates=4, rejects=0)
    pairs = set(zip(base.rows["class_id"], base.rows["assignment_id"], strict=True))
    emulator.reset_stats()
    with client_for(emulator, token) as client, Journal.in_dir(tmp_path / "fresh") as journal:
        fresh = apply_plan(with_reads(base, now), client, journal=journal, options=_options(Clock(), now))
    assert fresh.graph_stats["reads"] == 0 and fresh.graph_stats["writes"] == 44
    assert status_counts(fresh) == {"updated": 40, "created": 4, "unchanged": 2}
    assert_converged(emulator, base)

    emulator.reset()
    emulator.reset_stats()
    with client_for(emulator, token) as client, Journal.in_dir(tmp_path / "stale") as journal:
        old = with_reads(base, now - timedelta(hours=2))
        stale = apply_plan(old, client, journal=journal, options=_options(Clock(), now))
    per_page = emulator.stats()["config"]["page_size"]
    once = sum(-(-len(_subs(emulator, c, a)) // per_page) for c, a in pairs)
    assert stale.graph_stats["reads"] == emulator.stats()["by_method"]["GET"] == once
    assert status_counts(stale) == status_counts(fresh)
    assert_converged(emulator, base)


def _subs(server: Any, class_id: str, assignment_id: str) -> list[dict]:
    return [
        s for c, a, s in iter_submissions(server.state()) if (c["id"], a["id"]) == (class_id, assignment_id)
    ]


def test_only_what_went_stale_is_read_again_one_by_one_when_that_is_cheaper(
    emulator: Any, token: str, tmp_path: Path
) -> None:
    """Small pages (5): after the first listing of an assignment (several pages), a pause makes the
    read of the last, three-write envelope stale; those three submissions are read one by one (three
    GETs), not by the whole listing again."""
    emulator.configure(page_size=5)
    now = datetime.now(UTC)
    plan = build_plan(emulator.state(), updates=23, creates=0, noops=0, rejects=0)
    clock = Clock()
    envelopes: list[list[int]] = []
    try:
        emulator.reset_stats()
        with client_for(emulator, token, max_in_flight=1) as client, Journal.in_dir(tmp_path) as journal:
            real = client.batch

            def batch(reqs: list, **kw: Any) -> Any:
                if _writes(reqs):
                    envelopes.append(_writes(reqs))
                    if len(envelopes) == 2:
                        clock.advance(10.0)
                return real(reqs, **kw)

            client.batch = batch  # type: ignore[method-assign]
            result = apply_plan(plan, client, journal=journal, options=_options(clock, now))
        routes = emulator.stats()["by_route"]
    finally:
        emulator.configure(page_size=25)
    assert [len(e) for e in envelopes] == [20, 3, 3]  # the second one was held back, then left
    assert routes["GET /education/classes/{id}/assignments/{id}/submissions/{id}"] == 3
    listings = routes["GET /education/classes/{id}/assignments/{id}/submissions"]
    pairs = set(zip(plan.rows["class_id"], plan.rows["assignment_id"], strict=True))
    assert listings == sum(-(-len(_subs(emulator, c, a)) // 5) for c, a in pairs)  # each listed once
    assert status_counts(result) == {"updated": 23}


class SlowWrites(httpx.HTTPTransport):
    """A Graph that takes ``seconds`` (on the test's clock) to answer each envelope of writes."""

    def __init__(self, clock: Clock, seconds: float) -> None:
        super().__init__()
        self.clock, self.seconds = clock, seconds
        self.sent: list[tuple[float, float]] = []  # (left, answered) of each envelope of writes

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        writes = request.url.path.endswith("/$batch") and b'"PATCH"' in body
        left = self.clock()
        response = super().handle_request(request)
        if writes:
            self.sent.append((left, self.clock.advance(self.seconds)))
        return response


def _slow_client(server: Any, token: str, transport: httpx.BaseTransport) -> GraphClient:
    return GraphClient(
        server.base_url,
        lambda: token,
        policy=FAST,
        rate_limit=RateLimit.off(),
        transport=transport,
        max_in_flight=1,
    )


def test_a_deadline_is_hard_for_a_slow_graph_and_the_next_run_finishes_without_a_duplicate(
    emulator: Any, token: str, tmp_path: Path
) -> None:
    """Each envelope takes 3 s (a slow Graph); the deadline is 10 s away. The executor learns the 3 s
    from the first envelope and sends none that would be answered after the deadline: the envelopes
    leave at 0, 3 and 6 s (answered by 9 s), the rest is carried over (exit 6), and a resume writes
    exactly the rest."""
    now = datetime.now(UTC)
    plan = with_reads(build_plan(emulator.state(), updates=100, creates=0, rejects=0), now)
    clock = Clock()
    start = clock()
    slow = SlowWrites(clock, 3.0)
    options = _options(clock, now, window=60, deadline=now + timedelta(seconds=10))
    emulator.reset_stats()
    with _slow_client(emulator, token, slow) as client, Journal.in_dir(tmp_path) as journal:
        first = apply_plan(plan, client, journal=journal, options=options)
    assert [round(left - start) for left, _ in slow.sent] == [0, 3, 6]
    assert max(answered for _, answered in slow.sent) - start <= 10  # nothing answered after it
    assert status_counts(first) == {"updated": 60, "carried_over": 40, "unchanged": 2}
    assert exit_code(first) is ExitCode.CARRIED_OVER
    carried = first.rows[first.rows["status"] == "carried_over"]
    assert carried["message"].str.contains("deadline").all()
    assert emulator.stats()["writes_applied"] == 60

    emulator.reset_stats()
    with client_for(emulator, token) as client, Journal.in_dir(tmp_path) as journal:
        second = apply_plan(plan, client, journal=journal, options=ApplyOptions(resume=True))
    assert emulator.stats()["writes_applied"] == 40  # none sent twice, none rewritten
    assert exit_code(second) is ExitCode.OK
    assert_converged(emulator, plan)


def test_a_return_is_a_write_no_return_leaves_after_the_deadline_and_resume_returns(
    emulator: Any, token: str, tmp_path: Path
) -> None:
    """A nightly `sync --return` with a deadline: the writes take until 9 s of a 10 s deadline (three
    envelopes of 3 s each), so the returns — POSTs that publish grades to students — would land after
    it. None is sent: the written rows say they were not returned and why, the run exits 6 (carried
    over), and `apply --resume --return` returns them (reading first, as every return does)."""
    now = datetime.now(UTC)
    plan = with_reads(build_plan(emulator.state(), updates=60, creates=0, rejects=0), now)
    clock = Clock()
    slow = SlowWrites(clock, 3.0)
    returning = {"publish": True, "publish_assignments": ("*",)}
    options = _options(clock, now, window=60, deadline=now + timedelta(seconds=10), **returning)
    emulator.reset_stats()
    with _slow_client(emulator, token, slow) as client, Journal.in_dir(tmp_path) as journal:
        first = apply_plan(plan, client, journal=journal, options=options)
    returns = "POST /education/classes/{id}/assignments/{id}/submissions/{id}/return"
    assert emulator.stats()["by_route"].get(returns, 0) == 0
    assert status_counts(first) == {"updated": 60, "unchanged": 2}
    written = first.rows[first.rows["status"] == "updated"]
    assert not written["returned"].any()
    assert written["message"].str.contains("deadline .* was reached before returning", regex=True).all()
    assert first.return_carried == 60 and first.return_failed == 0
    assert exit_code(first) is ExitCode.CARRIED_OVER

    emulator.reset_stats()
    with client_for(emulator, token) as client, Journal.in_dir(tmp_path) as journal:
        second = apply_plan(plan, client, journal=journal, options=ApplyOptions(resume=True, **returning))
    assert "PATCH" not in emulator.stats()["by_method"]  # no grade written twice
    again = second.rows.set_index("row_key").loc[written["row_key"]]
    sent = emulator.stats()["by_route"].get(returns, 0)
    assert sent == int(again["returned"].sum()) > 0  # each return sent once, on the resume
    assert second.return_carried == 0
    assert again.loc[~again["returned"], "message"].str.contains("not returned").all()  # left alone, and why


def test_a_retry_after_that_would_cross_the_deadline_is_not_waited(
    emulator_factory: Any, token: str, tmp_path: Path
) -> None:
    """Graph throttles every request with a Retry-After of two minutes; the deadline is half a minute
    away. Neither the pacer nor the retries start a wait that would end past it: nothing is written,
    every row is carried over (exit 6), and the run never asked to sleep as long as the deadline."""
    server = emulator_factory(faults=FaultConfig.only("429", 1.0, scope="sub", retry_after=120.0))
    now = datetime.now(UTC)
    plan = with_reads(build_plan(server.state(), updates=30, creates=0, rejects=0), now)
    asked: list[float] = []
    client = GraphClient(
        server.base_url, lambda: token, policy=FAST, rate_limit=RateLimit.off(), sleep=asked.append
    )
    options = ApplyOptions(deadline=now + timedelta(seconds=30), now=lambda: now)
    with client, Journal.in_dir(tmp_path) as journal:
        result = apply_plan(plan, client, journal=journal, options=options)
    assert sum(asked) < 30
    assert status_counts(result) == {"carried_over": 30, "unchanged": 2}
    assert exit_code(result) is ExitCode.CARRIED_OVER
    assert server.stats()["writes_applied"] == 0


def test_the_settings_default_window_is_the_measured_one() -> None:
    """``[apply] read_write_window`` defaults to 5 s: the window the README states, as measured."""
    from gradesync.config import Settings

    assert ApplyOptions.from_settings(Settings()).read_write_window == timedelta(seconds=5)
    assert json.loads(json.dumps(Settings().apply.read_write_window)) == "5s"
