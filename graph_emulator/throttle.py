"""Token-bucket throttling per scope (the app = the bearer token), like Graph's education services.

Graph documents two limits that matter here ("Microsoft Graph service-specific throttling limits"):
the assignment service's (assignments, submissions, outcomes) and the education rostering APIs'
(classes, users, class members: 35,000 requests per 10 s per app per tenant). Each is its own set
of buckets (:func:`graph_emulator.routing.limit_kind` says which a request counts against);
``rostering_per_10s=None`` makes rostering reads count against the assignment buckets instead.

Two buckets per assignment scope must both hold a token: ``per_10s`` over ``short_window`` seconds
and ``per_hour`` over ``long_window`` seconds (Graph: 350 per 10 s and 10,000 per hour per app); the
rostering scope has one, ``rostering_per_10s`` over ``rostering_window`` seconds.
A throttled request gets ``Retry-After`` = the time until both buckets hold a token again, and the
scope stays blocked until then: requests that arrive earlier are throttled again, cost quota and
are counted as *early retries* (what Microsoft's Dev Proxy flags).

Graph is known to throttle below its published limits, and a tenant's real limit can change while a
run goes on (other apps share it). To test a client's pacing against that, the limits can be set
lower and can change after a number of requests::

    {"per_10s": 175, "per_hour": 10000,                   # start below Graph's 350 / 10 s
     "change_after_requests": 500, "then_per_10s": 100}   # from the 500th request: 100 / 10 s

``change_after_requests`` counts every request the throttler decides on (all scopes, throttled ones
included); from that request on, ``then_per_10s`` / ``then_per_hour`` (each defaulting to the first limit)
apply, and a scope's buckets are cut to the new size at once. CLI: ``--throttle
per_10s=175,change_after_requests=500,then_per_10s=100``. ``Throttler.phase_info()`` (in the stats'
``throttle_state``) says which limits are in force.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ThrottleConfig:
    """Limits per scope. ``enabled=False`` (``ThrottleConfig.off()``) lets everything through."""

    per_10s: int = 350
    per_hour: int = 10_000
    short_window: float = 10.0  # seconds the per_10s budget refills over (tests shrink it)
    long_window: float = 3600.0
    enabled: bool = True
    change_after_requests: int | None = None  # after this many requests, the "then_" limits apply
    then_per_10s: int | None = None
    then_per_hour: int | None = None
    # education rostering (classes, users, members): its own limit; None: counted as assignments
    rostering_per_10s: int | None = 35_000
    rostering_window: float = 10.0

    def __post_init__(self) -> None:
        names = ("per_10s", "per_hour", "then_per_10s", "then_per_hour", "change_after_requests")
        for name in (*names, "rostering_per_10s"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"throttle {name} must be a whole number of requests, at least 1")
        if self.short_window <= 0 or self.long_window <= 0 or self.rostering_window <= 0:
            raise ValueError("throttle windows must be above 0 seconds")

    def limits(self, requests_seen: int) -> tuple[int, int]:
        """(per_10s, per_hour) in force after ``requests_seen`` requests."""
        if self.change_after_requests is not None and requests_seen >= self.change_after_requests:
            return (self.then_per_10s or self.per_10s, self.then_per_hour or self.per_hour)
        return (self.per_10s, self.per_hour)

    @classmethod
    def graph(cls) -> ThrottleConfig:
        """Graph's documented assignment-service limits per app per tenant."""
        return cls()

    @classmethod
    def off(cls) -> ThrottleConfig:
        return cls(enabled=False)

    @classmethod
    def from_value(cls, value: object) -> ThrottleConfig:
        """From ``"graph"``, ``"off"``, a dict of fields, or a ThrottleConfig."""
        if isinstance(value, ThrottleConfig):
            return value
        if value is None or value == "off":
            return cls.off()
        if value == "graph":
            return cls.graph()
        if isinstance(value, dict):
            unknown = set(value) - set(cls.__dataclass_fields__)
            if unknown:
                raise ValueError(
                    f"unknown throttle setting(s) {sorted(unknown)}; "
                    f"known: {sorted(cls.__dataclass_fields__)}"
                )
            return cls(**value)
        if isinstance(value, str) and "=" in value:
            return cls.parse(value)
        raise ValueError(f"throttle must be 'graph', 'off' or an object of limits, not {value!r}")

    @classmethod
    def parse(cls, spec: str) -> ThrottleConfig:
        """``"graph"``, ``"off"`` or ``"per_10s=175,change_after_requests=500,then_per_10s=100"``."""
        if spec in ("graph", "off"):
            return cls.from_value(spec)
        out: dict[str, object] = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            key, sep, value = (x.strip() for x in part.partition("="))
            if not sep:
                raise ValueError(f"bad throttle part {part!r}: use name=value (e.g. per_10s=175)")
            if key == "enabled":
                out[key] = value.lower() in ("1", "true", "yes", "on")
            elif key in ("short_window", "long_window", "rostering_window"):
                out[key] = float(value)
            elif key == "rostering_per_10s" and value.lower() in ("none", "shared", "off"):
                out[key] = None
            else:
                out[key] = int(value)
        return cls.from_value(out)

    def to_dict(self) -> dict[str, object]:
        return {
            "per_10s": self.per_10s,
            "per_hour": self.per_hour,
            "short_window": self.short_window,
            "long_window": self.long_window,
            "enabled": self.enabled,
            "change_after_requests": self.change_after_requests,
            "then_per_10s": self.then_per_10s,
            "then_per_hour": self.then_per_hour,
            "rostering_per_10s": self.rostering_per_10s,
            "rostering_window": self.rostering_window,
        }


