"""The pacer's pure arithmetic (graph/pacing.py) on an injected clock: buckets, learning, pauses."""

from __future__ import annotations

import math
import random

import pytest

from gradesync.graph import RateLimit, RateLimiter
from gradesync.graph.pacing import Pacer

from .helpers import FakeClock


class ServerBucket:
    """Graph's side as the emulator models it: a bucket per scope; a 429 blocks the scope until a
    token is back, and a request arriving while blocked is an *early* one."""

    def __init__(self, per_10s: float, window: float = 10.0) -> None:
        self.capacity, self.rate = per_10s, per_10s / window
        self.level, self.updated = per_10s, 0.0
        self.blocked_until = -math.inf
        self.early = 0

    def handle(self, now: float, n: int) -> tuple[int, float | None]:
        """(sub-requests admitted of ``n`` sent at ``now``, the Retry-After if any was throttled)."""
        self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
        self.updated = now
        if now < self.blocked_until:
            self.early += n
            return 0, self.blocked_until - now
        admitted = min(n, int(self.level + 1e-9))
        self.level -= admitted
        if admitted == n:
            return n, None
        retry_after = (1.0 - self.level) / self.rate
        self.blocked_until = now + retry_after
        return admitted, retry_after


def drive(pacer: Pacer, server: ServerBucket, seconds: float, n: int = 20) -> list[tuple[float, int]]:
    """One envelope at a time (no concurrency): reserve, send, learn. Returns (time, admitted)."""
    log: list[tuple[float, int]] = []
    now = 0.0
    while now < seconds:
        now = pacer.reserve(now, n)
        admitted, retry_after = server.handle(now, n)
        log.append((now, admitted))
        if admitted < n:
            pacer.throttled(now, n - admitted, retry_after)
    return log


def admitted_per_second(log: list[tuple[float, int]], start: float, end: float) -> float:
    return sum(a for t, a in log if start <= t < end) / (end - start)


def test_at_the_published_limit_the_buckets_never_overrun_graph():
    pacer, server = Pacer(RateLimit.graph(), 0.0), ServerBucket(350)
    log = drive(pacer, server, 300.0)
    assert all(a == 20 for _, a in log)  # not one 429
    assert admitted_per_second(log, 20.0, 300.0) == pytest.approx(35.0, rel=0.02)
    assert pacer.episodes == 0 and pacer.rate == 35.0


@pytest.mark.parametrize("fraction", [0.5, 0.3])
def test_a_tenant_throttled_below_the_published_limit_settles_just_under_its_real_limit(fraction):
    limit = 350 * fraction
    pacer, server = Pacer(RateLimit.graph(), 0.0), ServerBucket(limit)
    log = drive(pacer, server, 600.0)
    real = limit / 10.0
    steady = admitted_per_second(log, 100.0, 600.0)
    assert 0.9 * real <= steady <= 1.01 * real
    assert server.early == 0  # nothing sent inside a Retry-After window
    throttled = sum(20 - a for _, a in log)  # the price of probing: some 429s (no quota, none early)
    assert throttled < 0.08 * sum(20 for _ in log)
    assert pacer.rate <= 35.0


def test_the_pace_creeps_back_up_to_the_ceiling_but_never_above():
    pacer = Pacer(RateLimit.graph(), 0.0)
    for _ in range(17):
        pacer.reserve(0.0, 20)  # 340 in the first second
    assert not pacer.throttled(1.0, 6, retry_after=0.5)  # 6 < 2% of 350: a stray 429, only a pause
    assert pacer.throttled(1.6, 30, retry_after=0.5)
    low = pacer.rate
    assert low == pytest.approx(0.85 * (340 - 36) / 10)  # 0.85 x what Graph admitted per second
    pacer.reserve(3.0, 1)
    assert low < pacer.rate < 35.0
    pacer.reserve(400.0, 1)  # increase: 0.5% of the ceiling per second, capped at the ceiling
    assert pacer.rate == 35.0


def test_429s_of_one_episode_lower_the_pace_once_and_never_below_the_floor():
    pacer = Pacer(RateLimit.graph(), 0.0)
    pacer.reserve(0.0, 20)
    assert pacer.throttled(0.5, 20, retry_after=1.0)
    assert not pacer.throttled(0.6, 20, retry_after=1.0)  # in flight before the first came back
    assert pacer.episodes == 1
    assert pacer.rate == pytest.approx(RateLimit.graph().floor * 35.0)  # Graph admitted nothing: the floor


def test_stray_429s_only_pause():
    rng = random.Random(1)
    pacer, now = Pacer(RateLimit.graph(), 0.0), 0.0
    for _ in range(500):  # one sub-request in 200 is answered 429, whatever the pace
        now = pacer.reserve(now + 0.05, 20)
        if throttled := sum(rng.random() < 0.005 for _ in range(20)):
            pacer.throttled(now, throttled, retry_after=0.2)
    assert pacer.episodes == 0
    assert 20 * 500 / now > 0.9 * 35


