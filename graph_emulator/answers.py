"""Graph answers and errors: the :class:`Answer` value, OData error bodies, handler exceptions.

Error bodies follow Graph: ``{"error": {"code", "message", "innerError": {"code", "date",
"request-id", "client-request-id"}}}``, with ``request-id`` also in the headers. Education 404s for an
unknown outcome use the shape Graph's education service sends instead — a numeric code and no
``innerError`` (``{"error": {"code": "20241", "message": "Entity not found. Outcome id: ..."}}``,
microsoft-graph-docs issue #13704, "generate new page to get a single outcome").
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from graph_emulator.common import now_iso

ERROR_CODES = {
    400: "badRequest",
    401: "InvalidAuthenticationToken",
    403: "Forbidden",
    404: "itemNotFound",
    405: "methodNotAllowed",
    409: "conflict",
    424: "failedDependency",
    429: "tooManyRequests",
    500: "generalException",
    502: "badGateway",
    503: "serviceNotAvailable",
    504: "gatewayTimeout",
}
ERROR_MESSAGES = {
    429: "Too many requests; retry after the time given in Retry-After.",
    500: "An internal server error occurred.",
    502: "Bad gateway.",
    503: "The service is temporarily unavailable.",
    504: "The gateway timed out.",
}
ENTITY_NOT_FOUND = "20241"  # the education service's numeric code for an unknown entity


@dataclass
class Answer:
    """One Graph answer (a whole response or a batch sub-response)."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    applied: bool = False  # a write changed the tenant


def odata_error(
    status: int, message: str, inner: str | None = None, client_request_id: str | None = None
) -> Answer:
    rid = str(uuid.uuid4())
    body = {
        "error": {
            "code": ERROR_CODES.get(status, "badRequest"),
            "message": message,
            "innerError": {
                "code": inner or ERROR_CODES.get(status, "badRequest"),
                "date": now_iso()[:19],
                "request-id": rid,
                "client-request-id": client_request_id or rid,
            },
        }
    }
    return Answer(status, body, {"request-id": rid, "client-request-id": client_request_id or rid})


def education_error(status: int, code: str, message: str, client_request_id: str | None = None) -> Answer:
    """The education service's own error shape: numeric ``code``, no ``innerError``."""
    rid = str(uuid.uuid4())
    body = {"error": {"code": code, "message": message}}
    return Answer(status, body, {"request-id": rid, "client-request-id": client_request_id or rid})


class NotFound(Exception):
    """A handler's unknown id: 404 (``itemNotFound``, or ``code`` in the education shape)."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class Refused(Exception):
    """A handler's refusal with a status and an ``innerError`` code (400, 409 ...)."""

    def __init__(self, status: int, message: str, inner: str) -> None:
        super().__init__(message)
        self.status = status
        self.inner = inner
