"""Tokens: T and T.<suffix> accepted, lifetimes on the emulator clock, $batch."""

from __future__ import annotations

import httpx
from emulator_testkit import TOKEN, FakeClock, client

EXPIRED = "Lifetime validation failed, the token is expired."


def test_suffixed_tokens_are_the_same_app(emulator):
    for token, status in ((TOKEN, 200), (TOKEN + ".1", 200), (TOKEN + ".", 401), (TOKEN + "x", 401)):
        with client(emulator, token=token) as http:
            assert http.get("/education/classes").status_code == status, token


def test_each_token_expires_its_lifetime_after_first_use(emulator_factory):
    clock = FakeClock()
    srv = emulator_factory(clock=clock, token_lifetime=60)
    with client(srv, token=TOKEN + ".1") as one, client(srv, token=TOKEN + ".2") as two:
        assert one.get("/education/classes").status_code == 200
        clock.advance(30)
        assert two.get("/education/classes").status_code == 200  # first seen now
        clock.advance(30)
        expired = one.get("/education/classes")
        fresh = two.get("/education/classes")
        batch = one.post(
            "/$batch", json={"requests": [{"id": "1", "method": "GET", "url": "/education/classes"}]}
        )
    assert expired.status_code == 401 and fresh.status_code == 200
    err = expired.json()["error"]
    assert err["code"] == "InvalidAuthenticationToken" and err["message"] == EXPIRED
    assert batch.status_code == 401 and batch.json()["error"]["message"] == EXPIRED  # the envelope, whole
    stats = srv.stats()
    assert stats["expired_tokens"] == 2 and stats["unauthorized"] == 2 and stats["batch_subrequests"] == 0


def test_token_lifetime_through_the_config_endpoint(emulator_factory):
    clock = FakeClock()
    srv = emulator_factory(clock=clock)
    with client(srv) as http:
        assert http.get("/education/classes").status_code == 200
        cfg = httpx.post(srv.url + "/_emulator/config", json={"token_lifetime": 5}).json()
        assert cfg["token_lifetime"] == 5
        assert http.get("/education/classes").status_code == 200  # counts from the next use
        clock.advance(5)
        assert http.get("/education/classes").status_code == 401
        httpx.post(srv.url + "/_emulator/config", json={"token_lifetime": None}).raise_for_status()
        assert http.get("/education/classes").status_code == 200
    assert httpx.post(srv.url + "/_emulator/config", json={"token_lifetime": -1}).status_code == 400