def test_a_retry_after_holds_back_every_reservation_until_it_has_passed():
    pacer = Pacer(RateLimit.graph(), 0.0)
    pacer.pause(1.0, 4.0)
    assert pacer.reserve(1.5, 1) == 5.0
    fixed = Pacer(RateLimit(adaptive=False), 0.0)
    fixed.throttled(1.0, 20, retry_after=2.0)
    assert fixed.rate == 35.0 and fixed.reserve(1.0, 20) == 3.0  # not learning; paused
    fixed.throttled(4.0, 20, retry_after=0.1)  # the bucket is emptied: 20 tokens take 20/35 s
    assert fixed.reserve(4.0, 20) == pytest.approx(4.0 + 20 / 35)


def test_a_pause_that_arrives_while_an_envelope_waits_its_turn_holds_it_too():
    clock = FakeClock()
    limiter = RateLimiter(RateLimit(per_10s=20, short_window=1.0), clock=clock, sleep=clock.sleep)
    limiter.acquire(20)  # the bucket is empty now: the next envelope waits 1 s for its tokens

    def sleep(seconds: float) -> None:
        if not clock.sleeps:
            limiter.pause(5.0)  # a Retry-After comes back from another envelope meanwhile
        clock.sleep(seconds)

    limiter._sleep = sleep
    waited = limiter.acquire(20)
    assert clock.now - 1000.0 == pytest.approx(5.0) and waited == pytest.approx(5.0)


def test_limits_off_still_honour_retry_after():
    clock = FakeClock()
    limiter = RateLimiter(RateLimit.off(), clock=clock, sleep=clock.sleep)
    limiter.throttled(1, retry_after=3.0)
    assert limiter.acquire(20) == pytest.approx(3.0)
    assert limiter.rate == 35.0  # off: nothing learnt


def test_rate_limit_validates_its_learning_knobs():
    with pytest.raises(ValueError, match="decrease"):
        RateLimit(decrease=1.0)
    with pytest.raises(ValueError, match="floor"):
        RateLimit(floor=0.0)


def test_sporadic_429s_among_many_requests_pause_but_do_not_lower_the_pace() -> None:
    """A flaky Graph answers a few requests in a hundred 429 (a fault, not a limit): the pacer pauses
    for each Retry-After but keeps its pace; a limit below the published one answers 429 to most
    of what is sent above it, and the pace is lowered."""
    pacer = Pacer(RateLimit(), 0.0)
    now = 0.0
    for i in range(300):  # 300 requests in ~8.6 s, one in twenty answered 429 (15 of them)
        now = pacer.reserve(now, 1)
        if i % 20 == 19:
            assert not pacer.throttled(now, 1, 0.1)
    assert pacer.rate == RateLimit().ceiling
    for _ in range(40):  # now most requests are throttled: a real limit
        now = pacer.reserve(now, 1)
        pacer.throttled(now, 1, None)
    assert pacer.rate < RateLimit().ceiling


def test_a_stray_429_is_paused_for_but_leaves_the_bucket_and_the_pace_alone() -> None:
    """Graph answers one sub-request of an envelope 429 (Retry-After 0.1 s) after 60 requests went
    through: a hiccup, not a limit. The next envelope waits for the Retry-After only — not for a
    bucket's refill (20 tokens at 35 a second) — and the pace stays at the ceiling. A limit
    answers 429 to a whole envelope: that one empties the bucket and lowers the pace."""
    pacer = Pacer(RateLimit.graph(), 0.0)
    for _ in range(3):
        pacer.reserve(0.0, 20)
    assert not pacer.throttled(1.0, 1, retry_after=0.1)
    assert pacer.reserve(1.0, 20) == pytest.approx(1.1)  # the pause, and the tokens that were there
    assert pacer.rate == RateLimit.graph().ceiling
    assert pacer.throttled(1.2, 20, retry_after=0.1)  # a whole envelope: throttling
    assert pacer.rate < RateLimit.graph().ceiling
    assert pacer.reserve(1.4, 20) > 1.4 + 0.5  # the bucket was emptied: the tokens refill first


def test_a_few_429s_early_in_a_run_do_not_cut_the_pace_to_what_little_was_sent() -> None:
    """Early in a run little has been sent (reads in rounds, retries): eight 429s scattered over the
    first 4 s among 85 requests are Graph's hiccups. Counted as a limit, they would cut the pace to
    0.85 x 77 admitted / 10 s = 6.5 a second and hold the whole run at that pace."""
    pacer, now = Pacer(RateLimit.graph(), 0.0), 0.0
    for i in range(17):
        now = pacer.reserve(i * 0.25, 5)
        if i % 2 == 1:
            pacer.throttled(now, 1, retry_after=0.1)
    assert pacer.episodes == 0 and pacer.rate == RateLimit.graph().ceiling
