"""Pure retry arithmetic: Retry-After forms, full-jitter backoff, budgets, and the rate limiter."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gradesync.errors import GraphError, TerminalGraphError, TransientGraphError
from gradesync.graph import RateLimit, RateLimiter, RetryPolicy, backoff, next_wait, parse_retry_after
from gradesync.graph.engine import RetryEngine

from .helpers import FakeClock

NOW = datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("3", 3.0),
        (" 3 ", 3.0),
        ("0", 0.0),
        ("0.249", 0.249),
        ("2.128", 2.128),
        ("30,120", 30.0),
        ("0.25, 120", 0.25),
        ("Wed, 01 May 2024 10:00:07 GMT", 7.0),
        ("Wed, 01 May 2024 09:59:00 GMT", 0.0),  # a date in the past: go now
        (None, None),
        ("", None),
        ("soon", None),
        ("-5", None),
        ("nan", None),
        ("inf", None),
        ("Wed, 99 Foo 2024 99:99:99 GMT", None),
        (",", None),
    ],
)
def test_parse_retry_after_forms(value, expected):
    got = parse_retry_after(value, now=NOW)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected)


def test_parse_retry_after_http_date_naive_now_is_utc():
    when = (NOW + timedelta(seconds=90)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert parse_retry_after(when, now=NOW.replace(tzinfo=None)) == pytest.approx(90.0)


@given(st.text(max_size=40))
def test_parse_retry_after_never_crashes(value):
    got = parse_retry_after(value, now=NOW)
    assert got is None or got >= 0


def test_backoff_is_full_jitter_doubling_then_capped():
    policy = RetryPolicy(base_delay=0.5, max_delay=4.0)
    rng = random.Random(1)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 4.0), (60, 4.0), (500, 4.0)]:
        waits = [backoff(attempt, policy, rng) for _ in range(400)]
        assert all(0.0 <= w <= ceiling for w in waits)
        # full jitter: the draws spread over the whole interval, not just near its top
        assert min(waits) < ceiling * 0.1
        assert max(waits) > ceiling * 0.9


def test_backoff_is_a_pure_function_of_attempt_and_rng():
    policy = RetryPolicy()
    a = [backoff(n, policy, random.Random(7)) for n in range(1, 10)]
    b = [backoff(n, policy, random.Random(7)) for n in range(1, 10)]
    assert a == b
    with pytest.raises(ValueError, match="attempt"):
        backoff(0, policy, random.Random(0))


def test_next_wait_honours_retry_after_even_above_max_delay():
    policy = RetryPolicy(max_delay=1.0, max_total_seconds=100)
    assert (
        next_wait(attempts_made=1, elapsed=0, retry_after=30.0, policy=policy, rng=random.Random(0)) == 30.0
    )


def test_next_wait_stops_at_the_attempt_budget():
    policy = RetryPolicy(max_attempts=3)
    rng = random.Random(0)
    assert next_wait(attempts_made=2, elapsed=0, retry_after=None, policy=policy, rng=rng) is not None
    assert next_wait(attempts_made=3, elapsed=0, retry_after=None, policy=policy, rng=rng) is None
    assert next_wait(attempts_made=3, elapsed=0, retry_after=0.1, policy=policy, rng=rng) is None


def test_next_wait_stops_when_waiting_would_cross_the_time_budget():
    policy = RetryPolicy(max_attempts=100, max_total_seconds=10)
    rng = random.Random(0)
    assert next_wait(attempts_made=1, elapsed=9.0, retry_after=0.5, policy=policy, rng=rng) == 0.5
    assert next_wait(attempts_made=1, elapsed=9.0, retry_after=2.0, policy=policy, rng=rng) is None


def test_retry_policy_validates():
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="negative"):
        RetryPolicy(base_delay=-1)


def test_rate_limiter_allows_a_burst_then_the_bucket_rate():
    """A bucket of 350 refilling at 35/s: 17 envelopes of 20 at once, then one every 20/35 s."""
    clock = FakeClock()
    limiter = RateLimiter(RateLimit(per_10s=350, per_hour=10_000), clock=clock, sleep=clock.sleep)
    for _ in range(17):
        assert limiter.acquire(20) == 0.0  # 340 of the 350 burst
    assert limiter.acquire(20) == pytest.approx(10 / 35)  # 10 tokens left: wait for 10 more
    for _ in range(200):
        limiter.acquire(20)
    # 218 x 20 = 4,360 requests: the burst, then 35 a second (no stall at a window's edge)
    assert clock.now - 1000.0 == pytest.approx((4_360 - 350) / 35)


def test_rate_limiter_also_satisfies_a_token_bucket_server():
    """A stream within every window never empties a bucket of the same size and refill rate."""
    clock = FakeClock()
    rng = random.Random(5)
    limiter = RateLimiter(RateLimit(per_10s=40, per_hour=10_000), clock=clock, sleep=clock.sleep)
    level, updated = 40.0, clock.now
    for _ in range(2_000):
        clock.sleep(rng.random() * 0.2)  # the caller is sometimes idle
        n = rng.randint(1, 20)
        limiter.acquire(n)
        level = min(40.0, level + (clock.now - updated) * 4.0)
        updated = clock.now
        level -= n
        assert level >= -1e-9


def test_rate_limiter_hourly_bucket_binds_after_the_short_one_without_an_hour_stall():
    clock = FakeClock()
    limiter = RateLimiter(RateLimit(per_10s=350, per_hour=10_000), clock=clock, sleep=clock.sleep)
    for _ in range(500):  # 10,000 requests: the short bucket binds (the hourly one refills meanwhile)
        limiter.acquire(20)
    assert clock.now - 1000.0 == pytest.approx((10_000 - 350) / 35)
    for _ in range(100):  # 2,000 more: now the hourly bucket's 2.78/s binds — not a wait of an hour
        limiter.acquire(20)
    assert clock.now - 1000.0 == pytest.approx(2_000 / (10_000 / 3600))


def test_rate_limiter_off_never_waits_and_refuses_impossible_requests():
    clock = FakeClock()
    limiter = RateLimiter(RateLimit.off(), clock=clock, sleep=clock.sleep)
    assert all(limiter.acquire(20) == 0 for _ in range(10_000))
    assert clock.sleeps == []
    with pytest.raises(ValueError, match="exceed"):
        RateLimiter(RateLimit(per_10s=10), clock=clock, sleep=clock.sleep).acquire(20)
    with pytest.raises(ValueError, match="positive"):
        RateLimit(per_10s=0)


# --- the engine (tenacity's Retrying with our wait, stop and hook) ------------------------------
def _engine(clock: FakeClock, policy: RetryPolicy | None = None) -> RetryEngine:
    return RetryEngine(policy or RetryPolicy(), clock=clock, sleep=clock.sleep, rng=random.Random(1))


def _throttled(retry_after: float | None = None) -> TransientGraphError:
    return TransientGraphError("429", status=429, retry_after=retry_after)


def test_engine_retries_the_transient_failures_only_and_reports_each_round() -> None:
    """A 429 is sent again; a 400 is final at once; the hook hears of every retry round."""
    clock = FakeClock()
    rounds: list[list[str]] = []
    heard: list[tuple[int, int]] = []

    def send_round(keys: list[str], attempt: int) -> dict[str, GraphError]:
        rounds.append(list(keys))
        out: dict[str, GraphError] = {}
        if attempt == 1:
            out = {"a": _throttled(), "b": TerminalGraphError("400", status=400)}
        return out

    hook = lambda n, w, e: heard.append((n, len(e)))  # noqa: E731
    final = _engine(clock).run(["a", "b", "c"], send_round, on_retry=hook)
    assert rounds == [["a", "b", "c"], ["a"]]
    assert list(final) == ["b"]
    assert heard == [(1, 1)] and len(clock.sleeps) == 1  # backoff slept (no Retry-After given)


def test_engine_leaves_a_retry_after_to_the_pacer_and_never_waits_past_the_deadline() -> None:
    """With a Retry-After the engine sleeps nothing itself (the client's pacer pauses the whole
    scope); a wait that would end after the caller's deadline is not started: the failure is final."""
    clock = FakeClock()
    calls: list[int] = []

    def send_round(keys: list[str], attempt: int) -> dict[str, GraphError]:
        calls.append(attempt)
        return {"a": _throttled(retry_after=3.0)}

    left = [10.0]
    final = _engine(clock).run(["a"], send_round, time_left=lambda: left[0] - len(calls) * 4.0)
    # round 1: 6 s left > 3 s wait → again; round 2: 2 s left < 3 s → stop, nothing slept meanwhile
    assert calls == [1, 2] and clock.sleeps == []
    assert isinstance(final["a"], TransientGraphError) and final["a"].retry_after == 3.0


