"""The read-to-write window, teacher edits during a long apply, each read once, and the deadline.

Time is an injected monotonic clock that the test advances after each write wave (the executor's
progress callback): a "long" apply takes no real time, and nothing waits on a sleep. Teacher edits
are real PATCHes over HTTP, made from that callback, i.e. between two write waves.
"""

from __future__ import annotations

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
from gradesync.execute.apply import ApplyOptions, apply_plan, waves_of
from gradesync.graph import GraphClient, RateLimit
from gradesync.models import Plan
from gradesync.state.journal import Journal
from graph_emulator.state import iter_submissions

WAVE = 8  # operations per wave: a 96-row plan is a dozen waves over several assignments
STEP = 25.0  # seconds of (injected) time per wave


class PlanWithReads(Plan):
    """A Plan carrying ``read_at`` (contract 4) on a branch where models.Plan may not have it yet."""


def with_reads(plan: Plan, at: datetime) -> Plan:
    out = PlanWithReads(**{f: getattr(plan, f) for f in Plan.__dataclass_fields__})
    stamp = at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    pairs = set(zip(plan.rows["class_id"], plan.rows["assignment_id"], strict=True))
    out.read_at = {f"{c}/{a}": stamp for c, a in pairs if isinstance(c, str)}  # type: ignore[attr-defined]
    return out


@dataclass
class Clock:
    t: float = 1000.0

    def __call__(self) -> float:
        return self.t


@dataclass
class Edits:
    """Teacher edits made between waves: row_key → the (injected) time it landed."""

    server: Any
    token: str
    plan: Plan
    clock: Clock
    rng: random.Random
    per_wave: int = 2
    landed: dict[int, float] = field(default_factory=dict)
    waves: int = 0

    def __call__(self, step: str, done: int, total: int) -> None:
        if step != "writing" or done == 0:
            return
        self.waves += 1
        self.clock.t += STEP
        order = [op.row_key for w in waves_of(self.plan.operations(), WAVE) for op in w]
        later = [k for k in order[done:] if k not in self.landed]
        rows = self.plan.rows.set_index("row_key")
        for k in self.rng.sample(later, min(self.per_wave, len(later))):
            graph_patch(self.server, self.token, rows.loc[k], 0.5)  # neither before nor desired
            self.landed[k] = self.clock.t


def _write_times(plan: Plan) -> dict[int, float]:
    """The injected time at which each row's wave goes out (wave i starts after i callbacks)."""
    start = Clock().t
    return {op.row_key: start + STEP * i for i, w in enumerate(waves_of(plan.operations(), WAVE)) for op in w}


def _options(window: float, clock: Clock, **kw: Any) -> ApplyOptions:
    return ApplyOptions(
        wave_size=WAVE,
        read_write_window=timedelta(seconds=window),
        clock=clock,
        **kw,
    )


@pytest.mark.parametrize(("window", "seed"), [(60.0, 1), (60.0, 2), (0.0, 3)])
def test_teacher_edits_during_a_long_apply_are_never_overwritten_once_older_than_the_window(
    emulator: Any, token: str, tmp_path: Path, window: float, seed: int
) -> None:
    plan = with_reads(
        build_plan(emulator.state(), updates=96, creates=0, noops=0, rejects=0), datetime.now(UTC)
    )
    clock = Clock()
    edits = Edits(emulator, token, plan, clock, random.Random(seed))
    with client_for(emulator, token, max_in_flight=1) as client, Journal.in_dir(tmp_path) as journal:
        result = apply_plan(plan, client, journal=journal, options=_options(window, clock), progress=edits)
    assert edits.waves > 8 and len(edits.landed) > 10  # a long apply, edited all along
    held = points_outcomes_of(emulator.state())
    rows = result.rows.set_index("row_key")
    writes = _write_times(plan)
    protected = [k for k, t in edits.landed.items() if writes[k] - t > window or window == 0]
    assert protected, "the seed must give edits that landed earlier than the window"
    for k in protected:
        sid = rows.loc[k, "submission_id"]
        assert held[sid][0]["points"] == 0.5, (k, "a teacher's edit was overwritten")
        assert rows.loc[k, "status"] == "conflict", (k, rows.loc[k, "message"])
        assert rows.loc[k, "after_points"] == 0.5
    for k in set(edits.landed) - set(protected):  # inside the window: reported truthfully either way
        sid = rows.loc[k, "submission_id"]
        truth = held[sid][0]["points"]
        assert rows.loc[k, "after_points"] == truth or rows.loc[k, "status"] == "updated"
    untouched = rows.index.difference(list(edits.landed))
    assert set(rows.loc[untouched, "status"]) == {"updated"}
    if window == 0:
        assert set(rows.loc[list(edits.landed), "status"]) == {"conflict"}


