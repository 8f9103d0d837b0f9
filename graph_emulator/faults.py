"""Seeded, reproducible fault injection.

Each Graph request (and, with ``scope`` ``sub``/``both``, each ``$batch`` sub-request) draws exactly
three numbers from one ``random.Random(seed)``: the fault, the latency jitter and the error status of
an *applied-then-error* fault. The same seed and the same request sequence give the same faults.

Kinds (rates are probabilities per request, checked in this order):

``429``            answered 429 with a ``Retry-After`` (the scope is blocked until then), not applied
``429_no_ra``      answered 429 without ``Retry-After``, not applied
``500``/``502``/``503``/``504``  answered with that status, not applied
``drop``           the request IS applied, then the connection is cut mid-response (the client sees a
                   transport error); for a sub-request the whole batch connection is cut after all of
                   its sub-requests ran
``slow``           the request IS applied, but the answer waits ``slow_seconds`` (longer than a client's
                   timeout); for a sub-request the whole batch answer waits
``applied_error``  the request IS applied (a write really happens) but answered 429 (with or without
                   ``Retry-After``), 500, 503 or 504 — what users report from the real service
``latency_ms`` + uniform ``[0, jitter_ms]`` is how long every faulted-scope HTTP answer takes from
the request's arrival (on the emulator's clock): the emulator's own work counts within it, as Graph's
own work counts within the time its clients wait; work that takes longer is answered when done. A
``slow`` answer, likewise, leaves ``slow_seconds`` after the request arrived.

``scope``: ``http`` = whole HTTP requests (single requests and whole batches), ``sub`` = sub-requests
inside batches only, ``both`` (default). ``batch`` is accepted as an alias of ``http``.

CLI form: ``"seed=7,429=0.1,429_no_ra=0.05,503=0.05,504=0.02,drop=0.02,slow=0.01,applied_error=0.05,
latency_ms=20,jitter_ms=10,scope=both"``.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, fields

KINDS = ("429", "429_no_ra", "500", "502", "503", "504", "drop", "slow", "applied_error")
APPLIED_ERROR_STATUSES = (429, 429, 500, 503, 504)  # the second 429 is sent without Retry-After

_FIELD_FOR_KIND = {
    "429": "rate_429",
    "429_no_ra": "rate_429_no_ra",
    "500": "rate_500",
    "502": "rate_502",
    "503": "rate_503",
    "504": "rate_504",
    "drop": "rate_drop",
    "slow": "rate_slow",
    "applied_error": "rate_applied_error",
}


@dataclass(frozen=True, slots=True)
class FaultConfig:
    seed: int = 0
    rate_429: float = 0.0
    rate_429_no_ra: float = 0.0
    rate_500: float = 0.0
    rate_502: float = 0.0
    rate_503: float = 0.0
    rate_504: float = 0.0
    rate_drop: float = 0.0
    rate_slow: float = 0.0
    rate_applied_error: float = 0.0
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    slow_seconds: float = 5.0
    retry_after: float = 0.2  # seconds, for injected 429s
    retry_after_form: str = "decimal"  # "decimal" ("0.2"), "seconds" ("1"), "list" ("0.2,1")
    scope: str = "both"  # "http", "sub" or "both"

    def __post_init__(self) -> None:
        scope = "http" if self.scope == "batch" else self.scope
        if scope not in ("http", "sub", "both"):
            raise ValueError(f"fault scope must be http, sub or both, not {self.scope!r}")
        object.__setattr__(self, "scope", scope)
        total = sum(self.rate(k) for k in KINDS)
        if any(self.rate(k) < 0 for k in KINDS) or total > 1.0 + 1e-9:
            raise ValueError(f"fault rates must be >= 0 and sum to at most 1 (they sum to {total})")

    def rate(self, kind: str) -> float:
        return float(getattr(self, _FIELD_FOR_KIND[kind]))

    @property
    def at_http(self) -> bool:
        return self.scope in ("http", "both")

    @property
    def at_sub(self) -> bool:
        return self.scope in ("sub", "both")

    @classmethod
    def only(cls, kind: str, rate: float = 1.0, **kw: object) -> FaultConfig:
        """A config injecting one kind, e.g. ``FaultConfig.only("503", scope="sub")``."""
        return cls(**{_FIELD_FOR_KIND[kind]: rate}, **kw)  # type: ignore[arg-type]

    @classmethod
    def parse(cls, spec: str) -> FaultConfig:
        """Parse the CLI form ``"seed=7,429=0.1,drop=0.02,latency_ms=20,scope=both"``."""
        kw: dict[str, object] = {}
        names = {f.name for f in fields(cls)}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            key, sep, value = part.partition("=")
            key = key.strip()
            if not sep:
                raise ValueError(f"fault setting {part!r} needs the form name=value")
            name = _FIELD_FOR_KIND.get(key, key)
            if name not in names:
                raise ValueError(f"unknown fault setting {key!r}; known: {', '.join([*KINDS, *names])}")
            if name in ("scope", "retry_after_form"):
                kw[name] = value.strip()
            elif name == "seed":
                kw[name] = int(value)
            else:
                kw[name] = float(value)
        return cls(**kw)  # type: ignore[arg-type]

    @classmethod
    def from_value(cls, value: object) -> FaultConfig | None:
        if value is None or isinstance(value, FaultConfig):
            return value
        if isinstance(value, str):
            return cls.parse(value)
        if isinstance(value, dict):
            kw = {str(_FIELD_FOR_KIND.get(k, k)): v for k, v in value.items()}
            return cls(**kw)
        raise ValueError(f"faults must be a spec string, an object or null, not {value!r}")

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(slots=True)
class Fault:
    kind: str | None  # None: no fault
    latency: float  # seconds to add
    error_status: int = 0  # for applied_error
    error_retry_after: bool = False


class FaultInjector:
    """Draws faults from a seeded generator; three draws per decision, whatever the outcome."""

    def __init__(self, config: FaultConfig | None) -> None:
        self.config = config
        self._rng = random.Random(config.seed if config else 0)

    def draw(self) -> Fault:
        cfg = self.config
        if cfg is None:
            return Fault(None, 0.0)
        u, j, e = self._rng.random(), self._rng.random(), self._rng.random()
        latency = (cfg.latency_ms + j * cfg.jitter_ms) / 1000.0
        acc = 0.0
        for kind in KINDS:
            acc += cfg.rate(kind)
            if u < acc:
                idx = min(int(e * len(APPLIED_ERROR_STATUSES)), len(APPLIED_ERROR_STATUSES) - 1)
                return Fault(kind, latency, APPLIED_ERROR_STATUSES[idx], error_retry_after=idx == 0)
        return Fault(None, latency)