def test_engine_stops_at_the_attempt_budget() -> None:
    clock = FakeClock()
    policy = RetryPolicy(max_attempts=3, base_delay=0.1, max_delay=0.1, max_total_seconds=60)
    final = _engine(clock, policy).run(["a"], lambda keys, n: {"a": _throttled()})
    assert "a" in final and len(clock.sleeps) == 2


def _unavailable() -> TransientGraphError:
    return TransientGraphError("503", status=503)


def test_engine_per_key_a_failing_key_waits_alone_while_the_others_go_on() -> None:
    """run_each: "a" fails twice (503, no Retry-After) and waits its own backoff each time; "b" has
    three parts (a listing's pages) and sends the next one at once after each answer — it is done
    before "a" is sent the third time. Each key's attempt count is its own."""
    clock = FakeClock()
    policy = RetryPolicy(max_attempts=5, base_delay=1.0, max_delay=1.0, max_total_seconds=60)
    rounds: list[dict[str, int]] = []
    left = {"b": 3}

    def send_round(keys: list[str], attempts: Any) -> tuple[dict[str, GraphError], set[str]]:
        rounds.append({k: attempts[k] for k in keys})
        failures: dict[str, GraphError] = {}
        more: set[str] = set()
        for k in keys:
            if k == "a" and attempts[k] <= 2:
                failures[k] = _unavailable()
            elif k == "b":
                left["b"] -= 1
                if left["b"]:
                    more.add("b")
        return failures, more

    final = _engine(clock, policy).run_each(["a", "b"], send_round)
    assert final == {}
    assert rounds[0] == {"a": 1, "b": 1} and rounds[1] == {"b": 1} and rounds[2] == {"b": 1}
    assert [r for r in rounds if "a" in r] == [{"a": 1, "b": 1}, {"a": 2}, {"a": 3}]
    assert len(clock.sleeps) == 2  # only "a" waited, twice


def test_engine_per_key_stops_a_key_at_its_budget_and_never_waits_past_the_deadline() -> None:
    """A key that keeps failing is final after its attempts; a wait that would end past the
    caller's deadline is not started (the key's last failure is final) and nothing is slept."""
    clock = FakeClock()
    policy = RetryPolicy(max_attempts=3, base_delay=0.1, max_delay=0.1, max_total_seconds=60)
    final = _engine(clock, policy).run_each(["a"], lambda keys, n: ({"a": _unavailable()}, set()))
    assert final["a"].status == 503 and len(clock.sleeps) == 2
    clock = FakeClock()
    slow = RetryPolicy(max_attempts=5, base_delay=8.0, max_delay=8.0, max_total_seconds=60)
    engine = RetryEngine(slow, clock=clock, sleep=clock.sleep, rng=random.Random(2))
    sent: list[str] = []

    def send(keys: list[str], attempts: Any) -> tuple[dict[str, GraphError], set[str]]:
        sent.extend(keys)
        return {"a": _unavailable()}, set()

    final = engine.run_each(["a"], send, time_left=lambda: 0.01)
    assert sent == ["a"] and clock.sleeps == [] and final["a"].status == 503
