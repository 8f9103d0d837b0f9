"""Seeded Graph answers that lie: well-formed HTTP, wrong content (off by default).

Faults (``faults.py``) make a request fail; lies make a *successful* answer untrustworthy, so the
client's checks are tested against a real server. Kinds:

``malformed_json``        a ``200`` whose body is cut in half (not JSON) — whole HTTP answers only
                          (a single request or a ``$batch`` envelope; the writes in it were applied)
``batch_missing_id``      a ``200`` ``$batch`` answer without one sub-response (that request ran)
``batch_duplicate_id``    a ``200`` ``$batch`` answer with one id twice, the copy claiming the opposite
                          (a 2xx copied as ``503``, an error copied as ``200`` with the body it would have)
``unknown_outcome_type``  an outcome of an unknown ``@odata.type``
                          (``#microsoft.graph.educationFutureOutcome``) carrying its own ``points``,
                          put *first* among the outcomes of every submission / outcomes listing
``bare_points``           ``points`` and ``publishedPoints`` of points outcomes as bare numbers
                          (the older beta shape ``{"points": 97}``)
``foreign_nextlink``      the collection's ``@odata.nextLink`` (added if there was none) on
                          ``foreign_host`` (default ``https://evil.example``) instead of the emulator
``nextlink_loop``         the ``@odata.nextLink`` is the URL of the page itself (an endless chain)
``huge_page``             ``huge_items`` (default 5000) invented items appended to an unfiltered
                          collection page (ghost submissions, users, assignments or classes: several MB)

Each rule is ``KIND=RATE`` (every eligible answer) or ``KIND@ROUTE=RATE`` (only that route; a rule
for the route wins over the plain one). ``ROUTE`` is a handler name of ``routing.ROUTES``
(``list_submissions``, ``list_members``, ``patch_outcome`` ...), ``batch`` for the ``$batch``
envelope, or any part of a handler name (``submissions``). ``RATE`` is a probability (``1``: always;
``KIND@ROUTE`` alone means always). Decisions come from one ``random.Random(seed)``, one draw per rule
with ``0 < RATE < 1`` and eligible answer, so a seed and a request sequence give the same lies.
``limit=N`` caps every kind at N lies (0: no cap).

CLI form: ``"seed=3,malformed_json=0.2,foreign_nextlink@list_submissions=1,huge_items=8000"``.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

Json = dict[str, Any]

KINDS = (
    "malformed_json",
    "batch_missing_id",
    "batch_duplicate_id",
    "unknown_outcome_type",
    "bare_points",
    "foreign_nextlink",
    "nextlink_loop",
    "huge_page",
)
FUTURE_OUTCOME = "#microsoft.graph.educationFutureOutcome"
POINTS_OUTCOME = "#microsoft.graph.educationPointsOutcome"
_SETTINGS = ("seed", "limit", "foreign_host", "huge_items")


@dataclass(frozen=True, slots=True)
class LieConfig:
    """Which lies to tell, where and how often (see the module docstring)."""

    rules: tuple[tuple[str, str | None, float], ...] = ()  # (kind, route or None, rate)
    seed: int = 0
    limit: int = 0
    foreign_host: str = "https://evil.example"
    huge_items: int = 5000

    def __post_init__(self) -> None:
        for kind, _route, rate in self.rules:
            if kind not in KINDS:
                raise ValueError(f"unknown lie {kind!r}; known: {', '.join(KINDS)}")
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"the rate of lie {kind!r} must be between 0 and 1, not {rate}")
        if self.limit < 0 or self.huge_items < 0:
            raise ValueError("limit and huge_items must be >= 0")
        if not self.foreign_host.startswith(("http://", "https://")):
            raise ValueError(f"foreign_host must be an http(s) origin, not {self.foreign_host!r}")
        object.__setattr__(self, "foreign_host", self.foreign_host.rstrip("/"))

    @classmethod
    def always(cls, kind: str, route: str | None = None, **kw: Any) -> LieConfig:
        """One lie on every eligible answer (of ``route`` if given)."""
        return cls(rules=((kind, route, 1.0),), **kw)

    @classmethod
    def parse(cls, spec: str) -> LieConfig:
        """``"seed=3,malformed_json=0.2,foreign_nextlink@list_submissions,huge_items=8000"``."""
        items: dict[str, Any] = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            key, sep, value = part.partition("=")
            items[key.strip()] = value.strip() if sep else "1"
        return cls.from_dict(items)

    @classmethod
    def from_dict(cls, items: dict[str, Any]) -> LieConfig:
        kw: dict[str, Any] = {}
        rules: list[tuple[str, str | None, float]] = []
        for key, value in items.items():
            if key in ("seed", "limit", "huge_items"):
                kw[key] = int(value)
            elif key == "foreign_host":
                kw[key] = str(value)
            elif key == "rules":
                rules += [(str(k), r, float(x)) for k, r, x in value]
            else:
                kind, _, route = key.partition("@")
                if kind not in KINDS:
                    raise ValueError(f"unknown lie setting {key!r}; known: {', '.join([*KINDS, *_SETTINGS])}")
                rules.append((kind, route or None, float(value)))
        return cls(rules=tuple(rules), **kw)

    @classmethod
    def from_value(cls, value: object) -> LieConfig | None:
        if value is None or isinstance(value, LieConfig):
            return value
        if isinstance(value, str):
            return cls.parse(value) if value.strip() else None
        if isinstance(value, dict):
            return cls.from_dict(value)
        raise ValueError(f"lies must be a spec string, an object or null, not {value!r}")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {f"{k}@{r}" if r else k: rate for k, r, rate in self.rules}
        out.update(
            seed=self.seed, limit=self.limit, foreign_host=self.foreign_host, huge_items=self.huge_items
        )
        return out


def _route_matches(rule_route: str, route: str) -> bool:
    return rule_route == route or (rule_route in route and route != "batch")


@dataclass
class LieInjector:
    """Decides and tells lies; ``counts`` holds how many of each kind were told."""

    config: LieConfig | None
    counts: Counter[str] = field(default_factory=Counter)
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.config.seed if self.config else 0)

    @property
    def active(self) -> bool:
        return bool(self.config and self.config.rules)

    def wants(self, kind: str, route: str) -> bool:
        """Whether to tell ``kind`` on this answer of ``route`` (counts it when yes)."""
        cfg = self.config
        if cfg is None:
            return False
        rate = None
        for k, r, x in cfg.rules:
            if k != kind:
                continue
            if r is not None and _route_matches(r, route):
                rate = x
                break
            if r is None and rate is None:
                rate = x
        if not rate:
            return False
        if cfg.limit and self.counts[kind] >= cfg.limit:
            return False
        if rate < 1.0 and self._rng.random() >= rate:
            return False
        self.counts[kind] += 1
        return True

    # ------------------------------------------------------------------ the lies
    def body(self, route: str, url: str, params: dict[str, str], body: Any) -> Any:
        """Lies in a 200 GET body. ``url`` is the absolute URL of this page (for the loop)."""
        if not isinstance(body, dict) or not self.active:
            return body
        collection = isinstance(body.get("value"), list)
        items = body["value"] if collection else [body]
        has_outcomes = route in ("list_outcomes", "get_outcome") or any(
            isinstance(it, dict) and isinstance(it.get("outcomes"), list) for it in items
        )
        if has_outcomes and route != "get_outcome" and self.wants("unknown_outcome_type", route):
            if route == "list_outcomes":
                body["value"] = [_future_outcome(), *items]
            else:
                for it in items:
                    if isinstance(it.get("outcomes"), list):
                        it["outcomes"] = [_future_outcome(), *it["outcomes"]]
        if has_outcomes and self.wants("bare_points", route):
            for it in body["value"] if collection else [body]:
                for o in [it] if route in ("list_outcomes", "get_outcome") else it.get("outcomes") or []:
                    _bare(o)
        if not collection:
            return body
        unfiltered = "$filter" not in params and "$skiptoken" not in params
        if unfiltered and self._ghost_kind(route) and self.wants("huge_page", route):
            body["value"] = body["value"] + _ghosts(route, self.config.huge_items)  # type: ignore[union-attr]
        if self.wants("foreign_nextlink", route):
            cfg = self.config
            assert cfg is not None
            link = body.get("@odata.nextLink") or url
            path = link.split("://", 1)[-1].split("/", 1)[-1]
            body["@odata.nextLink"] = f"{cfg.foreign_host}/{path}"
        elif self.wants("nextlink_loop", route):
            body["@odata.nextLink"] = url
        return body

    @staticmethod
    def _ghost_kind(route: str) -> bool:
        return route in ("list_submissions", "list_members", "list_users", "list_assignments", "list_classes")

    def batch(self, responses: list[Json]) -> list[Json]:
        """Lies in a 200 ``$batch`` answer (the requests all ran)."""
        if not responses:
            return responses
        if self.wants("batch_missing_id", "batch"):
            victim = self._rng.randrange(len(responses))
            responses = responses[:victim] + responses[victim + 1 :]
        if responses and self.wants("batch_duplicate_id", "batch"):
            orig = responses[self._rng.randrange(len(responses))]
            copy: Json = {"id": orig["id"], "headers": {"Content-Type": "application/json"}}
            if 200 <= int(orig.get("status", 0)) < 300:
                copy["status"] = 503
                copy["body"] = {"error": {"code": "serviceNotAvailable", "message": "Service unavailable."}}
            else:
                copy["status"] = 200
                copy["body"] = orig.get("body")
            responses = [*responses, copy]
            self._rng.shuffle(responses)
        return responses

    def malformed(self, route: str) -> bool:
        return self.wants("malformed_json", route)


def truncate(raw: bytes) -> bytes:
    """A JSON document cut in half: never valid JSON (an object or array loses its closing bracket)."""
    return raw[: max(1, len(raw) // 2)]


def _future_outcome() -> Json:
    return {
        "@odata.type": FUTURE_OUTCOME,
        "id": "future-" + str(uuid.uuid4()),
        "lastModifiedDateTime": "2099-01-01T00:00:00Z",
        "points": {"@odata.type": "#microsoft.graph.educationAssignmentPointsGrade", "points": 4242.0},
        "futureField": {"nested": [1, 2, 3]},
    }


def _bare(outcome: Any) -> None:
    if not isinstance(outcome, dict) or outcome.get("@odata.type") != POINTS_OUTCOME:
        return
    for key in ("points", "publishedPoints"):
        grade = outcome.get(key)
        if isinstance(grade, dict):
            outcome[key] = grade.get("points")


def _ghosts(route: str, n: int) -> list[Json]:
    """``n`` invented items for a collection: ids nobody's input can name."""
    out: list[Json] = []
    for i in range(n):
        gid = f"ghost-{route}-{i:06d}"
        if route == "list_submissions":
            out.append(
                {
                    "id": gid,
                    "status": "working",
                    "recipient": {
                        "@odata.type": "#microsoft.graph.educationSubmissionIndividualRecipient",
                        "userId": f"ghost-user-{i:06d}",
                    },
                    "submittedDateTime": None,
                    "returnedDateTime": None,
                    "outcomes": [
                        {
                            "@odata.type": POINTS_OUTCOME,
                            "id": f"ghost-outcome-{i:06d}",
                            "lastModifiedDateTime": "2024-01-01T00:00:00Z",
                            "points": {
                                "@odata.type": "#microsoft.graph.educationAssignmentPointsGrade",
                                "points": float(i % 100),
                            },
                            "publishedPoints": None,
                        }
                    ],
                }
            )
        elif route in ("list_members", "list_users"):
            out.append(
                {
                    "id": gid,
                    "displayName": f"Ghost Student {i}",
                    "userPrincipalName": f"{gid}@ghost.invalid",
                    "mail": f"{gid}@ghost.invalid",
                    "primaryRole": "student",
                    "student": {"externalId": gid, "studentNumber": gid},
                }
            )
        elif route == "list_assignments":
            out.append(
                {
                    "id": gid,
                    "displayName": f"Ghost assignment {i}",
                    "status": "assigned",
                    "grading": {
                        "@odata.type": "#microsoft.graph.educationAssignmentPointsGradeType",
                        "maxPoints": 100,
                    },
                }
            )
        else:
            out.append({"id": gid, "displayName": f"Ghost class {i}", "externalId": gid})
    return out
