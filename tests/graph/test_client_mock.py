"""Graph answers that lie, which the emulator cannot produce: through httpx.MockTransport.

Every test here injects a fake clock, so the computed waits are asserted without waiting.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from gradesync.errors import AuthError, GraphError, TerminalGraphError, TransientGraphError
from gradesync.graph import GraphClient, RateLimit, RetryPolicy, SubRequest
from gradesync.graph.client import RETRY_AFTER_MARGIN

from .helpers import FakeClock

BASE = "https://graph.example.com/v1.0"
SECRET = "SECRET-token-0123456789"

Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """A mock transport that records each request (with the fake clock's time) and delegates."""

    def __init__(self, handler: Handler, clock: FakeClock) -> None:
        self.handler = handler
        self.clock = clock
        self.requests: list[httpx.Request] = []
        self.times: list[float] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        self.times.append(self.clock())
        return self.handler(request)


def make_client(handler: Handler, **kw: Any) -> tuple[GraphClient, Recorder, FakeClock]:
    clock = FakeClock()
    rec = Recorder(handler, clock)
    kw.setdefault("rate_limit", RateLimit.off())
    kw.setdefault("policy", RetryPolicy(max_attempts=5, base_delay=0.5, max_delay=8))
    client = GraphClient(
        BASE,
        lambda: SECRET,
        transport=httpx.MockTransport(rec),
        sleep=clock.sleep,
        clock=clock,
        rng=random.Random(3),
        **kw,
    )
    return client, rec, clock


def batch_handler(answer: Callable[[list[dict[str, Any]], int], Any]) -> tuple[Handler, list[list[dict]]]:
    """A $batch endpoint whose answer body is ``answer(requests, call_number)``."""
    seen: list[list[dict[str, Any]]] = []

    def handle(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1.0/$batch"
        reqs = json.loads(request.content)["requests"]
        seen.append(reqs)
        body = answer(reqs, len(seen))
        if isinstance(body, httpx.Response):
            return body
        return httpx.Response(200, json=body)

    return handle, seen


def ok(req: dict[str, Any], status: int = 200, **extra: Any) -> dict[str, Any]:
    return {"id": req["id"], "status": status, "headers": {}, "body": {"echo": req["url"]}, **extra}


def all_errors_text(errors: list[BaseException]) -> str:
    parts = []
    for e in errors:
        parts += [str(e), repr(e), e.args.__repr__()]
        if isinstance(e, AuthError | GraphError):
            parts.append(json.dumps(e.as_dict()))
    return "\n".join(parts)


# ---------------------------------------------------------------- malformed JSON


def test_malformed_json_in_a_2xx_is_retried_then_succeeds():
    calls = []

    def handle(request):
        calls.append(1)
        if len(calls) < 3:
            return httpx.Response(200, content=b'{"value": [ {"id": "a"')  # cut short
        return httpx.Response(200, json={"id": "a"})

    client, rec, clock = make_client(handle)
    assert client.get("/education/classes/a") == {"id": "a"}
    assert len(rec.requests) == 3
    assert client.stats.transient_errors == 2 and client.stats.retries == 2
    assert len(clock.sleeps) == 2 and all(0 <= s <= 1.0 for s in clock.sleeps)  # backoff, capped by base*2


def test_malformed_json_forever_gives_up_after_max_attempts():
    client, rec, clock = make_client(lambda r: httpx.Response(200, content=b"<html>proxy</html>"))
    with pytest.raises(TransientGraphError) as info:
        client.get("/education/classes")
    assert info.value.code == "graph-malformed-response"
    assert len(rec.requests) == 5  # max_attempts
    assert len(clock.sleeps) == 4
    for n, wait in enumerate(clock.sleeps, start=1):
        assert 0 <= wait <= min(8, 0.5 * 2 ** (n - 1))


def test_a_json_array_where_an_object_belongs_is_malformed():
    client, rec, _ = make_client(
        lambda r: httpx.Response(200, json=[1, 2]), policy=RetryPolicy(max_attempts=2)
    )
    with pytest.raises(TransientGraphError, match="not a JSON object"):
        client.get("/x")
    assert len(rec.requests) == 2


def test_malformed_batch_envelope_retries_patch_but_never_resends_post():
    def answer(reqs, n):
        if n == 1:
            return httpx.Response(200, content=b"{not json")
        return {"responses": [ok(r) for r in reqs]}

    handle, seen = batch_handler(answer)
    client, _, _ = make_client(handle)
    out = client.batch(
        [
            SubRequest("p", "PATCH", "/o/1", {"points": 1}),
            SubRequest("c", "POST", "/s/1/outcomes", {"points": 2}),
        ]
    )
    assert out["p"].ok and out["p"].attempts == 2
    assert out["c"].fate_unknown and out["c"].error.code == "graph-malformed-response"
    assert [[r["id"] for r in call] for call in seen] == [["p", "c"], ["p"]]
    assert client.stats.fate_unknown == 1


# ------------------------------------------------- batch answers that miss, repeat or invent ids


def test_batch_answer_missing_duplicate_and_unknown_ids():
    def answer(reqs, n):
        if n == 1:
            by_id = {r["id"]: r for r in reqs}
            return {
                "responses": [
                    ok(by_id["1"]),
                    ok(by_id["2"]),
                    ok(by_id["2"], status=404),  # "2" twice: which one is true? neither is trusted
                    {"id": "zz", "status": 200, "body": {}},  # an id we never sent
                    {"status": 200},  # no id at all
                    # "3" (PATCH) and "4" (POST) are missing
                ]
            }
        return {"responses": [ok(r) for r in reversed(reqs)]}

    handle, seen = batch_handler(answer)
    client, _, _ = make_client(handle)
    out = client.batch(
        [
            SubRequest("1", "GET", "/a"),
            SubRequest("2", "PATCH", "/b", {"x": 1}),
            SubRequest("3", "PATCH", "/c", {"x": 1}),
            SubRequest("4", "POST", "/d", {"x": 1}),
        ]
    )
    assert list(out) == ["1", "2", "3", "4"]
    assert out["1"].ok and out["1"].attempts == 1
    assert out["2"].ok and out["2"].attempts == 2  # re-batched, not guessed
    assert out["3"].ok and out["3"].attempts == 2
    assert out["4"].fate_unknown and out["4"].error.code == "graph-batch-missing-response"
    assert sorted(r["id"] for r in seen[1]) == ["2", "3"]
    assert "zz" not in out


def test_batch_answer_missing_forever_ends_with_the_error_not_a_guess():
    handle, seen = batch_handler(lambda reqs, n: {"responses": []})
    client, _, clock = make_client(handle, policy=RetryPolicy(max_attempts=3, base_delay=1, max_delay=1))
    out = client.batch([SubRequest("1", "PATCH", "/o", {"x": 1})])
    assert out["1"].status == 0 and not out["1"].ok and not out["1"].fate_unknown
    assert out["1"].error.code == "graph-batch-missing-response" and out["1"].attempts == 3
    assert len(seen) == 3 and len(clock.sleeps) == 2


def test_batch_rejects_duplicate_input_ids_and_foreign_urls():
    client, rec, _ = make_client(lambda r: httpx.Response(500))
    with pytest.raises(ValueError, match="duplicate"):
        client.batch([SubRequest("1", "GET", "/a"), SubRequest("1", "GET", "/b")])
    with pytest.raises(ValueError, match="instead of the configured"):
        client.batch([SubRequest("1", "GET", "https://evil.example.net/v1.0/a")])
    assert rec.requests == []


def test_batch_items_are_relative_with_content_type_only_with_a_body_and_chunked_by_20():
    handle, seen = batch_handler(lambda reqs, n: {"responses": [ok(r) for r in reqs]})
    client, _, _ = make_client(handle, max_in_flight=3)
    reqs = [SubRequest(f"g{i}", "GET", f"/education/classes/{i}") for i in range(25)]
    reqs += [SubRequest(f"p{i}", "patch", f"{BASE}/o/{i}", {"v": i}) for i in range(20)]
    out = client.batch(reqs)
    assert all(r.ok for r in out.values()) and list(out) == [r.id for r in reqs]
    assert sorted(len(call) for call in seen) == [5, 20, 20]
    items = {i["id"]: i for call in seen for i in call}
    prefer = {"Prefer": "include-unknown-enum-members"}  # in every sub-request's own headers
    assert items["g3"] == {"id": "g3", "method": "GET", "url": "/education/classes/3", "headers": prefer}
    assert items["p7"] == {
        "id": "p7",
        "method": "PATCH",
        "url": "/o/7",
        "body": {"v": 7},
        "headers": {**prefer, "Content-Type": "application/json"},
    }
    assert client.stats.batches == 3 and client.stats.sub_requests == 45
    assert client.stats.by_method == {"GET": 25, "PATCH": 20}


# ---------------------------------------------------------------- nextLink that leaves the host or loops


@pytest.mark.parametrize(
    "foreign",
    [
        "https://evil.example.net/v1.0/education/classes?$skiptoken=x",
        "http://graph.example.com/v1.0/education/classes?$skiptoken=x",  # scheme downgrade
        "https://graph.example.com:8443/v1.0/education/classes?$skiptoken=x",  # other port
        "https://graph.example.com.evil.net/v1.0/education/classes",
    ],
)
def test_foreign_nextlink_is_refused_and_the_token_never_goes_there(foreign):
    def handle(request):
        assert request.url.host == "graph.example.com" and request.url.scheme == "https"
        assert request.url.port in (None, 443)
        return httpx.Response(200, json={"value": [{"id": "1"}], "@odata.nextLink": foreign})

    client, rec, _ = make_client(handle)
    with pytest.raises(TerminalGraphError) as info:
        client.get_all("/education/classes")
    assert info.value.code == "graph-foreign-nextlink"
    assert len(rec.requests) == 1
    assert all(
        SECRET not in r.headers.get("authorization", "") or r.url.host == "graph.example.com"
        for r in rec.requests
    )
    assert SECRET not in all_errors_text([info.value])

    # the same inside $batch: the link is not followed, the url is reported, the others complete
    def handle_batch(request):
        reqs = json.loads(request.content)["requests"]
        return httpx.Response(
            200,
            json={
                "responses": [
                    {
                        "id": r["id"],
                        "status": 200,
                        "body": {"value": [{"id": r["url"]}], "@odata.nextLink": foreign},
                    }
                    if r["url"].startswith("/bad")
                    else {"id": r["id"], "status": 200, "body": {"value": [{"id": r["url"]}]}}
                    for r in reqs
                ]
            },
        )

    client, rec, _ = make_client(handle_batch)
    got = client.get_all_many(["/bad", "/good"])
    assert got == {"/good": [{"id": "/good"}]}
    assert got.errors["/bad"].code == "graph-foreign-nextlink"
    assert len(rec.requests) == 1 and all(r.url.host == "graph.example.com" for r in rec.requests)


def test_nextlink_to_itself_is_a_loop():
    link = BASE + "/education/classes?$skiptoken=same"

    client, rec, _ = make_client(
        lambda r: httpx.Response(200, json={"value": [{"id": "1"}], "@odata.nextLink": link})
    )
    with pytest.raises(TerminalGraphError) as info:
        client.get_all("/education/classes")
    assert info.value.code == "graph-nextlink-loop"
    assert len(rec.requests) == 2  # the first page, the link once; the repeat is not fetched


def test_nextlink_cycle_between_two_pages_is_a_loop_in_batches_too():
    def handle(request):
        reqs = json.loads(request.content)["requests"]
        out = []
        for r in reqs:
            token = "b" if r["url"].endswith("a") else "a"
            out.append(
                {
                    "id": r["id"],
                    "status": 200,
                    "body": {"value": [{}], "@odata.nextLink": f"{BASE}/l?$skiptoken={token}"},
                }
            )
        return httpx.Response(200, json={"responses": out})

    client, rec, _ = make_client(handle)
    got = client.get_all_many(["/l?$skiptoken=a"])
    assert got == {} and got.errors["/l?$skiptoken=a"].code == "graph-nextlink-loop"
    assert len(rec.requests) == 2


def test_an_endless_chain_of_new_links_stops_at_max_pages():
    count = {"n": 0}

    def handle(request):
        count["n"] += 1
        return httpx.Response(
            200, json={"value": [{"id": count["n"]}], "@odata.nextLink": f"{BASE}/c?$skiptoken={count['n']}"}
        )

    client, rec, _ = make_client(handle, max_pages=50)
    with pytest.raises(TerminalGraphError, match="more than 50 pages") as info:
        client.get_all("/c")
    assert info.value.code == "graph-nextlink-loop"
    assert len(rec.requests) == 50


# ---------------------------------------------------------------- huge pages


def test_a_huge_page_is_read_whole():
    items = [{"id": str(i), "displayName": "x" * 40} for i in range(60_000)]
    client, _, _ = make_client(lambda r: httpx.Response(200, json={"value": items}))
    assert len(client.get_all("/education/users")) == 60_000


def test_a_page_above_the_size_limit_is_refused_clearly():
    items = [{"id": str(i), "displayName": "x" * 40} for i in range(10_000)]
    client, rec, _ = make_client(
        lambda r: httpx.Response(200, json={"value": items}), max_response_bytes=100_000
    )
    with pytest.raises(TerminalGraphError) as info:
        client.get_all("/education/users")
    assert info.value.code == "graph-response-too-large"
    assert len(rec.requests) == 1  # terminal: not retried


# ---------------------------------------------------------------- Retry-After forms and the scope-wide pause


@pytest.mark.parametrize(
    ("header", "expected"), [("0.249", 0.249), ("2.128", 2.128), ("30,120", 30.0), ("3", 3.0)]
)
def test_retry_after_forms_on_a_single_request(header, expected):
    calls = []

    def handle(request):
        calls.append(1)
        if len(calls) == 1:
            return httpx.Response(
                429, headers={"Retry-After": header}, json={"error": {"code": "TooManyRequests"}}
            )
        return httpx.Response(200, json={"id": "x"})

    client, rec, clock = make_client(handle)
    assert client.get("/x") == {"id": "x"}
    assert clock.sleeps == [pytest.approx(expected + RETRY_AFTER_MARGIN)]
    assert rec.times[1] - rec.times[0] >= expected
    assert client.stats.throttled == 1 and client.stats.retries == 1


def test_retry_after_as_an_http_date():
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    calls = []

    def handle(request):
        calls.append(1)
        if len(calls) == 1:
            return httpx.Response(503, headers={"Retry-After": when})
        return httpx.Response(200, json={})

    client, _, clock = make_client(handle, policy=RetryPolicy(max_total_seconds=60))
    client.get("/x")
    assert len(clock.sleeps) == 1 and 18.0 <= clock.sleeps[0] <= 20.5


def test_garbage_retry_after_falls_back_to_capped_backoff():
    calls = []

    def handle(request):
        calls.append(1)
        if len(calls) <= 3:
            return httpx.Response(429, headers={"Retry-After": "whenever"})
        return httpx.Response(200, json={})

    client, _, clock = make_client(handle, policy=RetryPolicy(base_delay=1.0, max_delay=1.5))
    client.get("/x")
    assert len(clock.sleeps) == 3
    assert 0 <= clock.sleeps[0] <= 1.0 and all(0 <= s <= 1.5 for s in clock.sleeps)


def test_a_retry_after_beyond_the_time_budget_is_not_waited_for():
    client, rec, clock = make_client(
        lambda r: httpx.Response(429, headers={"Retry-After": "120"}),
        policy=RetryPolicy(max_total_seconds=60),
    )
    with pytest.raises(TransientGraphError) as info:
        client.get("/x")
    assert info.value.retry_after == 120 and len(rec.requests) == 1 and clock.sleeps == []


def test_a_sub_request_retry_after_pauses_every_later_request_of_the_client():
    def answer(reqs, n):
        if n == 1:
            return {
                "responses": [
                    {
                        "id": "1",
                        "status": 429,
                        "headers": {"Retry-After": "2.5"},
                        "body": {"error": {"code": "TooMany"}},
                    },
                    ok(reqs[1]),
                ]
            }
        return {"responses": [ok(r) for r in reqs]}

    handle, seen = batch_handler(answer)

    def route(request):
        if request.url.path.endswith("$batch"):
            return handle(request)
        return httpx.Response(200, json={"id": "single"})

    client, rec, clock = make_client(route)
    out = client.batch(
        [SubRequest("1", "PATCH", "/o/1", {"p": 1}), SubRequest("2", "PATCH", "/o/2", {"p": 2})]
    )
    assert out["1"].ok and out["1"].attempts == 2 and out["2"].attempts == 1
    assert [len(c) for c in seen] == [2, 1]  # only the throttled one is re-batched
    assert rec.times[1] - rec.times[0] >= 2.5
    # a pause set by one caller also holds back a different request sent meanwhile
    client._limiter.pause(4.0)
    t0 = clock()
    client.get("/education/classes/x/assignments")
    assert rec.times[-1] - t0 >= 4.0
    assert client.stats.throttled == 1


def test_rebatch_waits_for_the_longest_retry_after_among_the_failed():
    def answer(reqs, n):
        if n == 1:
            ra = {"1": "0.5", "2": "3", "3": None}
            out = []
            for r in reqs:
                headers = {"Retry-After": ra[r["id"]]} if ra[r["id"]] else {}
                out.append({"id": r["id"], "status": 429 if r["id"] != "3" else 503, "headers": headers})
            return {"responses": out}
        return {"responses": [ok(r) for r in reqs]}

    handle, seen = batch_handler(answer)
    client, rec, _clock = make_client(handle)
    out = client.batch([SubRequest(i, "GET", f"/g/{i}") for i in "123"])
    assert all(r.ok for r in out.values())
    assert len(seen) == 2 and len(seen[1]) == 3
    assert rec.times[1] - rec.times[0] == pytest.approx(3 + RETRY_AFTER_MARGIN)


def test_post_answered_429_inside_a_batch_is_fate_unknown_and_not_resent():
    def answer(reqs, n):
        return {"responses": [{"id": r["id"], "status": 429, "headers": {"Retry-After": "1"}} for r in reqs]}

    handle, seen = batch_handler(answer)
    client, _, _ = make_client(handle)
    out = client.batch([SubRequest("c", "POST", "/s/outcomes", {"x": 1})])
    assert out["c"].fate_unknown and out["c"].status == 429 and out["c"].attempts == 1
    assert len(seen) == 1


def test_post_in_an_envelope_that_never_connected_is_resent_safely():
    calls = []

    def handle(request):
        calls.append(1)
        if len(calls) == 1:
            raise httpx.ConnectError("connection refused", request=request)
        reqs = json.loads(request.content)["requests"]
        return httpx.Response(200, json={"responses": [ok(r, status=201) for r in reqs]})

    client, _, _ = make_client(handle)
    out = client.batch([SubRequest("c", "POST", "/s/outcomes", {"x": 1})])
    assert out["c"].ok and not out["c"].fate_unknown and out["c"].attempts == 2


def test_post_in_a_dropped_envelope_is_fate_unknown():
    def handle(request):
        raise httpx.RemoteProtocolError(
            "peer closed connection without sending complete message", request=request
        )

    client, rec, _ = make_client(handle, policy=RetryPolicy(max_attempts=2))
    out = client.batch(
        [SubRequest("c", "POST", "/s/outcomes", {"x": 1}), SubRequest("p", "PATCH", "/o", {"x": 1})]
    )
    assert (
        out["c"].fate_unknown and out["c"].error.code == "graph-connection-dropped" and out["c"].attempts == 1
    )
    assert not out["p"].fate_unknown and out["p"].attempts == 2
    assert [len(json.loads(r.content)["requests"]) for r in rec.requests] == [2, 1]


# ---------------------------------------------------------------- auth and token hygiene


def test_envelope_401_raises_auth_error_and_single_403_names_the_permission():
    err_body = {"error": {"code": "Authorization_RequestDenied", "message": "Insufficient privileges"}}
    client, _, _ = make_client(lambda r: httpx.Response(401, json=err_body))
    with pytest.raises(AuthError) as batch_info:
        client.batch([SubRequest("1", "PATCH", "/o", {"x": 1})])
    client, _, _ = make_client(lambda r: httpx.Response(403, json=err_body, headers={"request-id": "r-403"}))
    with pytest.raises(AuthError) as get_info:
        client.get("/education/classes")
    assert "EduAssignments.Read.All" in str(get_info.value)
    assert get_info.value.request_id == "r-403"
    assert batch_info.value.exit_code == 3


def test_sub_response_403_is_returned_as_an_auth_error_not_raised():
    handle, _ = batch_handler(lambda reqs, n: {"responses": [{"id": r["id"], "status": 403} for r in reqs]})
    client, _, _ = make_client(handle)
    out = client.batch([SubRequest("1", "PATCH", "/o", {"x": 1})])
    assert isinstance(out["1"].error, AuthError) and "EduAssignments.ReadWrite.All" in str(out["1"].error)
    with pytest.raises(AuthError):
        client.get_all_many(["/o"])


def test_the_token_never_appears_in_errors_or_reprs():
    raised: list[BaseException] = []
    scenarios: list[Handler] = [
        lambda r: httpx.Response(
            401, json={"error": {"code": "InvalidAuthenticationToken", "message": "bad"}}
        ),
        lambda r: httpx.Response(403),
        lambda r: httpx.Response(
            404, json={"error": {"code": "NotFound", "innerError": {"request-id": "x"}}}
        ),
        lambda r: httpx.Response(503),
        lambda r: httpx.Response(200, content=b"garbage"),
        lambda r: httpx.Response(200, json={"value": [], "@odata.nextLink": "https://evil.example.net/x"}),
    ]

    def dropper(request):
        raise httpx.ReadTimeout("timed out", request=request)

    scenarios.append(dropper)
    for handler in scenarios:
        client, rec, _ = make_client(handler, policy=RetryPolicy(max_attempts=2))
        for call in (
            lambda c: c.get_all("/education/classes"),
            lambda c: c.batch([SubRequest("1", "POST", "/o", {"x": 1})]),
        ):
            try:
                result = call(client)
            except (GraphError, AuthError) as exc:
                raised.append(exc)
            else:
                raised += [r.error for r in result.values() if r.error is not None]
                assert SECRET not in repr(result)
        assert SECRET not in repr(client) and SECRET not in str(client.stats.asdict())
        # and the token did go where it belongs
        assert all(r.headers["authorization"] == f"Bearer {SECRET}" for r in rec.requests)
    assert len(raised) >= 10
    assert SECRET not in all_errors_text(raised)


def test_token_provider_is_called_for_every_request():
    tokens = iter(["t1", "t2", "t3"])
    seen = []

    def handle(request):
        seen.append(request.headers["authorization"])
        return httpx.Response(200, json={"id": "x"})

    client = GraphClient(
        BASE, lambda: next(tokens), transport=httpx.MockTransport(handle), rate_limit=RateLimit.off()
    )
    client.get("/a")
    client.get("/b")
    assert seen == ["Bearer t1", "Bearer t2"]
    client.close()


def test_get_all_many_returns_single_entities_and_404s_apart():
    def answer(reqs, n):
        out = []
        for r in reqs:
            if r["url"].startswith("/education/classes/gone"):
                out.append(
                    {
                        "id": r["id"],
                        "status": 404,
                        "headers": {"request-id": "rq"},
                        "body": {"error": {"code": "NotFound"}},
                    }
                )
            else:
                out.append({"id": r["id"], "status": 200, "body": {"id": "c1", "displayName": "Algebra"}})
        return {"responses": out}

    handle, _ = batch_handler(answer)
    client, _, _ = make_client(handle)
    got = client.get_all_many(["/education/classes/c1", "/education/classes/gone", "/education/classes/c1"])
    assert got == {"/education/classes/c1": [{"id": "c1", "displayName": "Algebra"}]}
    err = got.errors["/education/classes/gone"]
    assert err.status == 404 and err.code == "graph-not-found" and err.request_id == "rq"
    with pytest.raises(TerminalGraphError):
        got.raise_first_error()


# ---------------------------------------------------------------- pacing, single writes, concurrency


def test_the_rate_limiter_paces_sub_requests_on_the_injected_clock():
    handle, seen = batch_handler(lambda reqs, n: {"responses": [ok(r) for r in reqs]})
    client, rec, _clock = make_client(handle, rate_limit=RateLimit.graph(), max_in_flight=1)
    out = client.batch([SubRequest(str(i), "GET", f"/g/{i}") for i in range(700)])
    assert all(r.ok for r in out.values()) and len(seen) == 35
    # envelopes of 20 from a bucket of 350 refilling at 35/s: 17 at once, the rest at the rate
    assert rec.times[:17] == [1000.0] * 17
    assert rec.times[-1] == pytest.approx(1000.0 + (700 - 350) / 35)
    assert client.stats.wait_seconds == pytest.approx(10.0)
    # never more sent by time t than the bucket allows: 350 + 35 t
    sizes = [len(c) for c in seen]
    for k, t in enumerate(rec.times):
        assert sum(sizes[: k + 1]) <= 350 + 35 * (t - 1000.0) + 1e-6


def test_single_post_is_sent_once_even_on_503():
    client, rec, _ = make_client(
        lambda r: httpx.Response(503, json={"error": {"code": "ServiceUnavailable"}})
    )
    with pytest.raises(TransientGraphError) as info:
        client.request("POST", "/s/1/outcomes", {"x": 1})
    assert info.value.status == 503 and len(rec.requests) == 1
    patch_client, patch_rec, _ = make_client(
        lambda r: httpx.Response(503), policy=RetryPolicy(max_attempts=3)
    )
    with pytest.raises(TransientGraphError):
        patch_client.request("PATCH", "/o/1", {"x": 1})
    assert len(patch_rec.requests) == 3


def test_envelopes_in_flight_concurrently_all_complete_and_are_matched():
    import threading

    active = {"now": 0, "max": 0}
    lock = threading.Lock()
    gate = threading.Barrier(4, timeout=5)

    def handle(request):
        with lock:
            active["now"] += 1
            active["max"] = max(active["max"], active["now"])
        gate.wait()  # only passes when 4 envelopes are in flight at once
        reqs = json.loads(request.content)["requests"]
        with lock:
            active["now"] -= 1
        return httpx.Response(200, json={"responses": [ok(r) for r in reversed(reqs)]})

    client, _, _ = make_client(handle, max_in_flight=4)
    reqs = [SubRequest(f"r{i}", "GET", f"/x/{i}") for i in range(80)]
    out = client.batch(reqs)
    assert [r.body["echo"] for r in out.values()] == [f"/x/{i}" for i in range(80)]
    assert active["max"] == 4
    client.close()


def test_a_broken_page_inside_a_batch_read_is_read_again():
    """A 200 sub-response whose body is not a page is retried like a broken HTTP answer (it was a
    final error before), after a backoff, and the listing comes back whole — never partial."""

    def answer(reqs, n):
        out = []
        for r in reqs:
            if n < 3:
                out.append({"id": r["id"], "status": 200, "headers": {}, "body": "<html>proxy</html>"})
            else:
                out.append({"id": r["id"], "status": 200, "headers": {}, "body": {"value": [{"id": "s1"}]}})
        return {"responses": out}

    handle, seen = batch_handler(answer)
    client, _, clock = make_client(handle)
    pages = client.get_all_many(["/education/classes/c/assignments/a/submissions"])
    assert pages.errors == {}
    assert pages["/education/classes/c/assignments/a/submissions"] == [{"id": "s1"}]
    assert len(seen) == 3 and client.stats.retries == 2
    assert len(clock.sleeps) == 2


def test_a_page_that_stays_broken_gives_up_within_the_attempt_budget():
    def answer(reqs, n):
        return {"responses": [{"id": r["id"], "status": 200, "headers": {}, "body": [1, 2]} for r in reqs]}

    handle, seen = batch_handler(answer)
    client, _, _ = make_client(handle, policy=RetryPolicy(max_attempts=3, base_delay=0.1, max_delay=1))
    pages = client.get_all_many(["/education/classes"])
    assert "/education/classes" not in pages
    assert pages.errors["/education/classes"].code == "graph-malformed-response"
    assert len(seen) == 3


def test_one_envelope_at_a_time_until_the_pace_is_known_to_hold():
    """During the first burst and while Graph throttles below its limits, envelopes go one by one:
    a 429 then finds no other envelope already on its way into the Retry-After window."""
    import threading

    active = {"now": 0, "max": 0}
    lock = threading.Lock()

    def handle(request):
        with lock:
            active["now"] += 1
            active["max"] = max(active["max"], active["now"])
        reqs = json.loads(request.content)["requests"]
        with lock:
            active["now"] -= 1
        return httpx.Response(200, json={"responses": [ok(r) for r in reqs]})

    client, _, _ = make_client(handle, rate_limit=RateLimit.graph(), max_in_flight=4)
    client.batch([SubRequest(f"r{i}", "GET", f"/x/{i}") for i in range(360)])
    assert active["max"] == 1  # the first burst: one at a time
    assert client.learning is False  # a window's budget went through without a 429
    client._limiter.throttled(40, retry_after=0.1)  # Graph throttles below its documented limits
    assert client.pace < 35 and client.learning is True
    client.close()


def test_a_page_that_keeps_failing_holds_back_its_own_listing_not_the_others():
    """Two listings read together: the first page of /a is answered 503 twice; /b has three pages.
    /b goes on to its next pages while /a's page waits for its backoff, so /b is read whole before
    /a's page is sent the third time — and both listings come back whole, each page read once more
    only where it failed."""
    calls = {"/a": 0}

    def answer(reqs, n):
        out = []
        for r in reqs:
            url = r["url"]
            if url == "/a":
                calls["/a"] += 1
                if calls["/a"] <= 2:
                    unavailable = {"error": {"code": "serviceNotAvailable"}}
                    out.append({"id": r["id"], "status": 503, "headers": {}, "body": unavailable})
                    continue
                out.append(ok(r, body={"value": [{"id": "a1"}]}))
                continue
            page = int(url.rsplit("=", 1)[1]) if "=" in url else 1
            body: dict[str, Any] = {"value": [{"id": f"b{page}"}]}
            if page < 3:
                body["@odata.nextLink"] = f"{BASE}/b?$skiptoken={page + 1}"
            out.append(ok(r, body=body))
        return {"responses": out}

    handle, seen = batch_handler(answer)
    client, _, _ = make_client(handle)
    got = client.get_all_many(["/a", "/b"])
    assert got.errors == {}
    assert got["/a"] == [{"id": "a1"}] and got["/b"] == [{"id": "b1"}, {"id": "b2"}, {"id": "b3"}]
    order = [r["url"] for envelope in seen for r in envelope]
    assert order.index("/b?$skiptoken=3") < len(order) - 1 - order[::-1].index("/a")  # /b done first
    assert order.count("/a") == 3 and len(order) == 6  # each page once, /a's twice more
    assert client.stats.retries == 2
