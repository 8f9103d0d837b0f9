"""ASGI plumbing: read a request, send an :class:`~graph_emulator.answers.Answer`, drop a connection."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from graph_emulator.answers import Answer
from graph_emulator.lies import truncate

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class DroppedConnection(Exception):
    """Raised inside the ASGI app after the response started, so the server cuts the connection."""


async def lifespan(receive: Receive, send: Send) -> None:
    while True:
        msg = await receive()
        if msg["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif msg["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def read_body(receive: Receive) -> bytes:
    body = b""
    while True:
        msg = await receive()
        body += msg.get("body", b"")
        if not msg.get("more_body"):
            return body


def headers_of(scope: dict[str, Any]) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


_encoder = msgspec.json.Encoder()


def encode(body: Any) -> bytes:
    """An answer's JSON, compact as Graph's (a number JSON cannot hold, such as NaN, goes out as
    ``null``: Graph never sends a non-JSON token)."""
    return b"" if body is None else _encoder.encode(body)


async def send_answer(send: Send, answer: Answer, *, malformed: bool = False) -> None:
    raw = encode(answer.body)
    if malformed:
        raw = truncate(raw)  # a lie: malformed JSON on a 200
    hdrs = [(b"content-type", b"application/json; odata.metadata=minimal")] if raw else []
    hdrs += [(k.lower().encode(), str(v).encode()) for k, v in answer.headers.items()]
    hdrs.append((b"content-length", str(len(raw)).encode()))
    await send({"type": "http.response.start", "status": answer.status, "headers": hdrs})
    await send({"type": "http.response.body", "body": raw})


async def send_dropped(send: Send, answer: Answer) -> None:
    """Start the answer, send half its body, then cut the connection (a fault)."""
    raw = encode(answer.body)
    await send(
        {
            "type": "http.response.start",
            "status": answer.status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % (len(raw) + 64))],
        }
    )
    await send({"type": "http.response.body", "body": raw[: len(raw) // 2], "more_body": True})
    raise DroppedConnection("fault injection: connection dropped mid-response")