def test_a_fresh_plan_is_written_without_reading_again_and_a_stale_one_reads_each_assignment_once(
    emulator: Any, token: str, tmp_path: Path
) -> None:
    """Each read once: a sync's own planning read (within the window) is the before-write check and
    the write answers verify the writes; an older plan reads each touched assignment once."""
    base = build_plan(emulator.state(), updates=40, creates=4, rejects=0)
    pairs = set(zip(base.rows["class_id"], base.rows["assignment_id"], strict=True))
    clock = Clock()
    emulator.reset_stats()
    with client_for(emulator, token) as client, Journal.in_dir(tmp_path / "fresh") as journal:
        fresh = apply_plan(
            with_reads(base, datetime.now(UTC)), client, journal=journal, options=_options(60, clock)
        )
    assert fresh.graph_stats["reads"] == 0
    assert fresh.graph_stats["writes"] == 44
    assert status_counts(fresh) == {"updated": 40, "created": 4, "unchanged": 2}
    assert_converged(emulator, base)

    emulator.reset()
    emulator.reset_stats()
    with client_for(emulator, token) as client, Journal.in_dir(tmp_path / "stale") as journal:
        old = with_reads(base, datetime.now(UTC) - timedelta(hours=2))
        stale = apply_plan(old, client, journal=journal, options=_options(60, clock))
    listings = {r for r in emulator.stats()["by_route"] if "submissions" in r}
    assert listings  # the reads were submission listings
    pages = emulator.stats()["by_method"].get("GET", 0)
    per_page = emulator.stats()["config"]["page_size"]
    most = sum(-(-len(_subs(emulator, c, a)) // per_page) for c, a in pairs)
    assert stale.graph_stats["reads"] == pages <= most  # one listing per assignment, no more
    assert status_counts(stale) == status_counts(fresh)
    assert_converged(emulator, base)


def _subs(server: Any, class_id: str, assignment_id: str) -> list[dict]:
    return [
        s for c, a, s in iter_submissions(server.state()) if (c["id"], a["id"]) == (class_id, assignment_id)
    ]


def test_a_deadline_carries_the_rest_to_a_second_run_that_finishes_it_once(
    emulator: Any, token: str, tmp_path: Path
) -> None:
    plan = build_plan(emulator.state(), updates=40, creates=6, rejects=0)
    clock = Clock()
    now = datetime.now(UTC)

    def tick(step: str, done: int, total: int) -> None:
        if step == "writing" and done:
            clock.t += 30.0

    # a deadline 90 s away, a 5 s margin: the waves at t = 0, 30, 60 go out; the one at 90 does not
    opts = _options(60, clock, deadline=now + timedelta(seconds=90), now=lambda: now)
    emulator.reset_stats()
    with client_for(emulator, token) as client, Journal.in_dir(tmp_path) as journal:
        first = apply_plan(plan, client, journal=journal, options=opts, progress=tick)
    sent = sum(len(w) for w in waves_of(plan.operations(), WAVE)[:3])
    assert status_counts(first).get("carried_over") == 46 - sent
    assert exit_code(first) is ExitCode.CARRIED_OVER
    assert emulator.stats()["writes_applied"] == sent
    carried = first.rows[first.rows["status"] == "carried_over"]
    assert carried["message"].str.contains("deadline").all()

    emulator.reset_stats()
    with client_for(emulator, token) as client, Journal.in_dir(tmp_path) as journal:
        second = apply_plan(plan, client, journal=journal, options=_options(60, Clock(), resume=True))
    assert emulator.stats()["writes_applied"] == 46 - sent  # no grade rewritten, none sent twice
    assert exit_code(second) is ExitCode.OK
    assert status_counts(second) == {"updated": 40, "created": 6, "unchanged": 2}
    assert_converged(emulator, plan)


def _teacher_edits_supported(server: Any, token: str) -> bool:
    r = httpx.get(f"{server.url}/_emulator/teacher-edits", headers={"Authorization": f"Bearer {token}"})
    return r.status_code == 200


def test_teacher_edits_scheduled_inside_the_emulator_with_window_zero(
    emulator: Any, token: str, tmp_path: Path
) -> None:
    """Contract 8: the emulator applies each edit just before its N-th write sub-request. With
    window 0 and one envelope in flight, an edit landing before the wave of its target is read is
    never overwritten (an edit between a wave's read and its write is the race no Graph API closes)."""
    if not _teacher_edits_supported(emulator, token):
        pytest.skip("the emulator has no /_emulator/teacher-edits yet (contract 8)")
    plan = build_plan(emulator.state(), updates=96, creates=0, rejects=0)
    waves = waves_of(plan.operations(), WAVE)
    first_write = {}  # row_key → the 1-based write index of the first write of its wave
    n = 0
    for w in waves:
        for op in w:
            first_write[op.row_key] = n + 1
        n += len(w)
    rng = random.Random(8)
    rows = plan.rows.set_index("row_key")
    edits, chosen = [], {}
    for after in sorted(rng.sample(range(1, 80), 12)):
        later = [k for k, f in first_write.items() if f > after and k not in chosen]
        k = rng.choice(later)
        chosen[k] = after
        r = rows.loc[k]
        edits.append(
            {"class_id": r.class_id, "assignment_id": r.assignment_id, "submission_id": r.submission_id}
            | {"points": 0.5, "after_writes": after}
        )
    for e in edits:
        after = e.pop("after_writes")
        resp = httpx.post(
            f"{emulator.url}/_emulator/teacher-edits",
            json={"edits": [e], "after_writes": after},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert resp.status_code == 200, resp.text
    with client_for(emulator, token, max_in_flight=1) as client, Journal.in_dir(tmp_path) as journal:
        result = apply_plan(plan, client, journal=journal, options=_options(0, Clock()))
    held = points_outcomes_of(emulator.state())
    out = result.rows.set_index("row_key")
    for k in chosen:
        assert held[out.loc[k, "submission_id"]][0]["points"] == 0.5, k
        assert out.loc[k, "status"] == "conflict"


def _edit_after_early_reads(server: Any, token: str, plan: Plan, client: Any) -> dict[int, float]:
    """A teacher grades one row of each assignment the executor reads *early* (in its read thread,
    while a wave is written), right after that read: row_key → the points given (0.5)."""
    from gradesync.graph.urls import submissions_url

    rows = plan.rows.set_index("row_key")
    pairs = zip(plan.rows["class_id"], plan.rows["assignment_id"], strict=True)
    by_url = {submissions_url(c, a): (c, a) for c, a in pairs}
    edited: dict[int, float] = {}
    real = client.get_all_many

    def get_all_many(urls: Any) -> Any:
        urls = list(urls)
        pages = real(urls)
        if threading.current_thread().name.startswith("gradesync-read"):
            for url in urls:
                pair = by_url[url]
                k = min(int(k) for k, r in rows.iterrows() if (r.class_id, r.assignment_id) == pair)
                graph_patch(server, token, rows.loc[k], 0.5)
                edited[k] = 0.5
        return pages

    client.get_all_many = get_all_many
    return edited


@pytest.mark.parametrize("window", [20.0, 60.0])
def test_an_early_read_is_used_only_while_it_is_within_the_window(
    emulator: Any, token: str, tmp_path: Path, window: float
) -> None:
    """The next wave's stale assignments are read while this wave is written. When that wave is about
    to go, an early read older than the window (20 s: the waves are 25 s apart) is made again, so a
    grade changed after it is a conflict, never overwritten; one within the window (60 s) is used:
    each assignment is read once, and what Teams holds is reported either way."""
    plan = build_plan(emulator.state(), updates=96, creates=0, noops=0, rejects=0)
    pairs = set(zip(plan.rows["class_id"], plan.rows["assignment_id"], strict=True))
    clock = Clock()

    def tick(step: str, done: int, total: int) -> None:
        if step == "writing" and done:
            clock.t += STEP

    # waves of 40 (an assignment spans at most two, 25 s apart): within 60 s, no read is needed twice
    options = ApplyOptions(
        wave_size=40,
        read_write_window=timedelta(seconds=window),
        clock=clock,
    )
    emulator.reset_stats()
    with client_for(emulator, token, max_in_flight=1) as client, Journal.in_dir(tmp_path) as journal:
        edited = _edit_after_early_reads(emulator, token, plan, client)
        result = apply_plan(plan, client, journal=journal, options=options, progress=tick)
    assert len(edited) >= 3  # early reads were made
    held = points_outcomes_of(emulator.state())
    rows = result.rows.set_index("row_key")
    for k in edited:
        truth = held[rows.loc[k, "submission_id"]][0]["points"]
        assert rows.loc[k, "after_points"] == truth
        if window < STEP:
            assert truth == 0.5 and rows.loc[k, "status"] == "conflict", (k, "an edit was overwritten")
    per_page = emulator.stats()["config"]["page_size"]
    once = sum(-(-len(_subs(emulator, c, a)) // per_page) for c, a in pairs)
    reads = result.graph_stats["reads"]
    assert reads > once if window < STEP else reads == once


def test_the_next_waves_read_goes_while_this_wave_is_written(
    emulator: Any, token: str, tmp_path: Path
) -> None:
    """Overlap, shown with events (no timing): the second envelope of the first wave waits until the
    read of the next wave's assignments has started; a read made only between waves never would."""
    plan = build_plan(emulator.state(), updates=96, creates=0, noops=0, rejects=0)
    read_started = threading.Event()
    overlapped: list[bool] = []
    with client_for(emulator, token, max_in_flight=1) as client, Journal.in_dir(tmp_path) as journal:
        real_many, real_batch = client.get_all_many, client.batch

        def get_all_many(urls: Any) -> Any:
            if threading.current_thread().name.startswith("gradesync-read"):
                read_started.set()
            return real_many(urls)

        def batch(reqs: Any) -> Any:
            reqs = list(reqs)
            if not overlapped and any(r.method == "PATCH" for r in reqs) and calls:
                overlapped.append(read_started.wait(timeout=60))
            calls.append(len(reqs))
            return real_batch(reqs)

        calls: list[int] = []
        client.get_all_many, client.batch = get_all_many, batch
        options = ApplyOptions(wave_size=40)
        result = apply_plan(plan, client, journal=journal, options=options)
    assert overlapped == [True]
    assert status_counts(result) == {"updated": 96}
    assert_converged(emulator, plan)


def test_nothing_is_read_early_while_the_client_is_learning_the_pace(
    emulator: Any, token: str, tmp_path: Path
) -> None:
    """During the first burst the client sends one envelope at a time so that a 429 finds no other
    on its way: the executor keeps to that, its reads included (made before each wave, not during)."""
    plan = build_plan(emulator.state(), updates=96, creates=0, noops=0, rejects=0)
    threads: list[str] = []
    client = GraphClient(emulator.base_url, lambda: token, policy=FAST, rate_limit=RateLimit.graph())
    with client, Journal.in_dir(tmp_path) as journal:
        real = client.get_all_many

        def get_all_many(urls: Any) -> Any:
            threads.append(threading.current_thread().name)
            return real(urls)

        client.get_all_many = get_all_many  # type: ignore[method-assign]
        options = ApplyOptions(wave_size=40)
        result = apply_plan(plan, client, journal=journal, options=options)
    assert len(threads) >= 2 and not [t for t in threads if t.startswith("gradesync-read")]
    assert status_counts(result) == {"updated": 96}
