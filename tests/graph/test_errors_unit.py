"""Error mapping: every httpx exception is mapped on purpose; Graph error JSON keeps its fields."""

from __future__ import annotations

import httpx
import pytest

from gradesync.errors import (
    AuthError,
    ExitCode,
    GraphError,
    GraphUnreachableError,
    NetworkError,
    TerminalGraphError,
    TransientGraphError,
)
from gradesync.graph import map_graph_error, map_transport_error
from gradesync.graph.errors import TRANSPORT_ERRORS


def _httpx_exception_classes() -> list[type[Exception]]:
    exported = [getattr(httpx, name) for name in httpx.__all__]
    found = {c for c in exported if isinstance(c, type) and issubclass(c, Exception)}
    # and anything deriving from them that httpx defines but does not export
    stack = list(found)
    while stack:
        for sub in stack.pop().__subclasses__():
            if sub.__module__.startswith("httpx") and sub not in found:
                found.add(sub)
                stack.append(sub)
    return sorted(found, key=lambda c: c.__name__)


def test_every_httpx_exception_class_is_mapped_explicitly():
    classes = _httpx_exception_classes()
    assert len(classes) > 20  # the discovery works
    unmapped = [c.__name__ for c in classes if c not in TRANSPORT_ERRORS]
    assert unmapped == [], f"map these httpx exceptions in gradesync/graph/errors.py: {unmapped}"


@pytest.mark.parametrize(
    ("exc", "kind", "code", "sent"),
    [
        (httpx.ConnectError("refused"), GraphUnreachableError, "graph-connection-failed", False),
        (httpx.ConnectTimeout("t"), GraphUnreachableError, "graph-timeout", False),
        (httpx.PoolTimeout("t"), TransientGraphError, "graph-timeout", False),
        (httpx.ReadTimeout("t"), TransientGraphError, "graph-timeout", True),
        (httpx.WriteTimeout("t"), TransientGraphError, "graph-timeout", True),
        (httpx.ReadError("reset"), TransientGraphError, "graph-connection-dropped", True),
        (httpx.RemoteProtocolError("closed"), TransientGraphError, "graph-connection-dropped", True),
        (httpx.LocalProtocolError("bad"), TerminalGraphError, "graph-client-protocol-error", False),
        (httpx.UnsupportedProtocol("ftp"), TerminalGraphError, "graph-bad-url", False),
        (httpx.TooManyRedirects("loop"), TerminalGraphError, "graph-too-many-redirects", True),
    ],
)
def test_transport_errors_are_transient_or_terminal(exc, kind, code, sent):
    err = map_transport_error(exc, method="PATCH", url="/education/x")
    assert type(err) is kind
    assert err.code == code
    assert err.sent is sent
    assert "PATCH /education/x" in err.message
    # "Graph unreachable" is transient while retried and a NetworkError (exit 7) once given up
    assert isinstance(err, NetworkError) is (kind is GraphUnreachableError)
    if kind is GraphUnreachableError:
        assert isinstance(err, TransientGraphError) and err.exit_code == 7


def test_every_mapped_transient_class_retries_and_every_terminal_does_not():
    for cls, (transient, code, _sent) in TRANSPORT_ERRORS.items():
        try:
            exc = cls("x")
        except TypeError:  # classes needing extra arguments (HTTPStatusError, CookieConflict...)
            continue
        err = map_transport_error(exc, method="GET", url="/u")
        assert err.retryable is transient, cls
        assert err.code == code


GRAPH_400 = {
    "error": {
        "code": "badRequest",
        "message": "Points must not be negative.",
        "innerError": {"code": "invalidGrading", "date": "2024-05-01T10:00:00", "request-id": "rid-1"},
    }
}


def test_graph_error_json_keeps_code_inner_code_message_and_request_id():
    err = map_graph_error(400, GRAPH_400, {}, method="PATCH", url="/o/1")
    assert isinstance(err, TerminalGraphError)
    assert (err.status, err.graph_code, err.inner_code, err.request_id) == (
        400,
        "badRequest",
        "invalidGrading",
        "rid-1",
    )
    assert err.code == "graph-bad-request"
    assert "Points must not be negative." in err.message and "rid-1" in err.message
    assert err.as_dict()["inner_code"] == "invalidGrading"


def test_request_id_falls_back_to_the_header_and_bad_bodies_do_not_crash():
    for body in (None, "oops", [], {"error": "text"}, {"error": {"code": 5, "innerError": []}}):
        err = map_graph_error(404, body, {"Request-Id": "hdr-9"}, method="GET", url="/c")
        assert isinstance(err, TerminalGraphError)
        assert err.request_id == "hdr-9"
        assert err.code == "graph-not-found"


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_transient_statuses_carry_retry_after(status):
    err = map_graph_error(status, None, {"Retry-After": "0.249"}, method="GET", url="/c")
    assert isinstance(err, TransientGraphError)
    assert err.retry_after == pytest.approx(0.249)
    assert err.code == ("graph-throttled" if status == 429 else f"graph-unavailable-{status}")


def test_401_and_403_are_auth_errors_naming_the_permission():
    read = map_graph_error(403, None, {}, method="GET", url="/education/classes")
    write = map_graph_error(403, None, {}, method="PATCH", url="/o/1")
    expired = map_graph_error(
        401, {"error": {"code": "InvalidAuthenticationToken"}}, {}, method="GET", url="/"
    )
    for err in (read, write, expired):
        assert isinstance(err, AuthError)
        assert not isinstance(err, GraphError)
        assert err.exit_code == ExitCode.AUTH
    assert "EduAssignments.Read.All" in str(read) and "EduRoster.Read.All" in str(read)
    assert "EduAssignments.ReadWrite.All" in str(write)
    assert expired.code == "auth-token-rejected" and read.code == "auth-permission-missing"
    assert expired.graph_code == "InvalidAuthenticationToken"


@pytest.mark.parametrize(
    ("status", "code"), [(409, "graph-conflict"), (424, "graph-http-424"), (302, "graph-http-302")]
)
def test_other_statuses_are_terminal(status, code):
    err = map_graph_error(status, None, None, method="POST", url="/o")
    assert isinstance(err, TerminalGraphError)
    assert err.code == code
