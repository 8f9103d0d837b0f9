"""The GraphClient against the emulator over real HTTP on 127.0.0.1 (throttling and faults seeded).

The emulator's throttle runs on real time, so these tests really sleep — only the tiny
Retry-Afters and backoffs configured here — and record every wait.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from gradesync.errors import AuthError, TerminalGraphError
from gradesync.graph import GraphClient, RateLimit, RetryPolicy, SubRequest
from graph_emulator import FaultConfig, ThrottleConfig

from .helpers import (
    RecordingSleep,
    create_targets,
    patch_targets,
    points_body,
    points_in_state,
    points_outcome_count,
)

FAST = RetryPolicy(max_attempts=12, base_delay=0.01, max_delay=0.05, max_total_seconds=30)


def client_for(srv: Any, token: str, **kw: Any) -> GraphClient:
    kw.setdefault("rate_limit", RateLimit.off())
    kw.setdefault("policy", FAST)
    kw.setdefault("sleep", RecordingSleep())
    return GraphClient(srv.base_url, lambda: token, **kw)


def test_get_all_follows_next_links(emulator, token):
    emulator.configure(page_size=3)
    with client_for(emulator, token) as client:
        classes = client.get_all("/education/classes", params={"$select": "id,externalId"})
        assert sorted(c["externalId"] for c in classes) == ["SEC-1001", "SEC-1002", "SEC-1003", "SEC-1004"]
        assert client.stats.http_requests == 2 == emulator.stats()["http_requests"]
        one = client.get(f"/education/classes/{classes[0]['id']}")
        assert one["id"] == classes[0]["id"]


def test_get_all_many_reads_every_page_with_the_exact_number_of_requests(emulator, token, sample_tenant):
    page_size = 4
    emulator.configure(page_size=page_size)
    urls = []
    for cls in sample_tenant["classes"]:
        cid = cls["id"]
        urls += [f"/education/classes/{cid}/members", f"/education/classes/{cid}/assignments"]
        urls += [
            f"/education/classes/{cid}/assignments/{a['id']}/submissions?$expand=outcomes"
            for a in cls["assignments"]
        ]
    gone = "/education/classes/00000000-0000-0000-0000-000000000000/assignments"
    urls.append(gone)
    assert len(urls) > 20  # the first round alone needs two envelopes

    # the truth, one collection at a time
    with client_for(emulator, token) as plain:
        truth = {u: plain.get_all(u) for u in urls if u != gone}
    emulator.reset_stats()

    with client_for(emulator, token, max_in_flight=3) as client:
        got = client.get_all_many(urls)
    assert got == truth
    assert set(got.errors) == {gone}
    assert got.errors[gone].status == 404 and got.errors[gone].code == "graph-not-found"
    assert got.errors[gone].request_id

    pages = [max(1, math.ceil(len(items) / page_size)) for items in truth.values()] + [1]
    assert max(pages) >= 3
    rounds = [sum(1 for p in pages if p >= r) for r in range(1, max(pages) + 1)]
    expected_batches = sum(math.ceil(n / 20) for n in rounds)

    server = emulator.stats()
    stats = client.stats.asdict()
    assert stats["sub_requests"] == sum(pages) == server["batch_subrequests"] == server["graph_requests"]
    assert stats["batches"] == expected_batches == server["batches"] == server["http_requests"]
    assert stats["http_requests"] == server["http_requests"]
    assert stats["by_method"] == {"GET": sum(pages)} == server["by_method"]
    assert stats["retries"] == 0 and stats["throttled"] == 0


def test_twenty_patches_under_a_tight_throttle_converge_with_no_early_retry(
    emulator_factory, token, sample_tenant
):
    srv = emulator_factory(throttle=ThrottleConfig(per_10s=4, short_window=0.4))  # 10 per second, burst 4
    targets = list(patch_targets(sample_tenant))[:20]
    sleep = RecordingSleep()
    policy = RetryPolicy(max_attempts=40, base_delay=0.01, max_delay=0.05, max_total_seconds=30)
    with client_for(srv, token, sleep=sleep, policy=policy) as client:
        out = client.batch(
            [SubRequest(str(i), "PATCH", url, points_body(i + 0.5)) for i, (url, _) in enumerate(targets)]
        )
    assert all(r.ok for r in out.values()), [r.error for r in out.values() if not r.ok]
    state = points_in_state(srv.state())
    assert [state[oid] for _, oid in targets] == [i + 0.5 for i in range(20)]

    server = srv.stats()
    assert server["throttled"] > 0
    assert server["early_retries"] == 0  # every re-batch waited for the scope's Retry-After
    assert client.stats.throttled == server["throttled"]
    assert client.stats.sub_requests == server["batch_subrequests"] == 20 + client.stats.retries
    assert max(r.attempts for r in out.values()) > 1
    assert sleep.sleeps and all(s > 0 for s in sleep.sleeps)
    assert server["writes_applied"] == 20


def test_the_client_side_rate_limiter_keeps_429s_away(emulator_factory, token, sample_tenant):
    srv = emulator_factory(throttle=ThrottleConfig(per_10s=40, short_window=1.0))  # 40 per second
    targets = list(patch_targets(sample_tenant))[:70]
    limit = RateLimit(per_10s=36, short_window=1.0)  # a little under the server's limit
    with client_for(srv, token, rate_limit=limit, max_in_flight=1) as client:
        out = client.batch(
            [SubRequest(str(i), "PATCH", u, points_body(1.0)) for i, (u, _) in enumerate(targets)]
        )
    assert all(r.ok for r in out.values())
    assert srv.stats()["throttled"] == 0 == client.stats.throttled
    assert client.stats.wait_seconds > 0.5  # it paced itself instead


@pytest.mark.parametrize("seed", [1, 2])
def test_whole_batch_429_503_504_are_retried(emulator_factory, token, sample_tenant, seed):
    faults = FaultConfig(
        seed=seed,
        rate_429=0.15,
        rate_429_no_ra=0.1,
        rate_503=0.15,
        rate_504=0.1,
        scope="http",
        retry_after=0.05,
    )
    srv = emulator_factory(faults=faults, page_size=10)
    targets = list(patch_targets(sample_tenant))[:60]
    # one envelope in flight: envelopes sent concurrently *before* a 429 arrives would reach the
    # blocked scope early through no fault of the client; after it arrives, nothing is sent early
    with client_for(srv, token, max_in_flight=1) as client:
        out = client.batch(
            [SubRequest(str(i), "PATCH", u, points_body(2.0)) for i, (u, _) in enumerate(targets)]
        )
        listed = client.get_all_many(
            [f"/education/classes/{c['id']}/members" for c in sample_tenant["classes"]]
        )
    assert all(r.ok for r in out.values())
    assert all(points_in_state(srv.state())[oid] == 2.0 for _, oid in targets)
    assert all(
        len(v) == len(c["members"]) for v, c in zip(listed.values(), sample_tenant["classes"], strict=True)
    )
    server = srv.stats()
    assert sum(server["faults"].values()) > 0
    assert client.stats.transient_errors == sum(server["faults"].values())
    assert client.stats.throttled == server["throttled"]
    assert server["early_retries"] == 0
    assert client.stats.http_requests == server["http_requests"]


def test_dropped_connections_are_retried_for_patches(emulator_factory, token, sample_tenant):
    srv = emulator_factory(faults=FaultConfig(seed=5, rate_drop=0.4, scope="http"))
    targets = list(patch_targets(sample_tenant))[:100]
    with client_for(srv, token) as client:
        out = client.batch(
            [SubRequest(str(i), "PATCH", u, points_body(3.0)) for i, (u, _) in enumerate(targets)]
        )
    assert srv.stats()["faults"].get("drop", 0) > 0
    assert all(r.ok for r in out.values())
    assert all(points_in_state(srv.state())[oid] == 3.0 for _, oid in targets)
    assert client.stats.retries > 0


def test_timeouts_on_slow_answers_are_retried(emulator_factory, token, sample_tenant):
    srv = emulator_factory(faults=FaultConfig(seed=11, rate_slow=0.3, slow_seconds=2.0, scope="http"))
    targets = list(patch_targets(sample_tenant))[:30]
    with client_for(srv, token, timeout=0.3) as client:
        out = client.batch(
            [SubRequest(str(i), "PATCH", u, points_body(4.0)) for i, (u, _) in enumerate(targets)]
        )
        classes = client.get_all("/education/classes")
    assert srv.stats()["faults"].get("slow", 0) > 0
    assert all(r.ok for r in out.values()) and len(classes) == 4
    assert all(points_in_state(srv.state())[oid] == 4.0 for _, oid in targets)


def test_post_applied_then_error_is_fate_unknown_and_never_resent(emulator_factory, token, sample_tenant):
    srv = emulator_factory(faults=FaultConfig(seed=3, rate_applied_error=1.0, scope="sub"))
    url, sid = next(create_targets(sample_tenant))
    assert points_outcome_count(srv.state(), sid) == 0
    with client_for(srv, token) as client:
        out = client.batch([SubRequest("c", "POST", url, points_body(7.0))])
    r = out["c"]
    assert r.fate_unknown and r.attempts == 1 and r.status in (429, 500, 503, 504)
    assert r.error is not None and r.error.retryable
    server = srv.stats()
    assert server["by_method"] == {"POST": 1} and server["writes_applied"] == 1
    assert points_outcome_count(srv.state(), sid) == 1  # applied once, no duplicate
    assert client.stats.fate_unknown == 1


def test_post_in_a_dropped_envelope_is_fate_unknown_while_its_patch_is_retried(
    emulator_factory, token, sample_tenant
):
    srv = emulator_factory(faults=FaultConfig(seed=4, rate_drop=1.0, scope="http"))
    url, sid = next(create_targets(sample_tenant))
    patch_url, oid = next(patch_targets(sample_tenant))
    policy = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02)
    with client_for(srv, token, policy=policy) as client:
        out = client.batch(
            [
                SubRequest("c", "POST", url, points_body(6.0)),
                SubRequest("p", "PATCH", patch_url, points_body(5.0)),
            ]
        )
    assert out["c"].fate_unknown and out["c"].attempts == 1
    assert out["c"].error.code == "graph-connection-dropped"
    # every envelope was cut, so the PATCH ends with the error after its attempts — but it was applied
    assert not out["p"].ok and not out["p"].fate_unknown and out["p"].attempts == 3
    server = srv.stats()
    assert server["by_method"] == {"POST": 1, "PATCH": 3}
    assert points_outcome_count(srv.state(), sid) == 1
    assert points_in_state(srv.state())[oid] == 5.0


def test_terminal_errors_keep_graphs_codes_and_request_id(emulator, token, sample_tenant):
    patch_url, _ = next(patch_targets(sample_tenant))
    create_url, _ = next(create_targets(sample_tenant))
    with client_for(emulator, token) as client:
        out = client.batch(
            [
                SubRequest("neg", "PATCH", patch_url, points_body(-1.0)),
                SubRequest("missing", "PATCH", patch_url.rsplit("/", 1)[0] + "/nope", points_body(1.0)),
                SubRequest("exists", "POST", patch_url.rsplit("/", 1)[0], points_body(1.0)),
                SubRequest("ok", "POST", create_url, points_body(1.0)),
            ]
        )
        with pytest.raises(TerminalGraphError) as info:
            client.get("/education/classes/not-a-class")
    neg, missing, exists = out["neg"], out["missing"], out["exists"]
    assert neg.status == 400 and neg.error.inner_code == "invalidGrading" and neg.error.request_id
    assert neg.error.graph_code and not neg.error.retryable and neg.attempts == 1
    assert missing.status == 404 and missing.error.code == "graph-not-found" and missing.error.request_id
    assert exists.status == 409 and not exists.fate_unknown and exists.error.code == "graph-conflict"
    assert out["ok"].status == 201 and out["ok"].body["id"]
    assert info.value.status == 404 and info.value.request_id and info.value.graph_code
    assert emulator.stats()["graph_requests"] == 5  # terminal errors are not retried


def test_a_bad_token_is_an_auth_error_everywhere(emulator, token):
    bad = "not-the-token-" + token
    with client_for(emulator, bad) as client:
        for call in (
            lambda: client.get("/education/classes"),
            lambda: client.get_all("/education/classes"),
            lambda: client.get_all_many(["/education/classes"]),
            lambda: client.batch([SubRequest("1", "GET", "/education/classes")]),
        ):
            with pytest.raises(AuthError) as info:
                call()
            assert info.value.exit_code == 3 and info.value.code == "auth-token-rejected"
            assert bad not in str(info.value) and bad not in repr(info.value)
        # each call asked for a fresh token once and resent once; the provider (a fixed string here)
        # is asked only once for this one rejected token, and the second 401 is the AuthError
        assert client.stats.token_renewals == 1
        assert client.stats.retries == 4 and client.stats.http_requests == 8
