"""The emulator's HTTP application: Graph education routes, ``$batch``, throttling, faults, stats.

One :class:`Emulator` object is a plain ASGI application. Graph requests (``/v1.0/...`` and
``/beta/...``) and the sub-requests of ``$batch`` go through the same dispatcher, so each is
counted, throttled and (optionally) faulted on its own. Control endpoints live under ``/_emulator``
(no auth, never faulted, not counted):

``GET /_emulator/state``        the tenant document as it is now
``POST /_emulator/reset``       back to the initial tenant (or the tenant JSON in the body); clears stats
``GET /_emulator/stats``        exact counts (see :meth:`Emulator.stats_snapshot`)
``POST /_emulator/stats/reset`` zero the counts
``POST /_emulator/config``      ``{"faults": spec|{...}|null, "throttle": "graph"|"off"|{...},
                                "page_size": n, "lies": spec|{...}|null}``

Lies (``lies.py``, off by default) are answers that succeed but cannot be trusted: malformed JSON,
batch answers missing or duplicating an id, unknown outcome types, bare-number points, nextLinks to
another host or to themselves, huge pages.

Choices where Graph is vague (least convenient legal behaviour): small pages (``page_size``, default
25, and ``$top`` only lowers it); nextLinks carry an opaque ``$skiptoken`` holding the whole query;
batch responses always come in an order other than the request order; a body with
``publishedPoints`` is refused (400 ``readOnlyProperty``) — only ``return`` publishes; a second
points (or feedback) outcome on one submission is 409; a batch sub-request with a body but no
``Content-Type`` header is 400, as Graph documents.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import re
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from graph_emulator import state as st
from graph_emulator.faults import Fault, FaultConfig, FaultInjector
from graph_emulator.lies import LieConfig, LieInjector, truncate
from graph_emulator.odata import (
    QueryError,
    decode_skiptoken,
    encode_skiptoken,
    getter,
    parse_filter,
    parse_list,
    parse_top,
)
from graph_emulator.throttle import ThrottleConfig, Throttler, format_retry_after

Json = dict[str, Any]
VERSIONS = ("v1.0", "beta")
GRAPH_HOSTS = ("graph.microsoft.com",)
MAX_BATCH = 20
MAX_POINTS = 9_999_999
CALLER_APP_ID = "app:6f1c1f0e-5e1a-4c47-9a53-3e9a4d7c0a11"  # who writes: the app behind the token

ERROR_CODES = {
    400: "badRequest",
    401: "InvalidAuthenticationToken",
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

log = logging.getLogger("graph_emulator")


class DroppedConnection(Exception):
    """Raised inside the ASGI app after the response started, so the server cuts the connection."""


@dataclass
class Answer:
    """One Graph answer (a whole response or a batch sub-response)."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    applied: bool = False  # a write changed the tenant


@dataclass
class _Ctx:
    """What one HTTP request carries to its handlers."""

    seq: int
    now: float
    base: str  # "http://127.0.0.1:PORT" — nextLinks point here
    scope: str  # the throttling scope (the bearer token)
    delay: float = 0.0
    drop: bool = False


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
                "date": st.now_iso()[:19],
                "request-id": rid,
                "client-request-id": client_request_id or rid,
            },
        }
    }
    return Answer(status, body, {"request-id": rid, "client-request-id": client_request_id or rid})


class _Route:
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
    _Route("GET", "/education/classes", "list_classes"),
    _Route("GET", _C, "get_class"),
    _Route("GET", _C + "/members", "list_members"),
    _Route("GET", "/education/users", "list_users"),
    _Route("GET", "/education/users/{id}", "get_user"),
    _Route("GET", _C + "/assignments", "list_assignments"),
    _Route("GET", _A, "get_assignment"),
    _Route("GET", _A + "/submissions", "list_submissions"),
    _Route("GET", _S, "get_submission"),
    _Route("POST", _S + "/return", "return_submission"),
    _Route("POST", _S + "/excuse", "excuse_submission"),
    _Route("GET", _S + "/outcomes", "list_outcomes"),
    _Route("POST", _S + "/outcomes", "create_outcome"),
    _Route("GET", _S + "/outcomes/{id}", "get_outcome"),
    _Route("PATCH", _S + "/outcomes/{id}", "patch_outcome"),
]
WRITE_METHODS = ("POST", "PATCH", "PUT", "DELETE")

_FIELDS = {
    "class": set(st.render_class({"id": ""})),
    "user": set(st.render_user({"id": ""})) | {"externalId"},
    "assignment": set(st.render_assignment({"id": ""}, "")),
    "submission": set(st.render_submission({"id": ""})) | {"outcomes", "resources", "submittedResources"},
    "outcome": {
        "id",
        "lastModifiedBy",
        "lastModifiedDateTime",
        "points",
        "publishedPoints",
        "feedback",
        "publishedFeedback",
        "@odata.type",
    },
}
_EXPANDABLE = {"outcomes", "resources", "submittedResources", "*"}


