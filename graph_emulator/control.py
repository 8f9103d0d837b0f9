"""The control side: exact stats and the ``/_emulator`` endpoints (no auth, never faulted, not counted).

``GET /_emulator/state``          the tenant document as it is now
``POST /_emulator/reset``         back to the initial tenant (or the tenant JSON in the body); clears stats
``GET /_emulator/stats``          exact counts (:meth:`Stats.snapshot` lists them)
``POST /_emulator/stats/reset``   zero the counts
``POST /_emulator/config``        ``{"faults": spec|{...}|null, "throttle": "graph"|"off"|{...},
                                  "page_size": n, "lies": spec|{...}|null, "token_lifetime": s|null}``
                                  and the behaviour knobs (``graph_emulator.behaviour``):
                                  ``"enum_evolution": "v1.0"|"off", "action_lag": n,
                                  "publish_lag": n, "assignment_states": bool, "excuse_clears":
                                  bool, "single_points": bool, "broken": ["prefer", ...]``
``POST /_emulator/teacher-edits`` schedule teacher edits (:mod:`graph_emulator.teacher_edits`)
``GET /_emulator/teacher-edits``  the pending and applied ones
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any, Protocol

from graph_emulator import routing
from graph_emulator.answers import Answer
from graph_emulator.behaviour import Knobs
from graph_emulator.common import Json

CONFIG_KEYS = ("faults", "throttle", "lies", "page_size", "token_lifetime", *Knobs.NAMES)


class Controlled(Protocol):
    """What the control endpoints need of the emulator (``app.Emulator`` is one)."""

    def state(self) -> Json: ...
    def stats_snapshot(self) -> Json: ...
    def reset_stats(self) -> None: ...
    def reset(self, tenant: Json | None = None) -> None: ...
    @property
    def configure(self) -> Callable[..., None]: ...  # takes the CONFIG_KEYS as keywords
    def teacher_edits_listing(self) -> Json: ...
    def schedule_teacher_edits(self, payload: Any) -> Json: ...


class Stats:
    """The counters behind ``GET /_emulator/stats``."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.by_route: Counter[str] = Counter()
        self.by_method: Counter[str] = Counter()
        self.by_status: Counter[str] = Counter()
        self.faults: dict[str, Counter[str]] = {"http": Counter(), "sub": Counter()}

    def route(self, method: str, rest: str, status: int) -> None:
        self.by_route[f"{method} {routing.template(rest)}"] += 1
        self.by_method[method] += 1
        self.by_status[str(status)] += 1

    def snapshot(self) -> Json:
        """Exact counts since the last reset.

        ``http_requests``: HTTP requests to Graph paths (a ``$batch`` POST is 1; control calls are not
        counted). ``graph_requests``: Graph operations — single requests plus every batch sub-request
        (not the envelopes, counted in ``batches``); ``by_route``/``by_method``/``by_status`` break
        ``graph_requests`` down. ``throttled``: 429 answers sent (whole and sub, including injected
        ones); ``early_retries``: requests from a scope before its Retry-After elapsed (they are
        throttled again and cost quota); ``unauthorized``: 401s, of which ``expired_tokens`` for a
        token past its lifetime; ``faults``: injected faults per kind (``faults_by_level`` splits
        http/sub); ``writes_applied``: writes that changed the tenant (also those answered with an
        error); ``teacher_edits_applied``: teacher edits made (``/_emulator/teacher-edits``).
        """
        c = self.counts
        return {
            "http_requests": c["http_requests"],
            "graph_requests": c["graph_requests"],
            "batches": c["batches"],
            "batch_subrequests": c["batch_subrequests"],
            "by_route": dict(self.by_route),
            "by_method": dict(self.by_method),
            "by_status": dict(self.by_status),
            "throttled": c["throttled"],
            "early_retries": c["early_retries"],
            "unauthorized": c["unauthorized"],
            "expired_tokens": c["expired_tokens"],
            "faults": dict(self.faults["http"] + self.faults["sub"]),
            "faults_by_level": {k: dict(v) for k, v in self.faults.items()},
            "writes_applied": c["writes_applied"],
            "teacher_edits_applied": c["teacher_edits_applied"],
        }


def handle(emu: Controlled, method: str, path: str, body: bytes) -> Answer:
    """Answer one ``/_emulator`` request."""
    try:
        payload = json.loads(body) if body.strip() else None
    except ValueError:
        return Answer(400, {"error": "body is not JSON"})
    try:
        return _route(emu, method, path, payload)
    except (ValueError, TypeError) as exc:
        return Answer(400, {"error": str(exc)})


def _route(emu: Controlled, method: str, path: str, payload: Any) -> Answer:
    if method == "GET" and path == "/_emulator/state":
        return Answer(200, emu.state())
    if method == "GET" and path == "/_emulator/stats":
        return Answer(200, emu.stats_snapshot())
    if method == "POST" and path == "/_emulator/stats/reset":
        emu.reset_stats()
        return Answer(200, emu.stats_snapshot())
    if method == "POST" and path == "/_emulator/reset":
        emu.reset(payload)
        return Answer(200, {"reset": True})
    if method == "POST" and path == "/_emulator/config":
        payload = payload or {}
        if not isinstance(payload, dict):
            raise ValueError("config takes a JSON object")
        unknown = set(payload) - set(CONFIG_KEYS)
        if unknown:
            raise ValueError(f"unknown config key(s) {sorted(unknown)}; known: {', '.join(CONFIG_KEYS)}")
        emu.configure(**payload)
        return Answer(200, emu.stats_snapshot()["config"])
    if path == "/_emulator/teacher-edits" and method in ("GET", "POST"):
        if method == "GET":
            return Answer(200, emu.teacher_edits_listing())
        return Answer(200, emu.schedule_teacher_edits(payload))
    return Answer(404, {"error": f"no control endpoint {method} {path}"})
