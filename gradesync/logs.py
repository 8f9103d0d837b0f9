"""Logging for unattended runs: stdlib ``logging`` configured once per run, text or JSON lines.

``setup_logging(...)`` attaches one handler (a file, or stderr for ``--log-file -``) to the root logger
and returns a :class:`LogSetup` whose ``close()`` puts everything back (tests run many commands in one
process). Every record passes a :class:`RedactionFilter` and every formatted line is redacted again:
known secret values (the access token, ``GRADESYNC_CLIENT_SECRET``, the certificate password, any
token the run obtains) and anything shaped like ``Bearer <token>`` become ``***`` — defence in
depth, since nothing in gradesync logs a secret on purpose.

Third-party loggers: ``httpx`` logs one INFO line per request (method, URL, status; never headers) —
let through only at DEBUG, as our own :class:`LoggingTransport` logs what an operator needs;
``httpcore``/``hpack``/``h2`` trace the wire (header-level events) and are held at WARNING whatever the
level; ``msal`` logs at the chosen level, redacted.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import httpx

__all__ = [
    "FORMATS",
    "LEVELS",
    "MIN_SECRET_LENGTH",
    "REDACTED",
    "SECRET_ENV",
    "WIRE_LOGGERS",
    "JsonFormatter",
    "LogSetup",
    "LoggingTransport",
    "RedactionFilter",
    "Redactor",
    "TextFormatter",
    "http_log",
    "log",
    "logging_transport",
    "redacting",
    "setup_logging",
]

log = logging.getLogger("gradesync")

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
FORMATS = ("text", "json")
REDACTED = "***"
SECRET_ENV = ("GRADESYNC_ACCESS_TOKEN", "GRADESYNC_CLIENT_SECRET", "GRADESYNC_CERTIFICATE_PASSWORD")
# Loggers that trace HTTP at header level: never below WARNING, whatever --log-level says.
WIRE_LOGGERS = ("httpcore", "hpack", "h2", "urllib3")
MIN_SECRET_LENGTH = 4  # shorter values would redact ordinary words; no real secret is this short
_BEARER = re.compile(r"(?i)\b(bearer)(\s+)[A-Za-z0-9\-._~+/]+=*")
# "Authorization: X", "'authorization': 'X'", "(b'Authorization', b'X')" — the value, whatever its scheme.
_AUTH_HEADER = re.compile(
    r"(?i)(['\"]?authorization['\"]?\s*[:=,]\s*\(?\s*(?:b(?=['\"]))?['\"]?)([^'\"\s,)]+(?:\s+[^'\"\s,)]+)?)"
)
# LogRecord attributes that are not "extra" fields.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "run_id",
}


class Redactor:
    """Replaces known secret values (and bearer tokens by shape) in text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        for s in secrets:
            self.add(s)

    def add(self, secret: str | None) -> None:
        if secret and len(secret.strip()) >= MIN_SECRET_LENGTH:
            self._secrets.add(secret.strip())

    @property
    def secrets(self) -> frozenset[str]:
        return frozenset(self._secrets)

    def __call__(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):  # longest first: no partial leftovers
            if secret in text:
                text = text.replace(secret, REDACTED)
        text = _BEARER.sub(rf"\1\2{REDACTED}", text)
        return _AUTH_HEADER.sub(rf"\1{REDACTED}", text)

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> Redactor:
        env = os.environ if environ is None else environ
        return cls(env.get(name, "") for name in SECRET_ENV)


class RedactionFilter(logging.Filter):
    """Formats each record's message once and redacts it (and string extras) before any handler sees it."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self.redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad %-format in a third-party record: keep the raw template
            message = str(record.msg)
        record.msg, record.args = self.redact(message), None
        for key, value in list(vars(record).items()):
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, self.redact(value))
        return True


class _RunIdFilter(logging.Filter):
    def __init__(self, run_id: str | None) -> None:
        super().__init__()
        self.run_id = run_id

    def filter(self, record: logging.LogRecord) -> bool:
        record.run_id = self.run_id
        return True


def _ts(record: logging.LogRecord) -> str:
    when = datetime.fromtimestamp(record.created, UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class TextFormatter(logging.Formatter):
    """``2025-01-31T02:00:00.123Z INFO gradesync.run: message key=value ...`` — redacted as a whole."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(f"{k}={v}" for k, v in _extras(record).items())
        line = f"{_ts(record)} {record.levelname} {record.name}: {record.getMessage()}"
        if extras:
            line += f" [{extras}]"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return self.redact(line)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, run_id, then the record's extra fields."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": _ts(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "run_id": getattr(record, "run_id", None),
        }
        for key, value in _extras(record).items():
            data.setdefault(key, value)
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return self.redact(json.dumps(data, default=str, ensure_ascii=False))


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