def _user_external_id(u: Json) -> Any:
    for role in ("student", "teacher"):
        if isinstance(u.get(role), dict) and u[role].get("externalId"):
            return u[role]["externalId"]
    return None


_ALIASES: dict[str, dict[str, Callable[[Json], Any]]] = {"user": {"externalId": _user_external_id}}


class Emulator:
    """The whole emulator as an ASGI app. Thread-safe: handlers run under one lock."""

    def __init__(
        self,
        tenant: Json,
        *,
        token: str = "dev",  # noqa: S107 - the emulator's documented local dev token
        page_size: int = 25,
        throttle: ThrottleConfig | None = None,
        faults: FaultConfig | None = None,
        seed: int = 0,
        clock: Callable[[], float] = time.monotonic,
        lies: LieConfig | str | dict[str, Any] | None = None,
        sleep: Callable[[float], Any] | None = None,
    ) -> None:
        self.token = token
        self.page_size = page_size
        self.seed = seed
        self.clock = clock
        self._sleep = sleep or asyncio.sleep
        self._lock = threading.RLock()
        st.validate_tenant(tenant)
        self._initial = json.dumps(tenant)  # a JSON copy: far faster than deepcopy for big tenants
        self.tenant = st.Tenant(json.loads(self._initial))
        self.throttler = Throttler(throttle or ThrottleConfig.graph())
        self.faults = FaultInjector(faults)
        self.lies = LieInjector(LieConfig.from_value(lies))
        self._reset_stats()

    # --- control ----------------------------------------------------------------------------
    def _reset_stats(self) -> None:
        self._seq = 0
        self._batch_no = 0
        self.counts: Counter[str] = Counter()
        self.by_route: Counter[str] = Counter()
        self.by_method: Counter[str] = Counter()
        self.by_status: Counter[str] = Counter()
        self.fault_counts: dict[str, Counter[str]] = {"http": Counter(), "sub": Counter()}

    def reset(self, tenant: Json | None = None) -> None:
        """Back to the initial tenant (or a new one): stats, throttle buckets and fault RNG too."""
        with self._lock:
            if tenant is not None:
                st.validate_tenant(tenant)
                self._initial = json.dumps(tenant)
            self.tenant = st.Tenant(json.loads(self._initial))
            self.throttler.reset()
            self.faults = FaultInjector(self.faults.config)
            self.lies = LieInjector(self.lies.config)
            self._reset_stats()

    def reset_stats(self) -> None:
        with self._lock:
            self._reset_stats()
            self.lies.counts.clear()

    def configure(
        self, *, faults: Any = ..., throttle: Any = ..., page_size: int | None = None, lies: Any = ...
    ) -> None:
        """Change knobs at runtime; new faults or lies re-seed their generator, a new throttle empties
        buckets."""
        with self._lock:
            if lies is not ...:
                self.lies = LieInjector(LieConfig.from_value(lies))
            if faults is not ...:
                self.faults = FaultInjector(FaultConfig.from_value(faults))
            if throttle is not ...:
                self.throttler = Throttler(ThrottleConfig.from_value(throttle))
            if page_size is not None:
                if int(page_size) < 1:
                    raise ValueError("page_size must be at least 1")
                self.page_size = int(page_size)

    def state(self) -> Json:
        with self._lock:
            return self.tenant.snapshot()

    def stats_snapshot(self) -> Json:
        """Exact counts since the last reset.

        ``http_requests``: HTTP requests to Graph paths (a ``$batch`` POST is 1; control calls are not
        counted). ``graph_requests``: Graph operations — single requests plus every batch
        sub-request (not the envelopes, counted in ``batches``); ``by_route``/``by_method``/
        ``by_status`` break ``graph_requests`` down. ``throttled``: 429 answers sent (whole and sub,
        including injected ones); ``early_retries``: requests from a scope before its Retry-After
        elapsed; ``faults``: injected faults per kind (``faults_by_level`` splits http/sub);
        ``writes_applied``: writes that changed the tenant (also those answered with an error).
        """
        with self._lock:
            faults = self.fault_counts["http"] + self.fault_counts["sub"]
            return {
                "http_requests": self.counts["http_requests"],
                "graph_requests": self.counts["graph_requests"],
                "batches": self.counts["batches"],
                "batch_subrequests": self.counts["batch_subrequests"],
                "by_route": dict(self.by_route),
                "by_method": dict(self.by_method),
                "by_status": dict(self.by_status),
                "throttled": self.counts["throttled"],
                "early_retries": self.counts["early_retries"],
                "unauthorized": self.counts["unauthorized"],
                "faults": dict(faults),
                "faults_by_level": {k: dict(v) for k, v in self.fault_counts.items()},
                "writes_applied": self.counts["writes_applied"],
                "lies": dict(self.lies.counts),
                "config": {
                    "lies": self.lies.config.to_dict() if self.lies.config else None,
                    "page_size": self.page_size,
                    "throttle": self.throttler.config.to_dict(),
                    "faults": self.faults.config.to_dict() if self.faults.config else None,
                },
            }

    # --- ASGI -------------------------------------------------------------------------------
    async def __call__(self, scope: Json, receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        path: str = scope["path"]
        query = scope.get("query_string", b"").decode("latin-1")
        method: str = scope["method"]
        if path.startswith("/_emulator"):
            answer = self._control(method, path, body)
            await self._send(send, answer)
            return
        host = headers.get("host") or "{}:{}".format(*scope.get("server", ("127.0.0.1", 80)))
        with self._lock:
            self._seq += 1
            self.counts["http_requests"] += 1
            ctx = _Ctx(seq=self._seq, now=self.clock(), base=f"http://{host}", scope="")
            answer = self._http(ctx, method, path, query, headers, body)
            malformed = (
                answer.status == 200
                and answer.body is not None
                and self.lies.active
                and self.lies.malformed(self._route_name(method, path))
            )
        if malformed:
            answer = Answer(answer.status, answer.body, {**answer.headers, "_truncate": "1"})
        if ctx.delay > 0:
            await self._sleep(ctx.delay)
        if ctx.drop:
            raw = json.dumps(answer.body).encode() if answer.body is not None else b""
            await send(
                {
                    "type": "http.response.start",
                    "status": answer.status,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", b"%d" % (len(raw) + 64)),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": raw[: len(raw) // 2], "more_body": True})
            raise DroppedConnection("fault injection: connection dropped mid-response")
        await self._send(send, answer)

    @staticmethod
    async def _send(send: Callable[..., Any], answer: Answer) -> None:
        raw = b"" if answer.body is None else json.dumps(answer.body).encode()
        if answer.headers.pop("_truncate", None):
            raw = truncate(raw)  # a lie: malformed JSON on a 200
        hdrs = [(b"content-type", b"application/json; odata.metadata=minimal")] if raw else []
        hdrs += [(k.lower().encode(), str(v).encode()) for k, v in answer.headers.items()]
        hdrs.append((b"content-length", str(len(raw)).encode()))
        await send({"type": "http.response.start", "status": answer.status, "headers": hdrs})
        await send({"type": "http.response.body", "body": raw})

    def _control(self, method: str, path: str, body: bytes) -> Answer:
        try:
            payload = json.loads(body) if body.strip() else None
        except ValueError:
            return Answer(400, {"error": "body is not JSON"})
        try:
            if method == "GET" and path == "/_emulator/state":
                return Answer(200, self.state())
            if method == "GET" and path == "/_emulator/stats":
                return Answer(200, self.stats_snapshot())
            if method == "POST" and path == "/_emulator/stats/reset":
                self.reset_stats()
                return Answer(200, self.stats_snapshot())
            if method == "POST" and path == "/_emulator/reset":
                self.reset(payload)
                return Answer(200, {"reset": True})
            if method == "POST" and path == "/_emulator/config":
                payload = payload or {}
                kw = {k: payload[k] for k in ("faults", "throttle", "lies") if k in payload}
                self.configure(**kw, page_size=payload.get("page_size"))
                return Answer(200, self.stats_snapshot()["config"])
        except (ValueError, TypeError) as exc:
            return Answer(400, {"error": str(exc)})
        return Answer(404, {"error": f"no control endpoint {method} {path}"})

    # --- Graph requests ---------------------------------------------------------------------
    def _http(
        self, ctx: _Ctx, method: str, path: str, query: str, headers: dict[str, str], body: bytes
    ) -> Answer:
        parts = path.split("/", 2)
        version = parts[1] if len(parts) > 1 else ""
        rest = "/" + parts[2] if len(parts) > 2 else "/"
        crid = headers.get("client-request-id")
        if version not in VERSIONS:
            self.counts["graph_requests"] += 1
            self.by_route[f"{method} <unknown>"] += 1
            return odata_error(404, f"Unknown API version '{version}': use /v1.0 or /beta.", "notFound", crid)
        is_batch = rest == "/$batch"
        if not is_batch:
            self.counts["graph_requests"] += 1
        else:
            self.counts["batches"] += 1
        auth = headers.get("authorization", "")
        if auth != f"Bearer {self.token}":
            if not is_batch:
                self._count_route(method, rest, 401)
            self.counts["unauthorized"] += 1
            msg = (
                "Access token is empty." if not auth else "Access token validation failure. Invalid audience."
            )
            return odata_error(401, msg, "InvalidAuthenticationToken", crid)
        ctx.scope = self.token
        if is_batch:
            if method != "POST":
                return odata_error(405, "Only POST is allowed on $batch.", "methodNotAllowed", crid)
            return self._batch(ctx, version, query, headers, body)
        return self._one(ctx, method, version, rest, query, headers, body, level="http")

    def _count_route(self, method: str, rest: str, status: int) -> None:
        self.by_route[f"{method} {self._template(method, rest)}"] += 1
        self.by_method[method] += 1
        self.by_status[str(status)] += 1

    @staticmethod
    def _route_name(method: str, path: str) -> str:
        """``batch`` for ``/{version}/$batch``, else the handler name of the route (or ``unknown``)."""
        rest = "/" + path.split("/", 2)[2] if path.count("/") >= 2 else "/"
        if rest == "/$batch":
            return "batch"
        for r in ROUTES:
            if r.method == method and r.regex.match(rest):
                return r.handler
        return "unknown"

    @staticmethod
    def _template(method: str, rest: str) -> str:
        for r in ROUTES:
            if r.regex.match(rest):
                return r.template
        return "<unknown>"

    def _fault(self, level: str) -> Fault:
        cfg = self.faults.config
        if cfg is None or not (cfg.at_http if level == "http" else cfg.at_sub):
            return Fault(None, 0.0)
        fault = self.faults.draw()
        if fault.kind:
            self.fault_counts[level][fault.kind] += 1
        return fault

    def _throttled(self, ctx: _Ctx, retry_after: float | None, crid: str | None) -> Answer:
        self.counts["throttled"] += 1
        ans = odata_error(429, ERROR_MESSAGES[429], "activityLimitReached", crid)
        if retry_after is not None:
            form = self.faults.config.retry_after_form if self.faults.config else "decimal"
            ans.headers["Retry-After"] = format_retry_after(retry_after, form)
        return ans

    def _error_for(self, ctx: _Ctx, status: int, with_ra: bool, crid: str | None) -> Answer:
        if status == 429:
            ra = None
            if with_ra:
                ra = self.faults.config.retry_after if self.faults.config else 0.2
                self.throttler.block(ctx.scope, ctx.now, ra, ctx.seq)
            return self._throttled(ctx, ra, crid)
        return odata_error(status, ERROR_MESSAGES[status], None, crid)

    def _one(
        self,
        ctx: _Ctx,
        method: str,
        version: str,
        rest: str,
        query: str,
        headers: dict[str, str],
        body: Any,
        *,
        level: str,
    ) -> Answer:
        """One Graph operation: throttle, faults, then the handler. ``body`` is bytes or parsed JSON."""
        crid = headers.get("client-request-id")
        decision = self.throttler.check(ctx.scope, ctx.now, ctx.seq)
        if decision.early:
            self.counts["early_retries"] += 1
        if not decision.allowed:
            ans = self._throttled(ctx, decision.retry_after, crid)
        else:
            fault = self._fault(level)
            if level == "http":
                ctx.delay += fault.latency
            else:
                ctx.delay = max(ctx.delay, fault.latency)
            kind = fault.kind
            if kind in ("429", "429_no_ra"):
                ans = self._error_for(ctx, 429, kind == "429", crid)
            elif kind in ("500", "502", "503", "504"):
                ans = odata_error(int(kind), ERROR_MESSAGES[int(kind)], None, crid)
            else:
                ans = self._dispatch(ctx, method, version, rest, query, headers, body)
                if method == "GET" and ans.status == 200 and self.lies.active:
                    url = f"{ctx.base}/{version}{rest}" + (f"?{query}" if query else "")
                    params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
                    route = self._route_name(method, f"/{version}{rest}")
                    ans.body = self.lies.body(route, url, params, ans.body)
                if ans.applied:
                    self.counts["writes_applied"] += 1
                if kind == "drop":
                    ctx.drop = True
                elif kind == "slow":
                    cfg = self.faults.config
                    ctx.delay = max(ctx.delay, cfg.slow_seconds if cfg else 0.0)
                elif kind == "applied_error":
                    ans = self._error_for(ctx, fault.error_status, fault.error_retry_after, crid)
        self._count_route(method, rest, ans.status)
        return ans

    # --- $batch -----------------------------------------------------------------------------
    def _batch(self, ctx: _Ctx, version: str, query: str, headers: dict[str, str], raw: bytes) -> Answer:
        crid = headers.get("client-request-id")
        fault = self._fault("http")
        ctx.delay += fault.latency
        if fault.kind in ("429", "429_no_ra"):
            return self._error_for(ctx, 429, fault.kind == "429", crid)
        if fault.kind in ("500", "502", "503", "504"):
            return odata_error(int(fault.kind), ERROR_MESSAGES[int(fault.kind)], None, crid)
        ans = self._run_batch(ctx, version, raw, crid)
        if fault.kind == "drop":
            ctx.drop = True
        elif fault.kind == "slow":
            ctx.delay = max(ctx.delay, self.faults.config.slow_seconds if self.faults.config else 0.0)
        elif fault.kind == "applied_error":
            return self._error_for(ctx, fault.error_status, fault.error_retry_after, crid)
        return ans

    def _run_batch(self, ctx: _Ctx, version: str, raw: bytes, crid: str | None) -> Answer:
        try:
            payload = json.loads(raw)
        except ValueError:
            return odata_error(400, "Invalid batch payload: the body is not JSON.", "invalidBatch", crid)
        reqs = payload.get("requests") if isinstance(payload, dict) else None
        if not isinstance(reqs, list) or not reqs:
            return odata_error(
                400, "Invalid batch payload: 'requests' must be a non-empty array.", "invalidBatch", crid
            )
        if len(reqs) > MAX_BATCH:
            return odata_error(
                400,
                f"Invalid batch payload format: at most {MAX_BATCH} requests per batch, got {len(reqs)}.",
                "invalidBatchSize",
                crid,
            )
        ids: list[str] = []
        for r in reqs:
            if not isinstance(r, dict) or not isinstance(r.get("id"), str) or not r["id"]:
                return odata_error(
                    400, "Invalid batch payload: every request needs a string 'id'.", "invalidBatch", crid
                )
            if not isinstance(r.get("method"), str) or not isinstance(r.get("url"), str):
                return odata_error(
                    400,
                    f"Invalid batch payload: request '{r['id']}' needs 'method' and 'url'.",
                    "invalidBatch",
                    crid,
                )
            ids.append(r["id"])
        dup = [i for i, n in Counter(ids).items() if n > 1]
        if dup:
            return odata_error(
                400, f"Invalid batch payload: duplicate request id '{dup[0]}'.", "duplicateId", crid
            )
        by_id = {r["id"]: r for r in reqs}
        for r in reqs:
            deps = r.get("dependsOn") or []
            if not isinstance(deps, list) or any(d not in by_id or d == r["id"] for d in deps):
                return odata_error(
                    400,
                    f"Invalid batch payload: request '{r['id']}' depends on an unknown request.",
                    "invalidDependsOn",
                    crid,
                )
        order = _topological(reqs)
        if order is None:
            return odata_error(
                400, "Invalid batch payload: dependsOn forms a cycle.", "invalidDependsOn", crid
            )
        results: dict[str, Answer] = {}
        for r in order:
            self.counts["graph_requests"] += 1
            self.counts["batch_subrequests"] += 1
            sub_headers = {str(k).lower(): str(v) for k, v in (r.get("headers") or {}).items()}
            failed = [d for d in r.get("dependsOn") or [] if not 200 <= results[d].status < 300]
            method = r["method"].upper()
            url = r["url"]
            rest, query, err = self._sub_url(ctx, version, url)
            if failed:
                ans = odata_error(
                    424,
                    f"The request depends on request '{failed[0]}', which failed.",
                    "failedDependency",
                    sub_headers.get("client-request-id"),
                )
                self._count_route(method, rest or "<unknown>", 424)
            elif err:
                ans = odata_error(400, err, "invalidUrl", sub_headers.get("client-request-id"))
                self._count_route(method, "<unknown>", 400)
            elif "body" in r and r["body"] is not None and "content-type" not in sub_headers:
                ans = odata_error(
                    400,
                    "Content-Type header is required when a request has a body.",
                    "missingContentType",
                    sub_headers.get("client-request-id"),
                )
                self._count_route(method, rest or "<unknown>", 400)
            else:
                ans = self._one(
                    ctx, method, version, rest or "/", query, sub_headers, r.get("body"), level="sub"
                )
            results[r["id"]] = ans
        rng = random.Random(f"{self.seed}:{self._batch_no}")
        self._batch_no += 1
        out_ids = list(ids)
        rng.shuffle(out_ids)
        if out_ids == ids and len(ids) > 1:
            out_ids = out_ids[1:] + out_ids[:1]
        responses = []
        for rid in out_ids:
            a = results[rid]
            item: Json = {
                "id": rid,
                "status": a.status,
                "headers": {"Content-Type": "application/json", **a.headers},
            }
            if a.body is not None:
                item["body"] = a.body
            responses.append(item)
        if self.lies.active:
            responses = self.lies.batch(responses)
        return Answer(200, {"responses": responses}, {"request-id": str(uuid.uuid4())})

    def _sub_url(self, ctx: _Ctx, version: str, url: str) -> tuple[str | None, str, str | None]:
        """(path under the version root, query string, error) for a batch sub-request url."""
        if re.match(r"^https?://", url, re.I):
            parsed = urllib.parse.urlsplit(url)
            own = urllib.parse.urlsplit(ctx.base).netloc
            if parsed.netloc.lower() not in (*GRAPH_HOSTS, own.lower()):
                return None, "", f"The url '{url}' is not on the Graph host."
            parts = parsed.path.split("/", 2)
            if len(parts) < 3 or parts[1] not in VERSIONS:
                return None, "", f"The url '{url}' has no version root (/v1.0 or /beta)."
            return "/" + parts[2], parsed.query, None
        path, _, query = url.partition("?")
        path = "/" + path.lstrip("/")
        if path.split("/")[1] in VERSIONS or path == "/$batch":
            return None, "", f"The url '{url}' must be relative to the version root."
        return path, query, None

    # --- dispatch ---------------------------------------------------------------------------
    def _dispatch(
        self, ctx: _Ctx, method: str, version: str, rest: str, query: str, headers: dict[str, str], body: Any
    ) -> Answer:
        crid = headers.get("client-request-id")
        matched = [(r, r.regex.match(rest)) for r in ROUTES]
        hits = [(r, m) for r, m in matched if m]
        if not hits:
            seg = rest.rstrip("/").rsplit("/", 1)[-1]
            return odata_error(400, f"Resource not found for the segment '{seg}'.", "BadRequest", crid)
        chosen = next(((r, m) for r, m in hits if r.method == method), None)
        if chosen is None:
            return odata_error(
                405, f"The method {method} is not allowed on this resource.", "methodNotAllowed", crid
            )
        route, m = chosen
        params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        if isinstance(body, bytes | bytearray):
            if body.strip():
                try:
                    body = json.loads(body)
                except ValueError:
                    return odata_error(400, "The request body is not valid JSON.", "invalidRequestBody", crid)
            else:
                body = None
        try:
            ans: Answer = getattr(self, "_h_" + route.handler)(ctx, version, rest, params, body, *m.groups())
        except QueryError as exc:
            return odata_error(400, str(exc), exc.inner, crid)
        except _NotFound as exc:
            return odata_error(404, str(exc), "notFound", crid)
        except _Refused as exc:
            return odata_error(exc.status, str(exc), exc.inner, crid)
        ans.headers.setdefault("request-id", str(uuid.uuid4()))
        if crid:
            ans.headers.setdefault("client-request-id", crid)
        return ans

    # --- collections ------------------------------------------------------------------------
    def _page(
        self, ctx: _Ctx, version: str, rest: str, params: dict[str, str], kind: str, items: list[Json]
    ) -> Answer:
        if "$skiptoken" in params:
            s = decode_skiptoken(params["$skiptoken"])
            flt, sel, exp, top, offset = s.get("f"), s.get("s"), s.get("e"), s.get("t"), s["o"]
        else:
            flt, sel, exp = params.get("$filter"), params.get("$select"), params.get("$expand")
            top, offset = parse_top(params.get("$top")), 0
        if flt:
            pred = parse_filter(flt, _FIELDS[kind])
            aliases = _ALIASES.get(kind)
            items = [it for it in items if pred(getter(it, aliases))]
        size = min(top or self.page_size, self.page_size)
        page = items[offset : offset + size]
        page = [self._shape(it, kind, sel, exp) for it in page]
        ctx_name = {
            "class": "classes",
            "user": "users",
            "assignment": "assignments",
            "submission": "submissions",
            "outcome": "outcomes",
        }[kind]
        body: Json = {"@odata.context": f"{ctx.base}/{version}/$metadata#{ctx_name}", "value": page}
        if offset + size < len(items):
            token = encode_skiptoken({"f": flt, "s": sel, "e": exp, "t": top, "o": offset + size})
            body["@odata.nextLink"] = f"{ctx.base}/{version}{rest}?$skiptoken={token}"
        return Answer(200, body)

    def _shape(self, item: Json, kind: str, select: str | None, expand: str | None) -> Json:
        item = dict(item)
        expanded = parse_list(expand)
        for e in expanded:
            if kind != "submission" or e not in _EXPANDABLE:
                raise QueryError(
                    f"Could not find a navigation property named '{e}' to expand.", "invalidExpand"
                )
        sub_raw = item.pop("_raw", None)
        if kind == "submission" and expanded:
            if "outcomes" in expanded or "*" in expanded:
                item["outcomes"] = [st.render_outcome(o, self.tenant) for o in sub_raw.get("outcomes", [])]
            if "resources" in expanded or "*" in expanded:
                item["resources"] = []
            if "submittedResources" in expanded or "*" in expanded:
                item["submittedResources"] = []
        fields = parse_list(select)
        if fields:
            for f in fields:
                if f not in _FIELDS[kind]:
                    raise QueryError(f"Could not find a property named '{f}' on this type.", "invalidSelect")
            keep = {"id", "@odata.type", *fields, *(e for e in expanded if e != "*")}
            if "*" in expanded:
                keep |= {"outcomes", "resources", "submittedResources"}
            item = {k: v for k, v in item.items() if k in keep}
        return item

    def _class(self, cid: str) -> Json:
        c = self.tenant.classes.get(cid)
        if c is None:
            raise _NotFound(f"The class '{cid}' was not found.")
        return c

    def _assignment(self, cid: str, aid: str) -> Json:
        self._class(cid)
        a = self.tenant.assignment(cid, aid)
        if a is None:
            raise _NotFound(f"The assignment '{aid}' was not found in class '{cid}'.")
        return a

    def _submission(self, cid: str, aid: str, sid: str) -> tuple[Json, Json]:
        a = self._assignment(cid, aid)
        s = self.tenant.submissions_of(a).get(sid)
        if s is None:
            raise _NotFound(f"The submission '{sid}' was not found in assignment '{aid}'.")
        return a, s

    def _h_list_classes(self, ctx: _Ctx, v: str, rest: str, p: dict[str, str], body: Any) -> Answer:
        items = [st.render_class(c) for c in self.tenant.data["classes"]]
        return self._page(ctx, v, rest, p, "class", items)

    def _h_get_class(self, ctx: _Ctx, v: str, rest: str, p: dict[str, str], body: Any, cid: str) -> Answer:
        return Answer(200, self._shape(st.render_class(self._class(cid)), "class", p.get("$select"), None))

    def _h_list_members(self, ctx: _Ctx, v: str, rest: str, p: dict[str, str], body: Any, cid: str) -> Answer:
        c = self._class(cid)
        users = self.tenant.users
        items = [st.render_user(users[u]) for u in c.get("members", []) if u in users]
        return self._page(ctx, v, rest, p, "user", items)

    def _h_list_users(self, ctx: _Ctx, v: str, rest: str, p: dict[str, str], body: Any) -> Answer:
        items = [st.render_user(u) for u in self.tenant.data["users"]]
        return self._page(ctx, v, rest, p, "user", items)

    def _h_get_user(self, ctx: _Ctx, v: str, rest: str, p: dict[str, str], body: Any, uid: str) -> Answer:
        u = self.tenant.users.get(uid)
        if u is None:
            raise _NotFound(f"The user '{uid}' was not found.")
        return Answer(200, self._shape(st.render_user(u), "user", p.get("$select"), None))

    def _h_list_assignments(
        self, ctx: _Ctx, v: str, rest: str, p: dict[str, str], body: Any, cid: str
    ) -> Answer:
        self._class(cid)
        items = [st.render_assignment(a, cid) for a in self.tenant.assignments_of(cid).values()]
        return self._page(ctx, v, rest, p, "assignment", items)

    def _h_get_assignment(
        self, ctx: _Ctx, v: str, rest: str, p: dict[str, str], body: Any, cid: str, aid: str
    ) -> Answer:
        a = self._assignment(cid, aid)
        return Answer(200, self._shape(st.render_assignment(a, cid), "assignment", p.get("$select"), None))

    def _h_list_submissions(
        self, ctx: _Ctx, v: str, rest: str, p: dict[str, str], body: Any, cid: str, aid: str
    ) -> Answer:
        a = self._assignment(cid, aid)
        items = [{**st.render_submission(s), "_raw": s} for s in self.tenant.submissions_of(a).values()]
        return self._page(ctx, v, rest, p, "submission", items)

    def _h_get_submission(
        self, ctx: _Ctx, v: str, rest: str, p: dict[str, str], body: Any, cid: str, aid: str, sid: str
    ) -> Answer:
        _, s = self._submission(cid, aid, sid)
        item = {**st.render_submission(s), "_raw": s}
        return Answer(200, self._shape(item, "submission", p.get("$select"), p.get("$expand")))

    def _h_return_submission(
        self, ctx: _Ctx, v: str, rest: str, p: dict[str, str], body: Any, cid: str, aid: str, sid: str
    ) -> Answer:
        _, s = self._submission(cid, aid, sid)
        now = st.now_iso()
        for o in s.setdefault("outcomes", []):
            if o.get("type") == "points":
                o["publishedPoints"] = o.get("points")
                o["publishedDateTime"] = o.get("gradedDateTime") if o.get("points") is not None else None
                o["publishedBy"] = o.get("gradedBy")
            elif o.get("type") == "feedback":
                o["publishedFeedback"] = o.get("feedback")
        s["status"] = "returned"
        s["returnedDateTime"] = now
        return Answer(200, st.render_submission(s), applied=True)

    def _h_excuse_submission(
        self, ctx: _Ctx, v: str, rest: str, p: dict[str, str], body: Any, cid: str, aid: str, sid: str
    ) -> Answer:
        _, s = self._submission(cid, aid, sid)
        s["status"] = "excused"
        s["excusedDateTime"] = st.now_iso()
        return Answer(200, st.render_submission(s), applied=True)

    def _h_list_outcomes(
        self, ctx: _Ctx, v: str, rest: str, p: dict[str, str], body: Any, cid: str, aid: str, sid: str
    ) -> Answer:
        _, s = self._submission(cid, aid, sid)
        items = [st.render_outcome(o, self.tenant) for o in s.get("outcomes", [])]
        return self._page(ctx, v, rest, p, "outcome", items)

    def _outcome(self, cid: str, aid: str, sid: str, oid: str) -> tuple[Json, Json, Json]:
        a, s = self._submission(cid, aid, sid)
        o = next((o for o in s.get("outcomes", []) if o["id"] == oid), None)
        if o is None:
            raise _NotFound(f"The outcome '{oid}' was not found on submission '{sid}'.")
        return a, s, o

    def _h_get_outcome(
        self,
        ctx: _Ctx,
        v: str,
        rest: str,
        p: dict[str, str],
        body: Any,
        cid: str,
        aid: str,
        sid: str,
        oid: str,
    ) -> Answer:
        _, _, o = self._outcome(cid, aid, sid, oid)
        return Answer(200, st.render_outcome(o, self.tenant))

    def _h_create_outcome(
        self, ctx: _Ctx, v: str, rest: str, p: dict[str, str], body: Any, cid: str, aid: str, sid: str
    ) -> Answer:
        a, s = self._submission(cid, aid, sid)
        if not isinstance(body, dict):
            raise _Refused(
                400, "The request body must be a JSON object describing the outcome.", "invalidRequestBody"
            )
        otype = body.get("@odata.type")
        if otype not in (st.POINTS_OUTCOME, st.FEEDBACK_OUTCOME):
            raise _Refused(
                400,
                f"'@odata.type' must be '{st.POINTS_OUTCOME}' or '{st.FEEDBACK_OUTCOME}', got {otype!r}.",
                "invalidOutcomeType",
            )
        kind = "points" if otype == st.POINTS_OUTCOME else "feedback"
        if any(o.get("type") == kind for o in s.get("outcomes", [])):
            raise _Refused(
                409, f"The submission already has a {kind} outcome; update it instead.", "outcomeExists"
            )
        now = st.now_iso()
        o: Json = {
            "id": st.new_id(),
            "type": kind,
            "lastModifiedBy": CALLER_APP_ID,
            "lastModifiedDateTime": now,
        }
        if kind == "points":
            if a.get("grading") is None:
                raise _Refused(400, "The assignment is not graded with points.", "invalidGrading")
            _reject_published(body)
            pts = _points_from(body) if "points" in body else None
            o.update(
                points=pts,
                publishedPoints=None,
                gradedBy=CALLER_APP_ID if pts is not None else None,
                gradedDateTime=now if pts is not None else None,
            )
        else:
            o.update(feedback=_feedback_from(body), publishedFeedback=None)
        s.setdefault("outcomes", []).append(o)
        ans = Answer(201, st.render_outcome(o, self.tenant), applied=True)
        ans.headers["Location"] = f"{ctx.base}/{v}{rest}/{o['id']}"
        return ans

    def _h_patch_outcome(
        self,
        ctx: _Ctx,
        v: str,
        rest: str,
        p: dict[str, str],
        body: Any,
        cid: str,
        aid: str,
        sid: str,
        oid: str,
    ) -> Answer:
        _, _, o = self._outcome(cid, aid, sid, oid)
        if not isinstance(body, dict):
            raise _Refused(400, "The request body must be a JSON object.", "invalidRequestBody")
        otype = body.get("@odata.type")
        expected = st.POINTS_OUTCOME if o.get("type") == "points" else st.FEEDBACK_OUTCOME
        if otype is not None and otype != expected:
            raise _Refused(
                400, f"'@odata.type' {otype!r} does not match the outcome ({expected}).", "invalidOutcomeType"
            )
        now = st.now_iso()
        if o.get("type") == "points":
            _reject_published(body)
            if "points" in body:
                pts = _points_from(body)
                o["points"] = pts
                o["gradedBy"] = CALLER_APP_ID if pts is not None else None
                o["gradedDateTime"] = now if pts is not None else None
        elif "feedback" in body:
            o["feedback"] = _feedback_from(body)
        o["lastModifiedBy"] = CALLER_APP_ID
        o["lastModifiedDateTime"] = now
        return Answer(200, st.render_outcome(o, self.tenant), applied=True)


class _NotFound(Exception):
    pass


class _Refused(Exception):
    def __init__(self, status: int, message: str, inner: str) -> None:
        super().__init__(message)
        self.status = status
        self.inner = inner


def _reject_published(body: Json) -> None:
    if "publishedPoints" in body:
        raise _Refused(
            400,
            "'publishedPoints' is read-only: only returning the submission publishes points.",
            "readOnlyProperty",
        )


def _points_from(body: Json) -> float | None:
    """The points of a PATCH/POST body: ``{"points": {"points": x}}``, ``{"points": x}`` or null."""
    raw = body.get("points")
    if isinstance(raw, dict):
        if "points" not in raw:
            raise _Refused(400, "The grade object needs a 'points' value.", "invalidGrading")
        raw = raw["points"]
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise _Refused(400, f"Points must be a number, got {raw!r}.", "invalidGrading")
    value = float(raw)
    if math.isnan(value) or math.isinf(value) or value < 0 or value >= MAX_POINTS:
        raise _Refused(
            400,
            f"Invalid points value {raw!r}: points must be between 0 and {MAX_POINTS - 1}.",
            "invalidGrading",
        )
    return value


def _feedback_from(body: Json) -> str | None:
    fb = body.get("feedback")
    if fb is None:
        return None
    if isinstance(fb, dict):
        text = fb.get("text")
        if isinstance(text, dict):
            text = text.get("content")
        if text is None or isinstance(text, str):
            return text
    raise _Refused(400, "feedback must be {'text': {'content': '...'}} or null.", "invalidRequestBody")


def _topological(reqs: list[Json]) -> list[Json] | None:
    """Requests in an order that respects dependsOn (stable otherwise); None on a cycle."""
    done: set[str] = set()
    out: list[Json] = []
    pending = list(reqs)
    while pending:
        progressed = False
        for r in list(pending):
            if all(d in done for d in r.get("dependsOn") or []):
                out.append(r)
                done.add(r["id"])
                pending.remove(r)
                progressed = True
        if not progressed:
            return None
    return out
