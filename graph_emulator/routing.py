"""The Graph routes the emulator serves and the value one Graph operation carries to its handler.

A route is a method, a URL template under the version root (``{id}`` = one path segment) and the
name of a :class:`graph_emulator.handlers.Resources` method. :func:`match` finds the route of a
request (400 for an unknown segment, 405 for a known path with another method).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from graph_emulator.answers import Answer, odata_error

VERSIONS = ("v1.0", "beta")
WRITE_METHODS = ("POST", "PATCH", "PUT", "DELETE")
PREFER_UNKNOWN_ENUMS = "include-unknown-enum-members"


class Route:
    def __init__(self, method: str, template: str, handler: str) -> None:
        self.method = method
        self.template = template
        pattern = re.escape(template).replace(r"\{id\}", "([^/]+)")
        self.regex = re.compile(f"^{pattern}$")
        self.handler = handler


_C = "/education/classes/{id}"
_A = _C + "/assignments/{id}"
_S = _A + "/submissions/{id}"
ROUTES = [
    Route("GET", "/education/classes", "list_classes"),
    Route("GET", _C, "get_class"),
    Route("GET", _C + "/members", "list_members"),
    Route("GET", _C + "/teachers", "list_teachers"),
    Route("GET", "/education/users", "list_users"),
    Route("GET", "/education/users/{id}", "get_user"),
    Route("GET", _C + "/assignments", "list_assignments"),
    Route("GET", _A, "get_assignment"),
    Route("GET", _A + "/submissions", "list_submissions"),
    Route("GET", _S, "get_submission"),
    Route("POST", _S + "/return", "return_submission"),
    Route("POST", _S + "/excuse", "excuse_submission"),
    Route("GET", _S + "/outcomes", "list_outcomes"),
    Route("POST", _S + "/outcomes", "create_outcome"),
    Route("GET", _S + "/outcomes/{id}", "get_outcome"),
    Route("PATCH", _S + "/outcomes/{id}", "patch_outcome"),
]
# The writes a teacher edit is scheduled against: PATCH/POST of an outcome, or excuse.
GRADE_WRITES = frozenset({"create_outcome", "patch_outcome", "excuse_submission"})
# Paths whose requests count against Graph's education *rostering* limit (classes, users, their
# members: "Microsoft Graph service-specific throttling limits", Education service limits); every
# other path here (assignments, submissions, outcomes) is the assignment service's.
_ROSTERING = re.compile(r"^/education/(users(/[^/]+)?|classes(/[^/]+(/members)?)?)/?$")


def limit_kind(rest: str) -> str:
    """``"rostering"`` or ``"assignments"``: which of Graph's limits a request under the version root
    counts against."""
    return "rostering" if _ROSTERING.match(rest) else "assignments"


@dataclass
class Ctx:
    """What one HTTP request (a single Graph request or a ``$batch`` envelope) carries."""

    seq: int
    now: float
    base: str  # "http://127.0.0.1:PORT" — nextLinks point here
    scope: str = ""  # the throttling scope: the app (the configured token, without a suffix)
    delay: float = 0.0
    drop: bool = False


@dataclass
class Call:
    """One Graph operation as a handler sees it: a single request or one ``$batch`` sub-request."""

    ctx: Ctx
    version: str
    rest: str  # the path under the version root, e.g. "/education/classes"
    params: dict[str, str]
    body: Any
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names: this operation's own

    @property
    def crid(self) -> str | None:
        return self.headers.get("client-request-id")

    @property
    def wants_unknown_enums(self) -> bool:
        """The operation carries ``Prefer: include-unknown-enum-members`` (among its preferences)."""
        prefs = (p.strip().lower() for p in self.headers.get("prefer", "").split(","))
        return PREFER_UNKNOWN_ENUMS in prefs


def split_version(path: str) -> tuple[str, str]:
    """``"/v1.0/education/classes"`` → ``("v1.0", "/education/classes")``."""
    parts = path.split("/", 2)
    version = parts[1] if len(parts) > 1 else ""
    rest = "/" + parts[2] if len(parts) > 2 else "/"
    return version, rest


def match(method: str, rest: str, crid: str | None) -> tuple[Route, tuple[str, ...]] | Answer:
    """The route and its ids for ``method rest``, or the error answer Graph gives."""
    hits = [(r, m) for r in ROUTES if (m := r.regex.match(rest))]
    if not hits:
        seg = rest.rstrip("/").rsplit("/", 1)[-1]
        return odata_error(400, f"Resource not found for the segment '{seg}'.", "BadRequest", crid)
    chosen = next(((r, m) for r, m in hits if r.method == method), None)
    if chosen is None:
        return odata_error(
            405, f"The method {method} is not allowed on this resource.", "methodNotAllowed", crid
        )
    return chosen[0], chosen[1].groups()


def route_name(method: str, path: str) -> str:
    """``batch`` for ``/{version}/$batch``, else the handler name of the route (or ``unknown``)."""
    _, rest = split_version(path)
    if rest == "/$batch":
        return "batch"
    return next((r.handler for r in ROUTES if r.method == method and r.regex.match(rest)), "unknown")


def template(rest: str) -> str:
    """The route template a path belongs to (for ``by_route`` stats), or ``<unknown>``."""
    return next((r.template for r in ROUTES if r.regex.match(rest)), "<unknown>")
