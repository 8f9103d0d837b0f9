"""Graph failures → gradesync errors, in exactly two functions.

* :func:`map_graph_error` — an HTTP error answer (a whole response or a ``$batch`` sub-response:
  status, Graph's OData error JSON, headers) → :class:`~gradesync.errors.GraphError` subclass.
* :func:`map_transport_error` — an ``httpx`` exception → :class:`~gradesync.errors.GraphError`
  subclass, through the table :data:`TRANSPORT_ERRORS`, which names *every* exception class httpx
  exports (``tests/graph/test_errors.py`` fails when httpx grows one that is not listed).

The resulting tree (retry code acts on the type alone)::

    AuthError                 401, 403 (exit 3); names the permission that is probably missing
    TransientGraphError       429, 500, 502, 503, 504, timeouts, dropped connections, malformed
                              JSON in a 2xx, a batch answer that misses a request, a 401 whose
                              token was just renewed (``auth-token-renewed``: resend at once)
    └── GraphUnreachableError no connection at all (DNS, refused, TLS, proxy, connect timeout);
                              also a NetworkError: once retries are exhausted it is exit 7
    TerminalGraphError        any other 4xx, a foreign or looping nextLink, an oversized answer,
                              client-side misuse (bad URL, protocol error on our side)

Messages never contain the bearer token: only the method, the URL (query string included, which
holds no secret) and Graph's own error fields are formatted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from gradesync.errors import (
    AuthError,
    GraphAuthError,
    GraphError,
    GraphUnreachableError,
    TerminalGraphError,
    TransientGraphError,
)
from gradesync.graph.retry import parse_retry_after

__all__ = [
    "MAYBE_SENT",
    "NOT_SENT",
    "READ_PERMISSIONS",
    "TRANSIENT_STATUSES",
    "TRANSPORT_ERRORS",
    "UNREACHABLE",
    "WRITE_PERMISSION",
    "HeldBack",
    "foreign_link",
    "held_back",
    "is_token_rejected",
    "malformed_answer",
    "map_graph_error",
    "map_transport_error",
    "mark_sent",
    "missing_sub_response",
    "next_link_loop",
    "token_renewed",
    "too_large",
    "was_sent",
]

TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})

READ_PERMISSIONS = "EduAssignments.Read.All and EduRoster.Read.All (application) or their delegated forms"
WRITE_PERMISSION = "EduAssignments.ReadWrite.All (application) or EduAssignments.ReadWrite (delegated)"


# Whether a transport failure can have reached the server. ``False`` only for failures before a
# single byte of the request was sent (no connection could be made, no pool slot): a POST that
# failed that way was certainly not applied and may be resent.
NOT_SENT = "not-sent"
MAYBE_SENT = "maybe-sent"

# Every exception class httpx exports → (transient?, code, whether the request may have been sent).
# Exact classes, not just bases: the completeness test compares this table with ``httpx.__all__``.
TRANSPORT_ERRORS: dict[type[Exception], tuple[bool, str, str]] = {
    # timeouts
    httpx.ConnectTimeout: (True, "graph-timeout", NOT_SENT),
    httpx.PoolTimeout: (True, "graph-timeout", NOT_SENT),
    httpx.ReadTimeout: (True, "graph-timeout", MAYBE_SENT),
    httpx.WriteTimeout: (True, "graph-timeout", MAYBE_SENT),
    httpx.TimeoutException: (True, "graph-timeout", MAYBE_SENT),
    # connections refused, reset, dropped
    httpx.ConnectError: (True, "graph-connection-failed", NOT_SENT),
    httpx.ReadError: (True, "graph-connection-dropped", MAYBE_SENT),
    httpx.WriteError: (True, "graph-connection-dropped", MAYBE_SENT),
    httpx.CloseError: (True, "graph-connection-dropped", MAYBE_SENT),
    httpx.NetworkError: (True, "graph-connection-dropped", MAYBE_SENT),
    httpx.RemoteProtocolError: (True, "graph-connection-dropped", MAYBE_SENT),
    httpx.ProxyError: (True, "graph-proxy-error", MAYBE_SENT),
    httpx.TransportError: (True, "graph-transport-error", MAYBE_SENT),
    httpx.DecodingError: (True, "graph-malformed-response", MAYBE_SENT),
    # our side: a bug or a misconfiguration, retrying cannot help
    httpx.LocalProtocolError: (False, "graph-client-protocol-error", NOT_SENT),
    httpx.ProtocolError: (False, "graph-client-protocol-error", MAYBE_SENT),
    httpx.UnsupportedProtocol: (False, "graph-bad-url", NOT_SENT),
    httpx.InvalidURL: (False, "graph-bad-url", NOT_SENT),
    httpx.TooManyRedirects: (False, "graph-too-many-redirects", MAYBE_SENT),
    httpx.HTTPStatusError: (False, "graph-http-status", MAYBE_SENT),
    httpx.CookieConflict: (False, "graph-client-error", NOT_SENT),
    httpx.StreamConsumed: (False, "graph-client-error", MAYBE_SENT),
    httpx.StreamClosed: (False, "graph-client-error", MAYBE_SENT),
    httpx.ResponseNotRead: (False, "graph-client-error", MAYBE_SENT),
    httpx.RequestNotRead: (False, "graph-client-error", NOT_SENT),
    httpx.StreamError: (False, "graph-client-error", MAYBE_SENT),
    httpx.RequestError: (True, "graph-transport-error", MAYBE_SENT),
    httpx.HTTPError: (False, "graph-client-error", MAYBE_SENT),
}


# Failures that mean "Graph cannot be reached from here" (no connection was ever established):
# GraphUnreachableError, transient while retried, exit 7 (NetworkError) once retries are exhausted.
UNREACHABLE = frozenset({httpx.ConnectError, httpx.ConnectTimeout, httpx.ProxyError})


def mark_sent(err: GraphError, sent: bool) -> GraphError:
    """Record on ``err`` whether its request may have reached Graph (read by :func:`was_sent`)."""
    err.sent = sent  # type: ignore[attr-defined]
    return err


def was_sent(err: BaseException) -> bool:
    """Whether the failed request may have reached Graph; unknown means yes (the safe answer)."""
    return bool(getattr(err, "sent", True))


def _lookup(exc: BaseException) -> tuple[bool, str, str]:
    for cls in type(exc).__mro__:
        if cls in TRANSPORT_ERRORS:
            return TRANSPORT_ERRORS[cls]
    return (False, "graph-client-error", MAYBE_SENT)


def map_transport_error(exc: Exception, *, method: str, url: str) -> GraphError:
    """The one place an ``httpx`` exception becomes a gradesync error.

    The result's ``sent`` attribute says whether the request may have reached the server
    (``False`` only when no connection was ever made), which decides if a POST may be resent.
    The exception's own text is kept (it holds no header values, so no token).
    """
    transient, code, sent = _lookup(exc)
    kind = type(exc).__name__
    detail = str(exc) or kind
    message = f"{method} {url}: {kind}: {detail}"
    err: GraphError
    if any(cls in UNREACHABLE for cls in type(exc).__mro__):
        err = GraphUnreachableError(
            message,
            code=code,
            hint="Graph could not be reached (DNS, connection refused, TLS or proxy), even after "
            "retries; check the network, the proxy and GRADESYNC_GRAPH_URL, then run again — "
            "an interrupted apply finishes with --resume",
        )
    elif transient:
        err = TransientGraphError(
            message,
            code=code,
            hint="the network or Graph did not answer, even after retries ([graph] max_attempts, "
            "max_retry_seconds); check the connection and GRADESYNC_GRAPH_URL, then run again",
        )
    else:
        err = TerminalGraphError(message, code=code, hint="This looks like a gradesync bug or a bad URL.")
    return mark_sent(err, sent != NOT_SENT)


def _error_fields(body: Any) -> tuple[str | None, str | None, str | None, str | None]:
    """(code, message, innerError.code, innerError.request-id) from an OData error body, tolerantly."""
    if not isinstance(body, Mapping):
        return None, None, None, None
    error = body.get("error")
    if not isinstance(error, Mapping):
        return None, None, None, None
    inner = error.get("innerError") or error.get("innererror")
    inner = inner if isinstance(inner, Mapping) else {}

    def text(value: Any) -> str | None:
        return value if isinstance(value, str) and value else None

    return (
        text(error.get("code")),
        text(error.get("message")),
        text(inner.get("code")),
        text(inner.get("request-id")) or text(inner.get("requestId")),
    )


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def map_graph_error(
    status: int,
    body: Any,
    headers: Mapping[str, str] | None,
    *,
    method: str,
    url: str,
) -> GraphError | AuthError:
    """The one place a Graph error answer (whole response or sub-response) becomes a gradesync error.

    Keeps Graph's ``error.code``, ``innerError.code``, ``message`` and ``request-id`` (from the
    inner error, else the ``request-id`` header). 429/5xx → :class:`TransientGraphError` with the
    parsed ``Retry-After`` (seconds, or ``None``); 401/403 → :class:`GraphAuthError` naming the
    permission a read or write needs; any other status → :class:`TerminalGraphError`.
    """
    graph_code, graph_message, inner_code, request_id = _error_fields(body)
    request_id = request_id or _header(headers, "request-id") or _header(headers, "client-request-id")
    what = f"{method} {url}"
    said = f"{graph_code or 'no error code'}"
    if inner_code:
        said += f"/{inner_code}"
    said += f": {graph_message}" if graph_message else ""
    suffix = f" (request-id {request_id})" if request_id else ""
    hint: str | None
    if status in (401, 403):
        writes = method.upper() not in ("GET", "HEAD")
        needed = WRITE_PERMISSION if writes else READ_PERMISSIONS
        if status == 401:
            message = f"Graph refused the access token ({status}) for {what} — {said}{suffix}"
            hint = (
                "The token is missing, expired or for another tenant or audience: get a new one "
                f"(the app also needs {needed})."
            )
            code = "auth-token-rejected"
        else:
            message = f"Graph denied {what} ({status}) — {said}{suffix}"
            hint = f"The app probably lacks the permission {needed}; an admin must grant and consent it."
            code = "auth-permission-missing"
        return GraphAuthError(
            message,
            status=status,
            graph_code=graph_code,
            inner_code=inner_code,
            request_id=request_id,
            code=code,
            hint=hint,
        )
    message = f"Graph answered {status} to {what} — {said}{suffix}"
    if status in TRANSIENT_STATUSES:
        retry_after = parse_retry_after(_header(headers, "retry-after"))
        code = "graph-throttled" if status == 429 else f"graph-unavailable-{status}"
        return TransientGraphError(
            message,
            status=status,
            graph_code=graph_code,
            inner_code=inner_code,
            request_id=request_id,
            retry_after=retry_after,
            code=code,
            hint="Graph stayed busy or unavailable through every retry ([graph] max_attempts, "
            "max_retry_seconds); run again later — an interrupted apply finishes with --resume",
        )
    if status == 404:
        code, hint = "graph-not-found", "The object no longer exists in Teams, or the id is wrong."
    elif status == 409:
        code, hint = "graph-conflict", "The object changed or already exists; re-read it before retrying."
    elif status == 400:
        code, hint = "graph-bad-request", "Graph refused the request as invalid; see Graph's code above."
    else:
        code, hint = f"graph-http-{status}", None
    return TerminalGraphError(
        message,
        status=status,
        graph_code=graph_code,
        inner_code=inner_code,
        request_id=request_id,
        code=code,
        hint=hint,
    )


# ---------------------------------------------------------------- errors the client detects itself
# Every error the Graph client raises is built here (the client builds none itself).


def malformed_answer(what: str, detail: str) -> TransientGraphError:
    """A 2xx (or a 200 sub-response) whose body is not the JSON expected: retried like a 5xx."""
    err = TransientGraphError(
        f"{what}: Graph's answer is not the JSON expected ({detail})",
        code="graph-malformed-response",
        hint="Graph or a proxy between us kept sending broken answers, even after retries; "
        "check for a proxy rewriting responses, then run again",
    )
    mark_sent(err, True)
    return err


def foreign_link(target: httpx.URL, base: httpx.URL) -> TerminalGraphError:
    """A link (nextLink or request URL) off the configured origin: never followed, no token sent."""
    return TerminalGraphError(
        f"Graph pointed to {target.scheme}://{target.host}:{target.port or ''} "
        f"instead of the configured {base.scheme}://{base.host}; "
        "the link was not followed and no token was sent there",
        code="graph-foreign-nextlink",
        hint="Check GRADESYNC_GRAPH_URL and any proxy rewriting Graph's answers.",
    )


def next_link_loop(url: str, why: str) -> TerminalGraphError:
    return TerminalGraphError(
        f"GET {url}: Graph's @odata.nextLink chain loops ({why}); paging stopped",
        code="graph-nextlink-loop",
        hint="Graph or a proxy is misbehaving; retry later or report it with this URL.",
    )


def too_large(method: str, url: str, limit: int) -> TerminalGraphError:
    err = TerminalGraphError(
        f"{method} {url}: Graph's answer is larger than {limit} bytes; it was not read",
        code="graph-response-too-large",
        hint="Ask for smaller pages ($top, $select) or raise max_response_bytes.",
    )
    mark_sent(err, True)
    return err


def missing_sub_response(method: str, url: str, request_id: str, why: str) -> TransientGraphError:
    """A ``$batch`` answer without exactly one usable response for a request: never guessed."""
    err = TransientGraphError(
        f"{method} {url}: the $batch answer had {why} for request id {request_id!r}",
        code="graph-batch-missing-response",
        hint="Graph's batch answer was incomplete; the request is retried if that is safe.",
    )
    mark_sent(err, True)
    return err


def token_renewed(rejected: GraphError | AuthError) -> TransientGraphError:
    """A 401 after which the token provider handed out a fresh token: resend at once (wait 0).

    Not applied by Graph (it refused the token), yet a create answered so inside a ``$batch`` is
    still reported ``fate_unknown`` by the client rather than resent blindly.
    """
    status = getattr(rejected, "status", None) or 401
    err = TransientGraphError(
        f"{rejected.message} — a fresh token was requested and the request is sent again",
        status=status,
        graph_code=getattr(rejected, "graph_code", None),
        inner_code=getattr(rejected, "inner_code", None),
        request_id=getattr(rejected, "request_id", None),
        retry_after=0.0,
        code="auth-token-renewed",
        hint="Graph refused the access token twice in a row; check the sign-in (gradesync auth status).",
    )
    mark_sent(err, True)
    return err


class HeldBack(TerminalGraphError):
    """A request the caller's gate kept from leaving (its deadline, or the read it rests on went
    stale while it waited for its slot): never sent, so never applied; the caller decides again."""

    code = "graph-held-back"


def held_back(method: str, url: str, why: str) -> HeldBack:
    err = HeldBack(f"{method} {url}: not sent ({why})")
    mark_sent(err, False)
    return err


def is_token_rejected(err: BaseException) -> bool:
    """A 401 from Graph (the token, not a permission: 403 is final)."""
    return isinstance(err, GraphAuthError) and err.status == 401
