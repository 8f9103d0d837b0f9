"""Token renewal on a 401, the Prefer header, and an unreachable Graph (exit 7).

Mock transports for the exact shapes, and the emulator's token lifetime end to end.
"""

from __future__ import annotations

import json
import socket
import threading
from typing import Any

import httpx
import pytest

from gradesync.errors import AuthError, ExitCode, GraphUnreachableError, NetworkError
from gradesync.graph import GraphClient, RateLimit, RetryPolicy, SubRequest

from .helpers import FakeClock, patch_targets, points_body, points_in_state
from .test_client_mock import BASE, make_client

PREFER = "include-unknown-enum-members"
EXPIRED = {"error": {"code": "InvalidAuthenticationToken", "message": "Lifetime validation failed."}}


class Tokens:
    """A provider handing out ``T.1``, ``T.2``, …: a new one only when forced."""

    def __init__(self, base: str = "T") -> None:
        self.base, self.n = base, 1
        self.forced = 0
        self._lock = threading.Lock()

    def __call__(self, *, force_refresh: bool = False) -> str:
        with self._lock:
            if force_refresh:
                self.forced += 1
                self.n += 1
            return f"{self.base}.{self.n}"


def bearer(request: httpx.Request) -> str:
    return request.headers["authorization"].removeprefix("Bearer ")


