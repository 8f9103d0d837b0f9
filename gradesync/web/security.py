"""The web app's safety: a strict CSP with a per-request nonce, CSRF tokens, upload checks, private files.

* **CSP** (``Content-Security-Policy`` header on every response): ``default-src 'none'``; scripts and
  styles only with this response's nonce (the app's own ``app.js``/``app.css``, loaded with it);
  ``connect-src 'self'`` for the progress stream; ``form-action 'self'``; ``frame-ancestors 'none'``.
  Templates autoescape every value (Jinja2), so a missed escape is the CSP's to stop, not the reverse.
* **CSRF**: a random token per session (in the signed session cookie); every POST form carries it and
  the server compares it in constant time. The session cookie is ``SameSite=Lax`` and HttpOnly.
* **Uploads**: a size limit (the request's length and each file), the type checked by *content* (an
  .xlsx is a zip holding ``[Content_Types].xml`` and ``xl/``; a CSV/TSV is text: no NUL byte, decodes
  as UTF-8 or cp1252, has a separator in its first line), stored in a 0700 directory as 0600 files
  under the state directory, and deleted after the retention period.
"""

from __future__ import annotations

import hmac
import io
import os
import re
import secrets
import shutil
import time
import zipfile
from pathlib import Path

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSRF_FIELD = "csrf"
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]+")
TEXT_SUFFIXES = (".csv", ".tsv", ".txt")
XLSX_SUFFIXES = (".xlsx", ".xlsm")


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


# --- uploads --------------------------------------------------------------------------------------
class UploadRefused(Exception):
    """A file the app will not read, with what to do in words."""


def safe_name(filename: str) -> str:
    name = _SAFE_NAME.sub("_", Path(filename or "upload").name).strip(" .") or "upload"
    return name[:120]


def sniff(filename: str, data: bytes) -> str:
    """The upload's kind by its content ("xlsx" or "text"); refuses anything else, saying why."""
    name = filename.lower()
    if data[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                names = set(z.namelist())
        except zipfile.BadZipFile:
            raise UploadRefused(f"{filename}: looks like a zip file but cannot be opened") from None
        if "[Content_Types].xml" in names and any(n.startswith("xl/") for n in names):
            return "xlsx"
        raise UploadRefused(f"{filename}: a zip file that is not an Excel workbook (.xlsx)")
    if name.endswith(XLSX_SUFFIXES):
        raise UploadRefused(f"{filename}: named .xlsx but is not an Excel workbook; save it again from Excel")
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise UploadRefused(f"{filename}: an old .xls (or an encrypted) workbook; save it as .xlsx or CSV")
    head = data[:65536]
    if b"\x00" in head:
        raise UploadRefused(f"{filename}: not a text file (it holds binary data); upload CSV, TSV or XLSX")
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = head.decode("cp1252")
        except UnicodeDecodeError:
            raise UploadRefused(f"{filename}: neither UTF-8 nor Windows-1252 text") from None
    first = next((line for line in text.splitlines() if line.strip()), "")
    if not first or not any(sep in first for sep in ",\t;|"):
        raise UploadRefused(f"{filename}: no separated header row (CSV or TSV) in its first line")
    if first.lstrip().lower().startswith(("<!doctype", "<html")):
        raise UploadRefused(f"{filename}: a web page, not an export; download the export again")
    return "text"


def private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)
    return path


def write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


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
