"""The emulator as one ASGI application: the request pipeline that ties the other modules together.

Graph requests (``/v1.0/...`` and ``/beta/...``) and the sub-requests of ``$batch`` go through the
same pipeline — authenticate (:mod:`tokens`), throttle (:mod:`throttle`), inject faults
(:mod:`faults`), route (:mod:`routing`) to a handler (:mod:`handlers`), maybe lie (:mod:`lies`) — so
each is counted, throttled and (optionally) faulted on its own. ``$batch`` payloads are checked and
answered by :mod:`batch`; ``/_emulator`` control endpoints and stats live in :mod:`control`; teacher
edits in :mod:`teacher_edits`; ASGI details in :mod:`asgi`.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any
from uuid import uuid4

from graph_emulator import asgi, batch, control, routing
from graph_emulator import state as st
from graph_emulator.answers import ERROR_MESSAGES, Answer, NotFound, Refused, education_error, odata_error
from graph_emulator.asgi import DroppedConnection
from graph_emulator.behaviour import Knobs
from graph_emulator.common import Json
from graph_emulator.faults import Fault, FaultConfig, FaultInjector
from graph_emulator.handlers import Resources
from graph_emulator.lies import LieConfig, LieInjector
from graph_emulator.odata import QueryError
from graph_emulator.routing import GRADE_WRITES, VERSIONS, WRITE_METHODS, Call, Ctx, limit_kind
from graph_emulator.teacher_edits import TeacherEdits
from graph_emulator.throttle import ThrottleConfig, Throttler, format_retry_after
from graph_emulator.tokens import TokenGate

__all__ = ["DroppedConnection", "Emulator"]

FORBIDDEN = "Access is denied. Check credentials and try again."  # Graph's text for a missing permission
SUBMISSION_READS = frozenset({"list_submissions", "get_submission"})  # reads that show a submission


def _submissions_shown(body: Any) -> set[str]:
    """The ids of the submissions a read's answer shows (a listing page, or one submission)."""
    if not isinstance(body, dict):
        return set()
    value = body.get("value")
    items: list[Any] = value if isinstance(value, list) else [body]
    return {str(i["id"]) for i in items if isinstance(i, dict) and "id" in i}


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
        token_lifetime: float | None = None,
        **behaviour: Any,
    ) -> None:
        """``behaviour``: the knobs of :class:`graph_emulator.behaviour.Knobs` (``enum_evolution``,
        ``action_lag``, ``publish_lag``, ``assignment_states``, ``excuse_clears``, ``single_points``,
        ``broken``); each defaults to what Graph v1.0 does."""
        self.token = token
        self.seed = seed
        self.clock = clock
        self._sleep = sleep or asyncio.sleep
        self._lock = threading.RLock()
        st.validate_tenant(tenant)
        self._initial = json.dumps(tenant)  # a JSON copy: far faster than deepcopy for big tenants
        self.knobs = Knobs()
        unknown = set(behaviour) - set(Knobs.NAMES)
        if unknown:
            raise TypeError(f"unknown emulator setting(s) {sorted(unknown)}; known: {', '.join(Knobs.NAMES)}")
        self.knobs.set(page_size=page_size, **behaviour)
        # reset() restores these per-run knobs (the shared test emulator relies on it)
        self._initial_knobs = self.knobs.current()
        self._initial_lifetime = token_lifetime
        self.tokens = TokenGate(token, token_lifetime)
        self.throttler = Throttler(throttle or ThrottleConfig.graph())
        self.faults = FaultInjector(faults)
        self.lies = LieInjector(LieConfig.from_value(lies))
        self._load_tenant()
        self._reset_stats()

    @property
    def page_size(self) -> int:
        return self.knobs.page_size

    # --- control ----------------------------------------------------------------------------
    def _load_tenant(self) -> None:
        self.tenant = st.Tenant(json.loads(self._initial))
        self.resources = Resources(self.tenant, self.knobs)
        self.teacher_edits = TeacherEdits(self.knobs.points)

    def _reset_stats(self) -> None:
        self._seq = 0
        self._batch_no = 0
        self.stats = control.Stats()

    def reset(self, tenant: Json | None = None) -> None:
        """Back to the initial tenant (or a new one): stats, throttle buckets, token ages, fault RNG,
        teacher edits, lagging actions and publishing assignments too; the behaviour knobs
        (:class:`~graph_emulator.behaviour.Knobs`) and ``token_lifetime`` go back to what the
        emulator was started with (faults, lies, throttle and page size stay as configured)."""
        with self._lock:
            if tenant is not None:
                st.validate_tenant(tenant)
                self._initial = json.dumps(tenant)
            self._load_tenant()
            self.throttler.reset()
            self.knobs.set(**self._initial_knobs)
            self.tokens.set_lifetime(self._initial_lifetime)
            self.faults = FaultInjector(self.faults.config)
            self.lies = LieInjector(self.lies.config)
            self._reset_stats()

    def reset_stats(self) -> None:
        with self._lock:
            self._reset_stats()
            self.lies.counts.clear()

    def configure(
        self,
        *,
        faults: Any = ...,
        throttle: Any = ...,
        page_size: int | None = None,
        lies: Any = ...,
        token_lifetime: Any = ...,
        **behaviour: Any,
    ) -> None:
        """Change knobs at runtime; new faults or lies re-seed their generator, a new throttle empties
        buckets, a new token lifetime counts from each token's next use. ``behaviour``: the knobs of
        :class:`~graph_emulator.behaviour.Knobs`."""
        with self._lock:
            self.knobs.set(page_size=page_size, **behaviour)
            if lies is not ...:
                self.lies = LieInjector(LieConfig.from_value(lies))
            if faults is not ...:
                self.faults = FaultInjector(FaultConfig.from_value(faults))
            if throttle is not ...:
                self.throttler = Throttler(ThrottleConfig.from_value(throttle))
            if token_lifetime is not ...:
                self.tokens.set_lifetime(token_lifetime)

    def state(self) -> Json:
        with self._lock:
            return self.tenant.snapshot()

    def stats_snapshot(self) -> Json:
        """The counts of :meth:`control.Stats.snapshot`, plus ``lies``, ``throttle_state`` and ``config``."""
        with self._lock:
            snap = self.stats.snapshot()
            snap["lies"] = dict(self.lies.counts)
            snap["throttle_state"] = self.throttler.phase_info()
            snap["config"] = {
                "lies": self.lies.config.to_dict() if self.lies.config else None,
                "page_size": self.knobs.page_size,
                "throttle": self.throttler.config.to_dict(),
                "faults": self.faults.config.to_dict() if self.faults.config else None,
                "token_lifetime": self.tokens.lifetime,
                **self.knobs.current(),
            }
            return snap

    def teacher_edits_listing(self) -> Json:
        with self._lock:
            return self.teacher_edits.listing()

    def schedule_teacher_edits(self, payload: Any) -> Json:
        with self._lock:
            before = len(self.teacher_edits.applied)
            out = self.teacher_edits.schedule(payload, self.tenant)
            self.stats.counts["teacher_edits_applied"] += len(self.teacher_edits.applied) - before
            return out

    # --- ASGI -------------------------------------------------------------------------------
    async def __call__(self, scope: Json, receive: asgi.Receive, send: asgi.Send) -> None:
        if scope["type"] == "lifespan":
            await asgi.lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        arrived = self.clock()
        body = await asgi.read_body(receive)
        headers = asgi.headers_of(scope)
        path: str = scope["path"]
        method: str = scope["method"]
        if path.startswith("/_emulator"):
            await asgi.send_answer(send, control.handle(self, method, path, body))
            return
        query = scope.get("query_string", b"").decode("latin-1")
        host = headers.get("host") or "{}:{}".format(*scope.get("server", ("127.0.0.1", 80)))
        with self._lock:
            self._seq += 1
            self.stats.counts["http_requests"] += 1
            ctx = Ctx(seq=self._seq, now=self.clock(), base=f"http://{host}")
            answer = self._http(ctx, method, path, query, headers, body)
            malformed = (
                answer.status == 200
                and answer.body is not None
                and self.lies.active
                and self.lies.malformed(routing.route_name(method, path))
            )
        # an answer takes its latency from the request's arrival: the emulator's own work counts
        # within it, as Graph's own work counts within the time its clients wait for an answer
        # (added on top, four envelopes in flight would each wait for the others' work as well)
        wait = ctx.delay - (self.clock() - arrived)
        if wait > 0:
            await self._sleep(wait)
        if ctx.drop:
            await asgi.send_dropped(send, answer)
        await asgi.send_answer(send, answer, malformed=malformed)

    # --- Graph requests ---------------------------------------------------------------------
    def _http(
        self, ctx: Ctx, method: str, path: str, query: str, headers: dict[str, str], body: bytes
    ) -> Answer:
        version, rest = routing.split_version(path)
        crid = headers.get("client-request-id")
        counts = self.stats.counts
        if version not in VERSIONS:
            counts["graph_requests"] += 1
            self.stats.by_route[f"{method} <unknown>"] += 1
            return odata_error(404, f"Unknown API version '{version}': use /v1.0 or /beta.", "notFound", crid)
        is_batch = rest == "/$batch"
        counts["batches" if is_batch else "graph_requests"] += 1
        refusal = self.tokens.refusal(headers.get("authorization", ""), ctx.now)
        if refusal is not None:  # a $batch envelope is refused as a whole
            message, expired = refusal
            if not is_batch:
                self.stats.route(method, rest, 401)
            counts["unauthorized"] += 1
            counts["expired_tokens"] += int(expired)
            return odata_error(401, message, "InvalidAuthenticationToken", crid)
        ctx.scope = self.token  # every accepted token (T, T.1 ...) is the same app
        if is_batch:
            if method != "POST":
                return odata_error(405, "Only POST is allowed on $batch.", "methodNotAllowed", crid)
            return self._batch(ctx, version, crid, body)
        return self._one(ctx, method, version, rest, query, headers, body, level="http")

    def _fault(self, level: str) -> Fault:
        cfg = self.faults.config
        if cfg is None or not (cfg.at_http if level == "http" else cfg.at_sub):
            return Fault(None, 0.0)
        fault = self.faults.draw()
        if fault.kind:
            self.stats.faults[level][fault.kind] += 1
        return fault

    def _throttled(self, retry_after: float | None, crid: str | None) -> Answer:
        self.stats.counts["throttled"] += 1
        ans = odata_error(429, ERROR_MESSAGES[429], "activityLimitReached", crid)
        if retry_after is not None:
            form = self.faults.config.retry_after_form if self.faults.config else "decimal"
            ans.headers["Retry-After"] = format_retry_after(retry_after, form)
        return ans

    def _error_for(
        self, ctx: Ctx, status: int, with_ra: bool, crid: str | None, kind: str = "assignments"
    ) -> Answer:
        if status == 429:
            ra = None
            if with_ra:
                ra = self.faults.config.retry_after if self.faults.config else 0.2
                self.throttler.block(ctx.scope, ctx.now, ra, ctx.seq, kind)
            return self._throttled(ra, crid)
        return odata_error(status, ERROR_MESSAGES[status], None, crid)

    def _after_fault(
        self, ctx: Ctx, fault: Fault, ans: Answer, crid: str | None, kind: str = "assignments"
    ) -> Answer:
        """What a fault that lets the request run does to its answer (drop, slow, applied error)."""
        if fault.kind == "drop":
            ctx.drop = True
        elif fault.kind == "slow":
            ctx.delay = max(ctx.delay, self.faults.config.slow_seconds if self.faults.config else 0.0)
        elif fault.kind == "applied_error":
            return self._error_for(ctx, fault.error_status, fault.error_retry_after, crid, kind)
        return ans

    def _one(
        self,
        ctx: Ctx,
        method: str,
        version: str,
        rest: str,
        query: str,
        headers: dict[str, str],
        body: Any,
        *,
        level: str,
    ) -> Answer:
        """One Graph operation: throttle, faults, then the handler. ``body`` is bytes or parsed JSON.
        Rostering reads (classes, members, users) count against their own limit (``limit_kind``)."""
        crid = headers.get("client-request-id")
        kind = limit_kind(rest)
        decision = self.throttler.check(ctx.scope, ctx.now, ctx.seq, kind)
        if decision.early:
            self.stats.counts["early_retries"] += 1
        if not decision.allowed:
            ans = self._throttled(decision.retry_after, crid)
        else:
            fault = self._fault(level)
            ctx.delay = ctx.delay + fault.latency if level == "http" else max(ctx.delay, fault.latency)
            if fault.kind in ("429", "429_no_ra"):
                ans = self._error_for(ctx, 429, fault.kind == "429", crid, kind)
            elif fault.kind in ("500", "502", "503", "504"):
                ans = odata_error(int(fault.kind), ERROR_MESSAGES[int(fault.kind)], None, crid)
            else:
                ans = self._dispatch(ctx, method, version, rest, query, headers, body)
                if method == "GET" and ans.status == 200 and self.lies.active:
                    url = f"{ctx.base}/{version}{rest}" + (f"?{query}" if query else "")
                    params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
                    route = routing.route_name(method, f"/{version}{rest}")
                    ans.body = self.lies.body(route, url, params, ans.body)
                if ans.applied:
                    self.stats.counts["writes_applied"] += 1
                ans = self._after_fault(ctx, fault, ans, crid, kind)
        self.stats.route(method, rest, ans.status)
        return ans

    # --- $batch -----------------------------------------------------------------------------
    def _batch(self, ctx: Ctx, version: str, crid: str | None, raw: bytes) -> Answer:
        fault = self._fault("http")
        ctx.delay += fault.latency
        if fault.kind in ("429", "429_no_ra"):
            return self._error_for(ctx, 429, fault.kind == "429", crid)
        if fault.kind in ("500", "502", "503", "504"):
            return odata_error(int(fault.kind), ERROR_MESSAGES[int(fault.kind)], None, crid)
        parsed = batch.parse_requests(raw, crid)
        if isinstance(parsed, Answer):
            return self._after_fault(ctx, fault, parsed, crid)
        reqs, order = parsed

        def run_one(method: str, rest: str, query: str, headers: dict[str, str], body: Any) -> Answer:
            self.stats.counts["graph_requests"] += 1
            self.stats.counts["batch_subrequests"] += 1
            if "batch-headers" in self.knobs.broken:  # a Graph that ignores a sub-request's own headers
                headers = {"content-type": headers.get("content-type", "")}
            return self._one(ctx, method, version, rest, query, headers, body, level="sub")

        def count(method: str, rest: str, status: int) -> None:
            self.stats.counts["graph_requests"] += 1
            self.stats.counts["batch_subrequests"] += 1
            self.stats.route(method, rest, status)

        results = batch.run(ctx, order, run_one, count)
        responses = batch.envelope(reqs, results, self.seed, self._batch_no)
        self._batch_no += 1
        if self.lies.active:
            responses = self.lies.batch(responses)
        return self._after_fault(ctx, fault, batch.answer(responses), crid)

    # --- dispatch ---------------------------------------------------------------------------
    def _dispatch(
        self, ctx: Ctx, method: str, version: str, rest: str, query: str, headers: dict[str, str], body: Any
    ) -> Answer:
        crid = headers.get("client-request-id")
        found = routing.match(method, rest, crid)
        if isinstance(found, Answer):
            return found
        route, ids = found
        if "writes" in self.knobs.broken and method in WRITE_METHODS:  # a token without write permission
            return odata_error(403, FORBIDDEN, "accessDenied", crid)
        params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        if isinstance(body, bytes | bytearray):
            try:
                body = json.loads(body) if body.strip() else None
            except ValueError:
                return odata_error(400, "The request body is not valid JSON.", "invalidRequestBody", crid)
        if route.handler in GRADE_WRITES:  # a teacher edit due now lands just before this write
            before = len(self.teacher_edits.applied)
            self.teacher_edits.before_write(self.tenant)
            self.stats.counts["teacher_edits_applied"] += len(self.teacher_edits.applied) - before
        call = Call(ctx, version, rest, params, body, headers)
        try:
            ans: Answer = getattr(self.resources, route.handler)(call, *ids)
        except QueryError as exc:
            return odata_error(400, str(exc), exc.inner, crid)
        except NotFound as exc:
            if exc.code:
                return education_error(404, exc.code, str(exc), crid)
            return odata_error(404, str(exc), "notFound", crid)
        except Refused as exc:
            return odata_error(exc.status, str(exc), exc.inner, crid)
        if self.teacher_edits.on_read and route.handler in SUBMISSION_READS and ans.status == 200:
            before = len(self.teacher_edits.applied)  # an edit waiting for this read lands just after it
            self.teacher_edits.after_read(self.tenant, _submissions_shown(ans.body))
            self.stats.counts["teacher_edits_applied"] += len(self.teacher_edits.applied) - before
        ans.headers.setdefault("request-id", str(uuid4()))
        if crid:
            ans.headers.setdefault("client-request-id", crid)
        return ans
