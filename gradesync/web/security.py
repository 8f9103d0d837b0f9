"""The web app's safety: a strict CSP with a per-request nonce, CSRF tokens, upload checks, private files.

* **CSP** (``Content-Security-Policy`` header on every response): ``default-src 'none'``; scripts and
  styles only with this response's nonce (the app's own ``app.js``/``app.css``, loaded with it);
  ``connect-src 'self'`` for the progress stream; ``form-action 'self'``; ``frame-ancestors 'none'``.
  Templates autoescape every value (Jinja2), so a missed escape is the CSP's to stop, not the reverse.
* **CSRF**: a random token per session (in the signed session cookie); every POST form carries it in
  its URL (``?csrf=…``), so the server compares it, in constant time, before reading the body. The
  session cookie is ``SameSite=Lax`` and HttpOnly.
* **Uploads** (``uploads.py``): a size limit per request and per file, enforced as the body streams in;
  the type checked by *content*; stored in 0700 directories as 0600 files under the state directory
  (:func:`private_dir`) and deleted after the retention period (:func:`prune_uploads`).
"""

from __future__ import annotations

import hmac
import secrets
import shutil
import time
from pathlib import Path

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "CSRF_FIELD",
    "BodyLimit",
    "SecurityHeaders",
    "content_security_policy",
    "csrf_ok",
    "csrf_token",
    "private_dir",
    "prune_uploads",
]

CSRF_FIELD = "csrf"


def content_security_policy(nonce: str) -> str:
    return (
        "default-src 'none'; "
        f"script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
        "img-src 'self'; connect-src 'self'; font-src 'none'; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    )


class SecurityHeaders:
    """ASGI middleware: a fresh nonce per request (``scope["state"]["nonce"]``) and the safety headers.

    A route that serves a page with its own policy (a run's ``report.html``) sets ``x-own-csp``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nonce = secrets.token_urlsafe(18)
        scope.setdefault("state", {})["nonce"] = nonce

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if "x-own-csp" in headers:
                    del headers["x-own-csp"]
                else:
                    headers["Content-Security-Policy"] = content_security_policy(nonce)
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "no-referrer"
                headers["X-Frame-Options"] = "DENY"
                headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimit:
    """ASGI middleware: refuse (413) a request whose declared or actual body exceeds ``limit`` bytes."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await _too_large(send, self.limit)
            return
        seen = 0

        async def counting() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise UploadTooLarge(self.limit)
            return message

        try:
            await self.app(scope, counting, send)
        except UploadTooLarge:
            await _too_large(send, self.limit)


class UploadTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"upload larger than {limit} bytes")
        self.limit = limit


async def _too_large(send: Send, limit: int) -> None:
    body = f"The upload is larger than the limit of {limit // (1024 * 1024)} MiB.".encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", b"%d" % len(body)),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


# --- CSRF -----------------------------------------------------------------------------------------
def csrf_token(session: dict) -> str:
    token = session.get(CSRF_FIELD)
    if not token:
        token = session[CSRF_FIELD] = secrets.token_urlsafe(32)
    return str(token)


def csrf_ok(session: dict, submitted: object) -> bool:
    expected = session.get(CSRF_FIELD)
    return bool(expected) and isinstance(submitted, str) and hmac.compare_digest(str(expected), submitted)


# --- private files ---------------------------------------------------------------------------------
def private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)
    return path


def prune_uploads(root: Path, retention_seconds: float, *, now: float | None = None) -> list[Path]:
    """Delete upload directories older than the retention period; returns what was deleted."""
    if not root.is_dir():
        return []
    cutoff = (now if now is not None else time.time()) - retention_seconds
    gone = []
    for child in root.iterdir():
        if child.is_dir() and not child.is_symlink() and child.stat().st_mtime < cutoff:
            shutil.rmtree(child, ignore_errors=True)
            gone.append(child)
    return gone