def tokens_client(handler: Any, tokens: Tokens, **kw: Any) -> tuple[GraphClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        request.read()
        seen.append(request)
        return handler(request)

    clock = FakeClock()
    client = GraphClient(
        BASE,
        tokens,
        transport=httpx.MockTransport(record),
        rate_limit=RateLimit.off(),
        policy=kw.pop("policy", RetryPolicy(max_attempts=4, base_delay=0.1, max_delay=1)),
        sleep=clock.sleep,
        clock=clock,
        **kw,
    )
    return client, seen


def test_a_401_renews_the_token_once_and_resends():
    def handle(request):
        if bearer(request) == "T.1":
            return httpx.Response(401, json=EXPIRED)
        return httpx.Response(200, json={"id": "x"})

    tokens = Tokens()
    client, seen = tokens_client(handle, tokens)
    assert client.get("/education/classes/x") == {"id": "x"}
    assert [bearer(r) for r in seen] == ["T.1", "T.2"] and tokens.forced == 1
    assert client.stats.token_renewals == 1 and client.stats.retries == 1
    assert client.stats.transient_errors == 0  # a renewal is not a Graph failure


def test_a_second_401_is_an_auth_error():
    tokens = Tokens()
    client, seen = tokens_client(lambda r: httpx.Response(401, json=EXPIRED), tokens)
    with pytest.raises(AuthError) as info:
        client.get("/education/classes/x")
    assert info.value.exit_code == ExitCode.AUTH and info.value.code == "auth-token-rejected"
    assert len(seen) == 2 and tokens.forced == 1
    assert "T.1" not in str(info.value) and "T.2" not in str(info.value)


def test_a_401_inside_a_batch_resends_only_those_and_never_a_create():
    def handle(request):
        reqs = json.loads(request.content)["requests"]
        out = []
        for r in reqs:
            expired = bearer(request) == "T.1" and r["id"] in ("p", "c")
            out.append(
                {"id": r["id"], "status": 401, "body": EXPIRED}
                if expired
                else {"id": r["id"], "status": 200, "body": {"ok": r["id"]}}
            )
        return httpx.Response(200, json={"responses": out})

    tokens = Tokens()
    client, seen = tokens_client(handle, tokens)
    out = client.batch(
        [
            SubRequest("g", "GET", "/a"),
            SubRequest("p", "PATCH", "/o/1", {"points": 1}),
            SubRequest("c", "POST", "/s/1/outcomes", {"points": 2}),
        ]
    )
    assert out["g"].ok and out["g"].attempts == 1
    assert out["p"].ok and out["p"].attempts == 2  # re-sent with the new token, alone
    assert out["c"].fate_unknown and out["c"].error.code == "auth-token-renewed"
    assert out["c"].error.retryable and out["c"].attempts == 1  # the executor re-reads it
    assert [[i["id"] for i in json.loads(r.content)["requests"]] for r in seen] == [["g", "p", "c"], ["p"]]
    assert [bearer(r) for r in seen] == ["T.1", "T.2"] and tokens.forced == 1


def test_a_401_for_the_whole_envelope_resends_it_all_once_then_raises():
    def handle(request):
        if bearer(request) == "T.1":
            return httpx.Response(401, json=EXPIRED)
        reqs = json.loads(request.content)["requests"]
        return httpx.Response(200, json={"responses": [{"id": r["id"], "status": 201} for r in reqs]})

    tokens = Tokens()
    client, seen = tokens_client(handle, tokens)
    out = client.batch([SubRequest("c", "POST", "/s/1/outcomes", {"points": 2})])
    assert out["c"].ok and out["c"].attempts == 2  # refused at the door: nothing was created
    assert tokens.forced == 1

    tokens = Tokens()
    client, seen = tokens_client(lambda r: httpx.Response(401, json=EXPIRED), tokens)
    with pytest.raises(AuthError):
        client.batch([SubRequest("g", "GET", "/a")])
    assert len(seen) == 2 and tokens.forced == 1


def test_envelopes_rejected_together_renew_the_token_once():
    barrier = threading.Barrier(4, timeout=5)

    def handle(request):
        if bearer(request) == "T.1":
            barrier.wait()  # all four envelopes are in flight with the same expired token
            return httpx.Response(401, json=EXPIRED)
        reqs = json.loads(request.content)["requests"]
        return httpx.Response(200, json={"responses": [{"id": r["id"], "status": 200} for r in reqs]})

    tokens = Tokens()
    client, _ = tokens_client(handle, tokens, max_in_flight=4)
    out = client.batch([SubRequest(str(i), "GET", f"/x/{i}") for i in range(80)])
    assert all(r.ok for r in out.values())
    assert tokens.forced == 1 and client.stats.token_renewals == 1
    client.close()


def test_a_provider_without_force_refresh_is_simply_asked_again():
    calls = iter(["old", "new", "new"])

    def handle(request):
        return httpx.Response(401 if bearer(request) == "old" else 200, json={"id": "x"})

    client, rec, _ = make_client(handle)
    client._token_provider = lambda: next(calls)  # a bare callable, as the CLI passes for a fixed token
    client._provider_forces = False
    assert client.get("/x") == {"id": "x"}
    assert [bearer(r) for r in rec.requests] == ["old", "new"]


def test_every_request_and_every_sub_request_prefers_unknown_enum_members():
    def handle(request):
        if request.url.path.endswith("$batch"):
            reqs = json.loads(request.content)["requests"]
            return httpx.Response(200, json={"responses": [{"id": r["id"], "status": 200} for r in reqs]})
        return httpx.Response(200, json={"id": "x"})

    client, rec, _ = make_client(handle)
    client.get("/education/classes/x")
    client.request("PATCH", "/o/1", {"points": 1})
    other = {"Prefer": "odata.maxpagesize=999"}
    client.batch([SubRequest("a", "GET", "/a"), SubRequest("b", "GET", "/b", headers=other)])
    assert all(r.headers["prefer"] == PREFER for r in rec.requests)
    items = {i["id"]: i for i in json.loads(rec.requests[-1].content)["requests"]}
    assert items["a"]["headers"] == {"Prefer": PREFER}
    assert items["b"]["headers"] == {"Prefer": f"odata.maxpagesize=999, {PREFER}"}


def test_a_graph_that_cannot_be_reached_is_a_network_error_after_the_retries():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    clock = FakeClock()
    policy = RetryPolicy(max_attempts=3, base_delay=0.1, max_delay=0.2)
    with GraphClient(
        f"http://127.0.0.1:{port}/v1.0", lambda: "t", policy=policy, sleep=clock.sleep, clock=clock
    ) as client:
        with pytest.raises(NetworkError) as info:
            client.get("/education/classes")
        waits = len(clock.sleeps)
        out = client.batch([SubRequest("c", "POST", "/s/1/outcomes", {"points": 1})])
    assert isinstance(info.value, GraphUnreachableError) and info.value.exit_code == ExitCode.NETWORK
    assert waits == 2  # retried as transient first
    # a create that never left is resent (no connection: certainly not applied), then reported
    assert isinstance(out["c"].error, NetworkError) and not out["c"].fate_unknown and out["c"].attempts == 3


# ---------------------------------------------------------------- token lifetime, end to end


def test_a_token_expiring_mid_run_does_not_stop_the_run(emulator_factory, token, sample_tenant):
    clock = FakeClock()  # the emulator's clock: tokens expire when the test says so, not by sleeping
    srv = emulator_factory(clock=clock)
    httpx.post(srv.url + "/_emulator/config", json={"token_lifetime": 60}).raise_for_status()
    tokens = Tokens(token)
    targets = list(patch_targets(sample_tenant))[:45]
    with GraphClient(srv.base_url, tokens, rate_limit=RateLimit.off()) as client:
        first = client.batch(
            [SubRequest(str(i), "PATCH", u, points_body(1.0)) for i, (u, _) in enumerate(targets[:20])]
        )
        clock.sleep(61)  # T.1 is now expired
        rest = client.batch(
            [SubRequest(str(i), "PATCH", u, points_body(2.0)) for i, (u, _) in enumerate(targets[20:])]
        )
    assert all(r.ok for r in first.values()) and all(r.ok for r in rest.values())
    assert tokens.forced == 1 and client.stats.token_renewals == 1
    state = points_in_state(srv.state())
    assert [state[oid] for _, oid in targets] == [1.0] * 20 + [2.0] * 25
    assert srv.stats()["unauthorized"] >= 1


def test_the_emulators_401_for_a_wrong_token_renews_then_stops(emulator, token):
    tokens = Tokens("wrong-" + token)
    with (
        GraphClient(emulator.base_url, tokens, rate_limit=RateLimit.off()) as client,
        pytest.raises(AuthError),
    ):
        client.get_all_many(["/education/classes"])
    assert tokens.forced == 1 and emulator.stats()["unauthorized"] == 2