@dataclass
class LogSetup:
    """What :func:`setup_logging` changed, so that :meth:`close` can undo it."""

    handler: logging.Handler
    redactor: Redactor
    path: Path | None
    _saved: dict[str, int] = field(default_factory=dict)

    def close(self) -> None:
        if self.redactor in _active:
            _active.remove(self.redactor)
        root = logging.getLogger()
        root.removeHandler(self.handler)
        self.handler.close()
        for name, level in self._saved.items():
            logging.getLogger(name).setLevel(level)


def setup_logging(
    *,
    level: str = "INFO",
    fmt: str = "text",
    file: str | Path | None = None,
    run_id: str | None = None,
    redactor: Redactor | None = None,
    stream: TextIO | None = None,
) -> LogSetup:
    """Log records at ``level`` and above to ``file`` (``"-"`` or None with ``stream``: that stream,
    default stderr) as ``fmt`` lines, tagged with ``run_id``, redacted by ``redactor``
    (default: the secrets in the environment)."""
    level = level.upper()
    if level not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}")
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}")
    redact = redactor or Redactor.from_environment()
    path: Path | None = None
    handler: logging.Handler
    if file is None or str(file) == "-":
        handler = logging.StreamHandler(stream or sys.stderr)
    else:
        path = Path(file)
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(getattr(logging, level))
    handler.addFilter(_RunIdFilter(run_id))
    handler.addFilter(RedactionFilter(redact))
    handler.setFormatter(JsonFormatter(redact) if fmt == "json" else TextFormatter(redact))
    root = logging.getLogger()
    setup = LogSetup(handler, redact, path)
    numeric = getattr(logging, level)
    # Levels are set on the loggers we care about, not on the root: other libraries keep WARNING.
    levels = dict.fromkeys(WIRE_LOGGERS, logging.WARNING)
    levels["httpx"] = logging.DEBUG if numeric <= logging.DEBUG else logging.WARNING
    levels["gradesync"] = numeric
    levels["msal"] = numeric
    for name, new_level in levels.items():
        logger = logging.getLogger(name)
        setup._saved[name] = logger.level
        logger.setLevel(new_level)
    root.addHandler(handler)
    _active.append(redact)
    return setup


# --- HTTP: what was sent to Graph, without headers ------------------------------------------------
http_log = logging.getLogger("gradesync.http")


class LoggingTransport(httpx.BaseTransport):
    """Wraps an httpx transport: logs each Graph request's method, path and status (never a header or
    a body). ``$batch`` envelopes and throttling (429) or server errors (5xx) are INFO/WARNING; the rest
    is DEBUG."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        started = time.monotonic()
        path = request.url.path
        try:
            response = self.inner.handle_request(request)
        except httpx.TransportError as e:
            http_log.warning(
                "graph %s %s failed: %s", request.method, path, type(e).__name__, extra={"path": path}
            )
            raise
        ms = round((time.monotonic() - started) * 1000)
        status = response.status_code
        extra = {"method": request.method, "path": path, "status": status, "ms": ms}
        if status == 429 or status >= 500:
            retry_after = response.headers.get("Retry-After")
            http_log.warning(
                "graph %s %s -> %s%s",
                request.method,
                path,
                status,
                f" (Retry-After {retry_after}s)" if retry_after else "",
                extra={**extra, "retry_after": retry_after},
            )
        elif path.endswith("/$batch"):
            http_log.info("graph $batch sent -> %s", status, extra=extra)
        else:
            http_log.debug("graph %s %s -> %s", request.method, path, status, extra=extra)
        return response

    def close(self) -> None:
        self.inner.close()


def logging_transport(max_in_flight: int = 4) -> LoggingTransport:
    """The transport :func:`gradesync.cli.common.graph_client` uses: httpx's default one (same pool limits
    the Graph client would set), logged."""
    limits = httpx.Limits(max_connections=max_in_flight + 2, max_keepalive_connections=max_in_flight + 2)
    return LoggingTransport(httpx.HTTPTransport(limits=limits))


# --- tokens obtained during the run join the redaction list ----------------------------------------
_active: list[Redactor] = []


class redacting:
    """Wrap a token provider: every token it hands out is added to the active log redactors (a token
    MSAL obtains is in no environment variable, yet must never reach the log)."""

    def __init__(self, provider: Callable[..., str]) -> None:
        self._provider = provider

    def __call__(self, *, force_refresh: bool = False) -> str:
        # force_refresh (the Graph client after a 401) is passed on only when asked for
        token = self._provider(force_refresh=True) if force_refresh else self._provider()
        for redactor in _active:
            redactor.add(token)
        return token

    def __repr__(self) -> str:
        return repr(self._provider)