@dataclass(slots=True)
class _Scope:
    short: float
    long: float
    updated: float
    blocked_until: float = 0.0
    blocked_by: int = -1  # the HTTP request whose sub-request caused the block


@dataclass(slots=True)
class Decision:
    allowed: bool
    retry_after: float = 0.0
    early: bool = False  # arrived before a Retry-After this scope was given had elapsed


@dataclass
class Throttler:
    """Decides, per request, whether a scope may proceed. Time comes from the caller (``now``)."""

    config: ThrottleConfig = field(default_factory=ThrottleConfig.graph)
    _scopes: dict[str, _Scope] = field(default_factory=dict)
    requests_seen: int = 0  # every check() since the last reset (drives change_after_requests)

    def reset(self) -> None:
        self._scopes.clear()
        self.requests_seen = 0

    def phase_info(self) -> dict[str, object]:
        per_10s, per_hour = self.config.limits(self.requests_seen)
        changed = self.config.change_after_requests is not None and (
            self.requests_seen >= self.config.change_after_requests
        )
        return {
            "requests_seen": self.requests_seen,
            "changed": changed,
            "per_10s": per_10s,
            "per_hour": per_hour,
        }

    def _limits(self, kind: str) -> tuple[str, float, float, float, float]:
        """(scope suffix, short limit, short window, long limit, long window) for a request kind."""
        cfg = self.config
        if kind == "rostering" and cfg.rostering_per_10s is not None:
            return "|rostering", float(cfg.rostering_per_10s), cfg.rostering_window, math.inf, 1.0
        per_10s, per_hour = cfg.limits(self.requests_seen)
        return "", float(per_10s), cfg.short_window, float(per_hour), cfg.long_window

    def _scope(self, key: str, now: float, kind: str = "assignments") -> _Scope:
        suffix, short, short_window, long, long_window = self._limits(kind)
        sc = self._scopes.get(key + suffix)
        if sc is None:
            sc = _Scope(short=short, long=long, updated=now)
            self._scopes[key + suffix] = sc
        elapsed = max(0.0, now - sc.updated)
        sc.short = min(short, sc.short + elapsed * short / short_window)
        sc.long = min(long, sc.long + elapsed * long / long_window)
        sc.updated = now
        return sc

    def _wait(self, sc: _Scope, kind: str = "assignments") -> float:
        _, short, short_window, long, long_window = self._limits(kind)
        w_short = max(0.0, (1.0 - sc.short) * short_window / short)
        w_long = 0.0 if math.isinf(long) else max(0.0, (1.0 - sc.long) * long_window / long)
        return max(w_short, w_long)

    def block(self, key: str, now: float, seconds: float, http_seq: int, kind: str = "assignments") -> None:
        """Mark a scope blocked (also used for injected 429s that carry a Retry-After)."""
        sc = self._scope(key, now, kind)
        if now + seconds > sc.blocked_until:
            sc.blocked_until = now + seconds
            sc.blocked_by = http_seq

    def check(self, key: str, now: float, http_seq: int, kind: str = "assignments") -> Decision:
        """Consume one unit of ``kind``'s quota for ``key``; say whether the request may proceed."""
        cfg = self.config
        self.requests_seen += 1
        sc = self._scope(key, now, kind)
        early = now < sc.blocked_until and sc.blocked_by != http_seq
        if not cfg.enabled:
            return Decision(True, early=early)
        _, short, _, long, _ = self._limits(kind)
        if early:
            # An early retry is throttled again and still costs quota (bounded below).
            sc.short = max(sc.short - 1.0, -short)
            sc.long = max(sc.long - 1.0, -long)
            wait = max(sc.blocked_until - now, self._wait(sc, kind))
            sc.blocked_until = now + wait
            return Decision(False, retry_after=wait, early=True)
        if sc.short >= 1.0 and sc.long >= 1.0:
            sc.short -= 1.0
            sc.long -= 1.0
            return Decision(True)
        wait = max(self._wait(sc, kind), sc.blocked_until - now, 0.001)
        self.block(key, now, wait, http_seq, kind)
        return Decision(False, retry_after=wait)


def format_retry_after(seconds: float, form: str = "decimal") -> str:
    """Render a wait as Graph does: ``"3"``, ``"0.249"``, ``"0.25,120"`` (list).

    Rounded *up* to the millisecond (never below 1 ms), so a client that waits exactly this long is
    never an early retry.
    """
    seconds = max(math.ceil(round(seconds * 1000, 6)) / 1000, 0.001)
    if form == "seconds":
        return str(max(1, round(seconds + 0.4999)))
    text = f"{seconds:.3f}".rstrip("0").rstrip(".")
    if form == "list":
        return f"{text},{max(1, round(seconds * 4))}"
    return text
