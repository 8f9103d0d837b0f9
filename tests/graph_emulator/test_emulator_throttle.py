"""Throttling of single requests: both buckets, Retry-After, refill, off, formats; the rostering
limit apart from the assignments one.

Most tests read a class's assignments: the assignment service's limits (350 per 10 s, 10,000 per
hour) apply to them; the classes listing counts against the education rostering limit instead."""

from __future__ import annotations

import httpx
import pytest
from emulator_testkit import FakeClock, client

from graph_emulator import ThrottleConfig
from graph_emulator.throttle import format_retry_after


def assignments(srv) -> str:
    """A path the assignment service's limits apply to: the first class's assignments."""
    return f"/education/classes/{srv.state()['classes'][0]['id']}/assignments"


def test_short_window_bucket_and_refill(emulator_factory):
    clock = FakeClock()
    srv = emulator_factory(throttle=ThrottleConfig(per_10s=3, per_hour=1000, short_window=1.0), clock=clock)
    path = assignments(srv)
    with client(srv) as http:
        ok = [http.get(path).status_code for _ in range(3)]
        limited = http.get(path)
        ra = float(limited.headers["Retry-After"])
        clock.advance(ra)
        after = http.get(path)
    assert ok == [200, 200, 200]
    assert limited.status_code == 429 and limited.json()["error"]["code"] == "tooManyRequests"
    assert 0 < ra <= 1.0 / 3 + 0.001
    assert after.status_code == 200
    st = srv.stats()
    assert st["throttled"] == 1 and st["early_retries"] == 0 and st["graph_requests"] == 5


def test_hour_bucket_limits_too(emulator_factory):
    clock = FakeClock()
    srv = emulator_factory(throttle=ThrottleConfig(per_10s=100, per_hour=4), clock=clock)
    path = assignments(srv)
    with client(srv) as http:
        statuses = [http.get(path).status_code for _ in range(5)]
        ra = float(http.get(path).headers["Retry-After"])
    assert statuses == [200, 200, 200, 200, 429]
    assert ra > 100  # the hourly budget refills slowly: 3600 s / 4
    assert srv.stats()["early_retries"] == 1  # the sixth came before the fifth's Retry-After


def test_scope_is_the_token_and_401_costs_nothing(emulator_factory):
    clock = FakeClock()
    srv = emulator_factory(throttle=ThrottleConfig(per_10s=1, per_hour=100, short_window=10.0), clock=clock)
    path = assignments(srv)
    with client(srv) as http:
        assert http.get(path).status_code == 200
        assert httpx.get(srv.base_url + path).status_code == 401
        assert http.get(path).status_code == 429


def test_graph_defaults_and_off():
    g = ThrottleConfig.graph()
    assert (g.per_10s, g.per_hour, g.enabled) == (350, 10_000, True)
    assert not ThrottleConfig.off().enabled
    assert ThrottleConfig.from_value({"per_10s": 5}).per_10s == 5


def test_throttle_off_lets_bursts_through(emulator, sample_tenant):
    with client(emulator) as http:
        assert {http.get("/education/classes").status_code for _ in range(40)} == {200}
    assert emulator.stats()["throttled"] == 0


def test_retry_after_forms():
    assert format_retry_after(0.249) == "0.249"
    assert format_retry_after(0.2491) == "0.25"  # rounded up: waiting exactly this long is never early
    assert format_retry_after(3) == "3"
    assert format_retry_after(0) == "0.001"
    assert format_retry_after(2.1, "seconds") == "3"
    assert format_retry_after(0.25, "list") == "0.25,1"


def test_limit_below_published_that_changes_during_the_run(emulator_factory):
    clock = FakeClock()
    spec = "per_10s=4,per_hour=1000,change_after_requests=6,then_per_10s=2"
    srv = emulator_factory(throttle=ThrottleConfig.parse(spec), clock=clock)
    path = assignments(srv)
    with client(srv) as http:
        first = [http.get(path).status_code for _ in range(5)]  # 4 pass, the 5th is 429
        clock.advance(10)  # buckets full again; request 6 on uses the lower limit (2 per 10 s)
        later = [http.get(path).status_code for _ in range(3)]
        early = http.get(path)  # inside the Retry-After window: an early retry
    assert first == [200, 200, 200, 200, 429] and later == [200, 200, 429] and early.status_code == 429
    st = srv.stats()
    assert st["throttle_state"] == {"requests_seen": 9, "changed": True, "per_10s": 2, "per_hour": 1000}
    assert st["early_retries"] == 1 and st["throttled"] == 3
    assert st["config"]["throttle"]["then_per_10s"] == 2


def test_throttle_settings_are_checked():
    with pytest.raises(ValueError, match="unknown throttle"):
        ThrottleConfig.from_value({"per_10": 3})
    with pytest.raises(ValueError, match="at least 1"):
        ThrottleConfig.parse("per_10s=0")
