"""Each request is paced on the limit Graph counts it against ("Microsoft Graph service-specific
throttling limits"): classes, users and class members on the education rostering APIs' (35,000 per
10 s per app per tenant), assignments, submissions and outcomes on the assignment service's (350 per
10 s, 10,000 per hour). A run's rostering reads never spend the assignments budget."""

from __future__ import annotations

from typing import Any

import pytest

from gradesync.graph import GraphClient, RateLimit, RetryPolicy, SubRequest
from gradesync.graph.urls import (
    ASSIGNMENTS,
    ROSTERING,
    assignments_url,
    class_lookup_url,
    limit_kind,
    members_url,
    outcome_url,
    submissions_url,
)
from graph_emulator import ThrottleConfig

from .test_client_mock import batch_handler, make_client, ok


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        (class_lookup_url("SEC-1001", "externalId"), ROSTERING),
        (class_lookup_url("c1", "id"), ROSTERING),
        (members_url("c1"), ROSTERING),
        ("/education/users?$top=5", ROSTERING),
        ("https://graph.microsoft.com/v1.0/education/classes/c1/members?$skiptoken=x", ROSTERING),
        (assignments_url("c1"), ASSIGNMENTS),
        (submissions_url("c1", "a1"), ASSIGNMENTS),
        (outcome_url("c1", "a1", "s1", "o1"), ASSIGNMENTS),
        ("/education/classes/c1/assignments/a1/submissions/s1/excuse", ASSIGNMENTS),
    ],
)
def test_each_url_counts_against_one_limit(url: str, kind: str) -> None:
    assert limit_kind(url) == kind


def test_rostering_reads_do_not_spend_the_assignments_budget() -> None:
    handle, seen = batch_handler(lambda reqs, n: {"responses": [ok(r) for r in reqs]})
    limit = RateLimit(per_10s=20, per_hour=1000, rostering_per_10s=200)
    client, rec, clock = make_client(handle, rate_limit=limit, max_in_flight=1)
    client.batch([SubRequest(str(i), "GET", members_url(f"c{i}")) for i in range(200)])
    assert clock.sleeps == []  # 200 rostering reads: within their own bucket
    start = clock()
    client.batch([SubRequest(str(i), "GET", submissions_url("c", f"a{i}")) for i in range(20)])
    assert rec.times[-1] == start  # the assignments bucket is still full
    client.batch([SubRequest(str(i), "GET", submissions_url("c", f"b{i}")) for i in range(20)])
    assert rec.times[-1] == pytest.approx(start + 10.0)  # now it binds: 20 per 10 s
    assert client._limiters[ASSIGNMENTS].reserved == 40 and client._limiters[ROSTERING].reserved == 200
    assert len(seen) == 12


def test_a_mixed_envelope_counts_each_sub_request_on_its_own_limit() -> None:
    handle, _ = batch_handler(lambda reqs, n: {"responses": [ok(r) for r in reqs]})
    client, _, _ = make_client(handle, rate_limit=RateLimit.graph(), max_in_flight=1)
    mixed = [SubRequest(f"m{i}", "GET", members_url(f"c{i}")) for i in range(8)]
    mixed += [SubRequest(f"a{i}", "GET", assignments_url(f"c{i}")) for i in range(12)]
    client.batch(mixed)
    assert client._limiters[ROSTERING].reserved == 8 and client._limiters[ASSIGNMENTS].reserved == 12


def test_a_rostering_429_pauses_and_teaches_only_the_rostering_pacer() -> None:
    def answer(reqs: list[dict[str, Any]], n: int) -> dict[str, Any]:
        if n == 1:
            return {"responses": [ok(r, 429, headers={"Retry-After": "5"}, body=None) for r in reqs]}
        return {"responses": [ok(r) for r in reqs]}

    handle, _ = batch_handler(answer)
    client, rec, clock = make_client(handle, rate_limit=RateLimit.graph(), max_in_flight=1)
    client.batch([SubRequest("1", "GET", members_url("c1"))])
    assert rec.times[1] - rec.times[0] >= 5.0  # the throttled read waited its Retry-After
    assert client._limiters[ROSTERING].pacer.pause_until > client._limiters[ASSIGNMENTS].pacer.pause_until
    t0 = clock()
    client.batch([SubRequest("2", "GET", submissions_url("c1", "a1"))])
    assert rec.times[-1] == t0  # the assignment service's requests were never held back


def test_a_plan_under_a_tight_assignments_limit_reads_its_roster_without_a_429(
    emulator_factory: Any, token: str, sample_tenant: dict[str, Any]
) -> None:
    """The emulator enforces both limits and the client paces each: 120-odd pages of class members
    (one member a page) go at once, and the assignments listings after them are not held back by
    them — no 429, no wait."""
    srv = emulator_factory(throttle=ThrottleConfig(per_10s=30, per_hour=10_000), page_size=1)
    client = GraphClient(
        srv.base_url,
        lambda: token,
        rate_limit=RateLimit(per_10s=30, per_hour=10_000),
        policy=RetryPolicy(max_attempts=8, base_delay=0.01, max_delay=0.1),
        max_in_flight=1,
    )
    classes = [c["id"] for c in sample_tenant["classes"]]
    rostering = [members_url(c) for c in classes] + [class_lookup_url(c, "id") for c in classes]
    with client:
        client.get_all_many(rostering).raise_first_error()
        reads = client.get_all_many([assignments_url(c) for c in classes])
    reads.raise_first_error()
    stats = srv.stats()
    assert stats["throttled"] == 0 and client.stats.wait_seconds == 0
    assert client._limiters[ROSTERING].reserved > 100  # well past the assignments limit of 30
    assert client._limiters[ASSIGNMENTS].reserved == sum(
        n for route, n in stats["by_route"].items() if "/assignments" in route
    )
