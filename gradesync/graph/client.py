"""The one GraphClient all of gradesync's Graph traffic goes through.

A request walks down a short chain; the network sits behind one seam (``httpx``'s transport)::

    get / get_all / get_all_many / batch
      └── RetryEngine (engine.py)   ONE engine for single requests, $batch sub-requests and pages:
            │                       rounds; retry decided by the error's type; waits from retry.py
            └── _send               pacer (token buckets + Retry-After pauses, ratelimit.py) →
                                    token (renewed once on a 401) → origin check → httpx (pooled)
                                    → bounded read → error mapping (errors.py, the only place
                                    errors are built)

Rules it keeps (Graph's contract, with its sources: docs/GRAPH.md):

* Every request and every ``$batch`` sub-request carries ``Prefer: include-unknown-enum-members``
  (Graph shows ``excused``/``reassigned`` submissions only then; without it they read ``returned``).
* The bearer token goes only to the configured base URL's scheme, host and port; a nextLink
  elsewhere is refused (``graph-foreign-nextlink``), a looping one detected (``graph-nextlink-loop``).
* Transient failures (429, 500, 502, 503, 504, timeouts, dropped connections, malformed JSON in a
  2xx, a batch answer missing a request, a broken page) are retried, honouring ``Retry-After``,
  else with exponential backoff and full jitter, bounded by attempts and a time budget. A Graph
  that cannot be reached at all ends as ``GraphUnreachableError`` (a NetworkError, exit 7).
* A ``Retry-After`` anywhere (whole response or one sub-response) pauses *everything* this client
  sends until it has passed: Graph throttles the app, not the request. A 429 also teaches the
  pacer a lower pace when Graph throttles below its documented limits.
* A 401 renews the token once (``token_provider(force_refresh=True)``) and resends; a second 401
  is an AuthError.
* A POST (a create: not idempotent) is never resent once it may have reached Graph: a POST whose
  envelope failed or whose sub-response was 429/5xx/401 comes back ``fate_unknown=True``.
* Every request is counted in :class:`GraphStats`.
"""

from __future__ import annotations

import inspect
import logging
import random
import re
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import httpx
import msgspec

from gradesync.errors import AuthError, GraphError, TransientGraphError
from gradesync.graph.decode import FALLBACK_ERRORS, TypedPage, envelope_answers, loads
from gradesync.graph.engine import AnyGraphError, RetryEngine
from gradesync.graph.errors import (
    HeldBack,
    foreign_link,
    held_back,
    is_token_rejected,
    malformed_answer,
    map_graph_error,
    map_transport_error,
    mark_sent,
    missing_sub_response,
    next_link_loop,
    token_renewed,
    too_large,
    was_sent,
)
from gradesync.graph.ratelimit import RateLimit, RateLimiter, WaitTooLong
from gradesync.graph.retry import RetryPolicy
from gradesync.graph.urls import ASSIGNMENTS, ROSTERING, limit_kind

__all__ = [
    "MAX_BATCH",
    "PREFER",
    "Gate",
    "GraphClient",
    "GraphStats",
    "PageDecoder",
    "PagedResults",
    "SubRequest",
    "SubResponse",
]

MAX_BATCH = 20  # Graph's limit of requests per $batch envelope
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"})
RETRY_AFTER_MARGIN = 0.01  # seconds added to a Retry-After: the header is rounded to milliseconds
PREFER = "include-unknown-enum-members"  # Graph shows excused/reassigned submissions only with it

log = logging.getLogger("gradesync.graph")


@dataclass(frozen=True, slots=True)
class Gate:
    """What the caller lets one call send — asked by the client itself, not by Graph.

    * ``time_left()``: seconds until the caller's deadline (None: it has none). No wait is started
      that would end past it — neither the pacer's nor a retry's: the requests that would have
      waited come back held back (a :class:`~gradesync.graph.errors.HeldBack` error, never sent).
    * ``ready()``: asked right before an envelope leaves, after its pacing wait; None lets it go, a
      reason holds it back (e.g. the read its writes rest on went stale while it waited).
    * ``took(seconds)``: told how long each request it let go took, from leaving to the end of its
      answer (retry waits not included).
    """

    time_left: Callable[[], float | None] | None = None
    ready: Callable[[], str | None] | None = None
    took: Callable[[float], None] | None = None


@dataclass(frozen=True, slots=True)
class SubRequest:
    """One request inside a ``$batch``; ``url`` is relative to the version root (``/education/...``).
    ``enum_members=False`` leaves out ``Prefer: include-unknown-enum-members`` (only ``gradesync
    doctor`` does, to see what Graph shows a client without it)."""

    id: str
    method: str
    url: str
    body: dict[str, Any] | None = None
    headers: dict[str, str] | None = None
    enum_members: bool = True


@dataclass(frozen=True, slots=True)
class SubResponse:
    """The final answer for one :class:`SubRequest`.

    ``error`` is set (mapped by :func:`~gradesync.graph.errors.map_graph_error`) whenever
    ``status >= 300`` or the request could not be resolved (``status`` 0: no answer at all).
    ``fate_unknown`` is True only for a POST that may or may not have been applied (its envelope
    failed after sending, or it was answered 429/5xx): re-read before deciding anything.
    ``attempts`` is how many times it was sent.
    """

    id: str
    status: int
    body: Any
    headers: dict[str, str]
    error: AnyGraphError | None = None
    fate_unknown: bool = False
    attempts: int = 1

    @property
    def ok(self) -> bool:
        return self.error is None and 200 <= self.status < 300


class PagedResults(dict[str, list[dict[str, Any]]]):
    """``url → every item of every page`` for the collections read completely.

    A url whose listing failed (after retries) is *absent* from the dict and present in
    :attr:`errors` with its mapped error; a partial listing is never returned. :attr:`pages`: how
    many pages each listing took (what reading it again would cost).
    """

    def __init__(self) -> None:
        super().__init__()
        self.errors: dict[str, AnyGraphError] = {}
        self.pages: dict[str, int] = {}

    def raise_first_error(self) -> None:
        for error in self.errors.values():
            raise error


_COUNTERS = (
    "http_requests",
    "batches",
    "sub_requests",
    "reads",
    "writes",
    "retries",
    "throttled",
    "transient_errors",
    "fate_unknown",
    "token_renewals",
)


@dataclass
class GraphStats:
    """Thread-safe counters of what this client sent and met.

    * ``http_requests``: every HTTP request (single requests and ``$batch`` envelopes);
    * ``batches``: ``$batch`` envelopes; ``sub_requests``: requests inside them;
    * ``by_method``: Graph requests by method — single requests plus sub-requests, i.e. what
      counts against Graph's quota (the envelope itself is not counted here);
      ``reads`` = GETs among them, ``writes`` = the rest; ``graph_requests`` = their sum;
    * ``retries``: Graph requests that were re-sends; ``throttled``: 429s seen (whole + sub);
      ``transient_errors``: transient failures seen (429s included); ``fate_unknown``: POSTs left
      with an unknown fate; ``wait_seconds``: time spent sleeping (backoff, Retry-After, rate limit).
    """

    http_requests: int = 0
    batches: int = 0
    sub_requests: int = 0
    reads: int = 0
    writes: int = 0
    retries: int = 0
    throttled: int = 0
    transient_errors: int = 0
    fate_unknown: int = 0
    token_renewals: int = 0
    wait_seconds: float = 0.0
    by_method: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def graph_requests(self) -> int:
        return self.reads + self.writes

    def add(self, **counts: float) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def count_request(self, method: str, *, retry: bool, sub: bool) -> None:
        method = method.upper()
        with self._lock:
            self.by_method[method] = self.by_method.get(method, 0) + 1
            if method == "GET":
                self.reads += 1
            else:
                self.writes += 1
            if retry:
                self.retries += 1
            if sub:
                self.sub_requests += 1

    def asdict(self) -> dict[str, Any]:
        with self._lock:
            data: dict[str, Any] = {name: getattr(self, name) for name in _COUNTERS}
            data["graph_requests"] = self.reads + self.writes
            data["wait_seconds"] = round(self.wait_seconds, 3)
            data["by_method"] = dict(sorted(self.by_method.items()))
            return data


class _Raw(NamedTuple):
    status: int
    headers: dict[str, str]
    content: bytes
    token: str  # the bearer token this request was sent with (to renew exactly that one on a 401)


# A relative path made only of URL-safe characters (what urls.py builds): used as is in $batch.
_PLAIN_PATH = re.compile(r"^/?(?!/)[A-Za-z0-9\-._~!$&'()*+,;=:@/%?]*$")

# (request, its final SubResponse, or the error to retry it after): what one envelope yields per request
_Outcome = tuple[SubRequest, SubResponse | None, AnyGraphError | None]
# Checks a 2xx sub-response body; returns the (transient) error that makes it unusable, or None.
BodyCheck = Callable[[SubRequest, Any], TransientGraphError | None]
# A typed decoder of one listing's 2xx page bodies (gradesync.graph.decode.submissions_page): raises
# one of decode.FALLBACK_ERRORS for a body it does not fit, which is then decoded generically.
PageDecoder = Callable[[msgspec.Raw], TypedPage]


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    default = {"http": 80, "https": 443}.get(url.scheme)
    return (url.scheme, url.host.lower(), url.port or default)


def _with_prefer(headers: Mapping[str, str] | None, enum_members: bool = True) -> dict[str, str]:
    """``headers`` plus ``Prefer: include-unknown-enum-members`` (kept alongside any other preference);
    without ``enum_members``, ``headers`` as given."""
    out = dict(headers or {})
    if not enum_members:
        return out
    for key, value in out.items():
        if key.lower() == "prefer":
            if PREFER.lower() not in value.lower():
                out[key] = f"{value}, {PREFER}"
            return out
    out["Prefer"] = PREFER
    return out


def _takes_force_refresh(provider: Callable[..., str]) -> bool:
    """Whether the token provider accepts ``force_refresh=`` (a bare ``lambda: token`` does not)."""
    try:
        params = inspect.signature(provider).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "force_refresh" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


class GraphClient:
    """The Graph client: retry, paging, ``$batch``, pacing, token renewal and error mapping in one place.

    ``token_provider(force_refresh=False) -> str`` is called for every request (a provider memoises
    its token); on a 401 it is called once with ``force_refresh=True`` and the request is resent; a
    second 401 is an :class:`~gradesync.errors.AuthError`. A provider without the parameter (a bare
    ``lambda: token``) is simply called again. ``http`` (an ``httpx.Client`` you own) or
    ``transport`` (for tests) replace the pooled client built here. ``sleep``, ``clock`` and ``rng``
    are injected so that tests compute waits without waiting.

    ``max_in_flight`` envelopes are sent concurrently by :meth:`batch`. Default 4, by measurement
    against the emulator (360 PATCHes = 18 envelopes, 50 ms latency per HTTP answer, limits off)::

        in flight   1      2      4      6      8      12
        PATCHes/s   325    654    972    1228   1618   2011

    Graph's quota is 35 sub-requests/s (350 per 10 s), so speed beyond that only matters with
    limits off; what matters is staying at the quota when Graph is slow: one 20-request envelope
    takes ~0.3–1 s on the real service, so 1 in flight may fall below 35/s while 4 keep the quota
    busy up to ~2.3 s per envelope, with the pacer (not concurrency) pacing the rest.
    A caveat of any concurrency: envelopes already sent when a 429 arrives reach the blocked scope
    "early"; everything sent after it waits. So during the first burst and while the pace is below
    the ceiling (Graph throttles below its documented limits), envelopes go one at a time
    (:attr:`learning`); ``max_in_flight`` applies once the pace holds at the ceiling.
    """

    def __init__(
        self,
        base_url: str,
        token_provider: Callable[..., str],
        *,
        http: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        policy: RetryPolicy | None = None,
        rate_limit: RateLimit | None = None,
        max_in_flight: int = 4,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        # Pages of one collection before paging is declared endless. A link that changes on every
        # page defeats the seen-link check; 2,000 pages (50,000 items at Graph's small pages) is far
        # above any class or assignment and costs a fifth of an hour's quota, not all of it.
        max_pages: int = 2_000,
        max_response_bytes: int = 256 * 1024 * 1024,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.base_url = base_url.rstrip("/")
        self._base = httpx.URL(self.base_url + "/")
        if self._base.scheme not in ("http", "https") or not self._base.host:
            raise ValueError(f"the Graph base URL must be an absolute http(s) URL, not {base_url!r}")
        self._base_path = self._base.raw_path.decode("ascii").split("?", 1)[0].rstrip("/")
        self._token_provider = token_provider
        self._provider_forces = _takes_force_refresh(token_provider)
        self._token_lock = threading.Lock()
        self._stale_tokens: set[str] = set()  # tokens already renewed after a 401
        self.policy = policy or RetryPolicy()
        self.rate_limit = rate_limit or RateLimit.graph()
        self.max_in_flight = max_in_flight
        self.max_pages = max_pages
        self.max_response_bytes = max_response_bytes
        self._sleep_fn = sleep
        self._clock = clock
        self._owns_http = http is None
        self._http = http or httpx.Client(
            transport=transport,
            timeout=timeout,
            follow_redirects=False,
            limits=httpx.Limits(
                max_connections=max_in_flight + 2, max_keepalive_connections=max_in_flight + 2
            ),
        )
        # one pacer per Graph limit: the assignment service's, and the education rostering APIs'
        # (classes, users, members) — a run's rostering reads never spend the assignments budget
        self._limiter = RateLimiter(self.rate_limit, clock=clock, sleep=self._sleep)
        self._limiters = {
            ASSIGNMENTS: self._limiter,
            ROSTERING: RateLimiter(self.rate_limit.for_rostering(), clock=clock, sleep=self._sleep),
        }
        self._engine = RetryEngine(self.policy, clock=clock, sleep=self._sleep, rng=rng or random.Random())
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self.stats = GraphStats()

    def __repr__(self) -> str:
        return f"GraphClient({self.base_url!r}, max_in_flight={self.max_in_flight})"

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> GraphClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ waiting, tokens

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.stats.add(wait_seconds=seconds)
            self._sleep_fn(seconds)

    @property
    def pace(self) -> float:
        """The pacer's current rate (requests per second; learnt from Graph's 429s)."""
        return self._limiter.rate

    @property
    def learning(self) -> bool:
        """One envelope at a time while the pace is not known to hold: during the first burst (until
        one window's budget was sent) and while Graph throttles us below its documented limits (the
        pace is under the ceiling). A 429 then finds no other envelope already on its way into the
        Retry-After window; at such a pace one envelope in flight is rarely the bottleneck."""
        lim = self.rate_limit
        if not (lim.enabled and lim.adaptive):
            return False
        return self._limiter.reserved < lim.per_10s or self.pace < lim.ceiling

    def _token(self) -> str:
        return self._token_provider(force_refresh=False) if self._provider_forces else self._token_provider()

    def _renew(self, stale: str) -> None:
        """Ask the provider for a fresh token, once per rejected token (concurrent 401s share it)."""
        with self._token_lock:
            if stale in self._stale_tokens:
                return
            self._stale_tokens.add(stale)
            self.stats.add(token_renewals=1)
            if self._provider_forces:
                self._token_provider(force_refresh=True)
            else:
                self._token_provider()

    def _rejected(self, err: AnyGraphError, token: str, renewed: set[str], key: str) -> AnyGraphError:
        """A 401 for ``key``: the first time, renew the token and return a transient error (resend
        at once); a second 401 for the same ``key`` stays the AuthError it is."""
        if not is_token_rejected(err) or key in renewed:
            return err
        renewed.add(key)
        self._renew(token)
        return token_renewed(err)

    # ------------------------------------------------------------------ URLs

    def _absolute(self, url: str) -> httpx.URL:
        """An absolute URL on the configured origin, or a TerminalGraphError (token never sent elsewhere)."""
        if url.startswith(("http://", "https://")) or "://" in url.split("?", 1)[0]:
            try:
                target = httpx.URL(url)
            except httpx.InvalidURL as exc:
                raise map_transport_error(exc, method="GET", url="<invalid URL>") from None
            if _origin(target) != _origin(self._base):
                raise foreign_link(target, self._base)
            return target
        return httpx.URL(self.base_url + "/" + url.lstrip("/"))

    def _relative(self, url: str) -> str:
        """A ``$batch`` item URL: relative to the version root when on it, else absolute (same origin)."""
        if "://" not in url and _PLAIN_PATH.match(url):  # a clean relative path (urls.py): no parsing
            return "/" + url.lstrip("/")
        target = self._absolute(url)
        raw = target.raw_path.decode("ascii")
        path = raw.split("?", 1)[0]
        if path == self._base_path or path.startswith(self._base_path + "/"):
            return raw[len(self._base_path) :] or "/"
        return str(target)

    def _check_next_link(self, link: Any, seen: set[str], pages: int, origin_url: str) -> None:
        if not isinstance(link, str) or not link:
            raise malformed_answer(f"GET {origin_url}", "@odata.nextLink is not a string")
        target = self._absolute(link)  # raises graph-foreign-nextlink
        key = str(target)
        if key in seen or pages >= self.max_pages:
            why = "a link seen before" if key in seen else f"more than {self.max_pages} pages"
            raise next_link_loop(origin_url, why)
        seen.add(key)

    # ------------------------------------------------------------------ the seam

    def _send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        weights: Mapping[str, int] | None = None,
        enum_members: bool = True,
        gate: Gate | None = None,
    ) -> _Raw:
        """Send one HTTP request (after the pacers: buckets and Retry-After pauses; then the caller's
        ``gate``); read at most max_response_bytes. Raises only mapped gradesync errors (a
        :class:`HeldBack` when the gate kept it); HTTP error statuses are returned. ``weights``: the
        Graph requests it carries per limit (a ``$batch`` envelope's sub-requests); by default the
        request itself, against the limit its URL belongs to."""
        target = self._absolute(url)
        left = gate.time_left() if gate is not None and gate.time_left is not None else None
        try:
            for kind, n in (weights or {limit_kind(url): 1}).items():
                if n:
                    self._limiters[kind].acquire(n, max_wait=left)
        except WaitTooLong as exc:
            raise held_back(method, url, f"the deadline comes before the pace allows it ({exc})") from None
        why = gate.ready() if gate is not None and gate.ready is not None else None
        if why:
            raise held_back(method, url, why)
        token = self._token()
        left_at = self._clock()
        try:
            return self._http_send(method, url, target, token, params, body, enum_members)
        finally:
            if gate is not None and gate.took is not None:
                gate.took(self._clock() - left_at)

    def _http_send(
        self,
        method: str,
        url: str,
        target: httpx.URL,
        token: str,
        params: Mapping[str, Any] | None,
        body: Any,
        enum_members: bool = True,
    ) -> _Raw:
        plain = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        headers = _with_prefer(plain, enum_members)
        request = self._http.build_request(method, target, params=params, json=body, headers=headers)
        self.stats.add(http_requests=1)
        try:
            response = self._http.send(request, stream=True)
            try:
                chunks: list[bytes] = []
                total = 0
                for chunk in response.iter_bytes():
                    total += len(chunk)
                    if total > self.max_response_bytes:
                        raise too_large(method, url, self.max_response_bytes)
                    chunks.append(chunk)
                return _Raw(response.status_code, dict(response.headers.items()), b"".join(chunks), token)
            finally:
                response.close()
        except httpx.HTTPError as exc:
            raise map_transport_error(exc, method=method, url=url) from exc

    def _error_answer(self, raw: _Raw, method: str, url: str) -> AnyGraphError:
        """The mapped error of an HTTP answer with an error status (its body may not even be JSON)."""
        try:
            error_body = loads(raw.content)
        except ValueError:
            error_body = None
        err = map_graph_error(raw.status, error_body, raw.headers, method=method, url=url)
        self._note_error(err, limit_kind(url))
        return err

    def _note_error(self, err: AnyGraphError, kind: str = ASSIGNMENTS) -> None:
        """Count a failure; a 429 tells the pacer of the limit it came from (``kind``: pause +
        learning), any Retry-After pauses that limit's requests."""
        if isinstance(err, TransientGraphError) and err.code != "auth-token-renewed":
            throttled = err.status == 429
            self.stats.add(transient_errors=1, throttled=1 if throttled else 0)
            limiter = self._limiters[kind]
            if throttled:
                limiter.throttled(1, _margin(err.retry_after))
            elif err.retry_after is not None:
                limiter.pause(err.retry_after + RETRY_AFTER_MARGIN)

    # ------------------------------------------------------------------ single requests

    def _request_json(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        expect_object: bool = False,
        retry: bool = True,
        enum_members: bool = True,
    ) -> Any:
        """One request through the retry engine; returns the parsed JSON body (``None`` when empty).

        With ``expect_object``, anything but a JSON object is malformed (and retried like one).
        Without ``retry`` (a create) it is sent once — except after a 401, which Graph did not apply.
        """
        answer: dict[str, Any] = {}
        renewed: set[str] = set()

        def send_round(keys: list[str], attempt: int) -> dict[str, AnyGraphError]:
            self.stats.count_request(method, retry=attempt > 1, sub=False)
            try:
                answer["body"] = self._attempt(
                    method, url, params, body, expect_object, renewed, enum_members=enum_members
                )
            except (GraphError, AuthError) as err:
                if retry or (err.code == "auth-token-renewed" and not was_sent(err)):
                    return {"once": err}
                answer["settled"] = err  # a create that may have reached Graph: never resent
            return {}

        failures = self._engine.run(["once"], send_round)
        if failures:
            raise failures["once"]
        if "settled" in answer:
            raise answer["settled"]
        return answer.get("body")

    def _attempt(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        body: Any,
        expect_object: bool,
        renewed: set[str],
        *,
        enum_members: bool = True,
    ) -> Any:
        """Send once; raise the mapped error (a first 401 becomes ``auth-token-renewed``)."""
        try:
            raw = self._send(method, url, params=params, body=body, enum_members=enum_members)
        except TransientGraphError as exc:
            self._note_error(exc, limit_kind(url))
            raise
        if raw.status >= 300:
            err = self._error_answer(raw, method, url)
            err = self._rejected(err, raw.token, renewed, "once")
            if isinstance(err, TransientGraphError) and err.code == "auth-token-renewed":
                mark_sent(err, False)  # refused at the door: nothing was applied
            raise err
        try:
            parsed = loads(raw.content)
        except ValueError as exc:
            err = malformed_answer(f"{method} {url}", str(exc)[:80])
            self._note_error(err, limit_kind(url))
            raise err from None
        if expect_object and not isinstance(parsed, dict):
            err = malformed_answer(f"{method} {url}", "not a JSON object")
            self._note_error(err, limit_kind(url))
            raise err
        return parsed

    def get(
        self, url: str, params: Mapping[str, Any] | None = None, *, enum_members: bool = True
    ) -> dict[str, Any]:
        """GET one resource (with retries). ``url`` is relative to the version root or absolute on it.
        ``enum_members=False`` leaves out the ``Prefer`` header (``gradesync doctor`` compares)."""
        body: dict[str, Any] = self._request_json(
            "GET", url, params=params, expect_object=True, enum_members=enum_members
        )
        return body

    def request(self, method: str, url: str, body: Any = None) -> Any:
        """Any single request with retries. Only idempotent methods are retried: a POST is sent once,
        never again after it may have reached Graph (a transient failure is raised with ``sent``);
        a POST answered 401 (refused, not applied) is resent once with a renewed token."""
        method = method.upper()
        try:
            return self._request_json(method, url, body=body, retry=method in IDEMPOTENT_METHODS)
        except TransientGraphError as exc:
            if exc.code == "graph-malformed-response" and method not in IDEMPOTENT_METHODS:
                return None  # a create's answer we cannot read: it was applied
            raise

    def get_all(self, url: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Every item of a collection: follows ``@odata.nextLink`` (same origin only) until absent.

        Each page is retried on its own. Raises ``graph-foreign-nextlink``/``graph-nextlink-loop``
        (TerminalGraphError) for a link elsewhere or a loop, and the mapped error of a failed page.
        A body without ``value`` (a single entity) is returned as a one-item list.
        """
        items: list[dict[str, Any]] = []
        seen: set[str] = {str(self._absolute(url))}
        link, query, pages = url, params, 0
        while True:
            page = self.get(link, query)
            pages += 1
            value, next_link = _page_items(page, f"GET {link}")
            items.extend(value)
            if not next_link:
                return items
            self._check_next_link(next_link, seen, pages, url)
            link, query = next_link, None

    # ------------------------------------------------------------------ $batch

    def batch(self, requests: Iterable[SubRequest], *, gate: Gate | None = None) -> dict[str, SubResponse]:
        """Send ``requests`` through ``$batch`` (≤ 20 per envelope, ``max_in_flight`` at once).

        Returns ``id → SubResponse`` in input order, one for every request. Rules:

        * every item carries its own ``headers`` with ``Prefer: include-unknown-enum-members``;
        * responses are matched by id; a missing, duplicated or unparsable answer counts as a
          transient failure of that request (``graph-batch-missing-response``), never guessed;
        * idempotent requests (GET, PUT, PATCH, DELETE) failing transiently (429, 5xx, missing
          answer, failed envelope) are re-batched together after the longest ``Retry-After``
          among them (else backoff) until they succeed, fail terminally, or the policy's
          attempt/time budget runs out — then their SubResponse carries the last error
          (``status`` of that error, 0 if none);
        * a 401 (sub-response or envelope) renews the token once and resends just those requests;
          a second 401 is final (a GraphAuthError in the SubResponse, or raised for an envelope);
        * a POST is sent once: if its envelope failed after it may have left (timeout, dropped
          connection, 429/5xx envelope, broken answer) or it was answered 429/5xx/401, it comes
          back ``fate_unknown=True`` with the error. Only an envelope that certainly never left
          (no connection, or refused whole with 401) is resent with its POSTs. A POST answered
          another 4xx is final;
        * other errors are returned in the SubResponse, not raised. The call raises only
          :class:`~gradesync.errors.AuthError` for a second 401 or a 403 on the whole envelope,
          and ``ValueError`` for duplicate ids or a URL off the configured origin;
        * ``gate`` (:class:`Gate`): the caller's deadline and last check before each envelope
          leaves; a request it holds back was never sent (``HeldBack`` error, status 0).
        """
        reqs = list(requests)
        seen: set[str] = set()
        for req in reqs:
            if req.id in seen:
                raise ValueError(f"duplicate $batch request id {req.id!r}")
            seen.add(req.id)
            try:
                self._relative(req.url)
            except GraphError as exc:
                raise ValueError(f"request {req.id!r}: {exc.message}") from None
        return self._run_batch(reqs, gate=gate)

    def _run_batch(
        self,
        reqs: list[SubRequest],
        check: BodyCheck | None = None,
        page: PageDecoder | None = None,
        gate: Gate | None = None,
    ) -> dict[str, SubResponse]:
        """Every request through the retry engine, re-batching the transient failures together.

        ``page`` decodes the 2xx bodies (typed); any other body, or one it does not fit, is decoded
        generically (:func:`~gradesync.graph.decode.loads`)."""
        by_id = {
            r.id: SubRequest(r.id, r.method.upper(), r.url, r.body, r.headers, r.enum_members) for r in reqs
        }
        results: dict[str, SubResponse] = {}
        attempts: dict[str, int] = {}
        renewed: set[str] = set()

        def send_round(ids: list[str], attempt: int) -> dict[str, AnyGraphError]:
            pending = [by_id[i] for i in ids]
            chunks = [pending[i : i + MAX_BATCH] for i in range(0, len(pending), MAX_BATCH)]
            failures: dict[str, AnyGraphError] = {}
            ctx = SubContext("", renewed, check, page, gate)
            for outcome in self._run_envelopes(chunks, attempt, ctx):
                for req, final, err in outcome:
                    attempts[req.id] = attempt
                    if final is not None:
                        results[req.id] = final
                    elif err is not None:
                        failures[req.id] = err
            return failures

        time_left = gate.time_left if gate is not None else None
        for rid, err in self._engine.run(
            list(by_id), send_round, time_left=time_left, on_retry=self._on_retry
        ).items():
            status = getattr(err, "status", None) or 0
            results[rid] = SubResponse(rid, status, None, {}, err, False, attempts[rid])
        return {r.id: results[r.id] for r in reqs}

    def _run_envelopes(
        self, chunks: list[list[SubRequest]], attempt: int, ctx: SubContext
    ) -> list[list[_Outcome]]:
        def one(chunk: list[SubRequest]) -> list[_Outcome]:
            return self._envelope(chunk, attempt, ctx)

        if len(chunks) == 1 or self.max_in_flight == 1 or self.learning:
            return [one(chunk) for chunk in chunks]
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self.max_in_flight, thread_name_prefix="graph-batch"
                )
            pool = self._pool
        futures = [pool.submit(one, chunk) for chunk in chunks]
        outcomes, first_error = [], None
        for future in futures:
            try:
                outcomes.append(future.result())
            except BaseException as exc:
                first_error = first_error or exc
        if first_error is not None:
            raise first_error
        return outcomes

    def _item(self, req: SubRequest) -> dict[str, Any]:
        item: dict[str, Any] = {"id": req.id, "method": req.method, "url": self._relative(req.url)}
        headers = _with_prefer(req.headers, req.enum_members)
        if req.body is not None:
            headers.setdefault("Content-Type", "application/json")
            item["body"] = req.body
        item["headers"] = headers
        return item

    def _envelope(self, chunk: list[SubRequest], attempt: int, ctx: SubContext) -> list[_Outcome]:
        """Send one envelope; per request: a final SubResponse, or the error to re-batch it after."""
        payload = {"requests": [self._item(r) for r in chunk]}
        weights = Counter(limit_kind(r.url) for r in chunk)  # each sub-request counts on its own limit
        kind = ASSIGNMENTS if weights[ASSIGNMENTS] else ROSTERING  # whose 429 a whole-envelope one is
        try:
            raw = self._send("POST", "/$batch", body=payload, weights=weights, gate=ctx.gate)
        except HeldBack as exc:  # never left: nothing to count, nothing applied
            return [(req, SubResponse(req.id, 0, None, {}, exc, False, attempt), None) for req in chunk]
        except GraphError as exc:
            self._count_envelope(chunk, attempt, ctx.attempts)
            self._note_error(exc, kind)
            return self._envelope_failed(chunk, exc, attempt)
        self._count_envelope(chunk, attempt, ctx.attempts)
        if raw.status >= 300:
            return self._envelope_refused(chunk, raw, attempt, ctx.renewed, kind)
        responses = _responses(raw.content)
        if responses is None:
            err = malformed_answer("POST /$batch", "no responses list")
            self._note_error(err, kind)
            return self._envelope_failed(chunk, err, attempt)
        by_id: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for item in responses:
            if isinstance(item, dict) and item.get("id") is not None:
                by_id[str(item["id"])].append(item)
        out: list[_Outcome] = []
        sub_ctx = ctx._replace(token=raw.token)  # this envelope's token
        for req in chunk:
            items = by_id.get(req.id, [])
            if len(items) == 1 and isinstance(items[0].get("status"), int):
                out.append(self._sub_outcome(req, items[0], attempt, sub_ctx))
                continue
            why = "no answer" if not items else f"{len(items)} answers" if len(items) > 1 else "no status"
            err = missing_sub_response(req.method, req.url, req.id, why)
            self._note_error(err, limit_kind(req.url))
            out.append(self._transient_sub(req, err, attempt))
        return out

    def _count_envelope(
        self, chunk: list[SubRequest], attempt: int, attempts: Mapping[str, int] | None = None
    ) -> None:
        self.stats.add(batches=1)
        for req in chunk:
            n = attempts.get(req.id, attempt) if attempts is not None else attempt
            self.stats.count_request(req.method, retry=n > 1, sub=True)

    def _on_retry(self, attempt: int, wait: float, errors: list[AnyGraphError]) -> None:
        """The engine's before-sleep hook: one log line per retry round (codes, never bodies)."""
        codes = sorted({e.code for e in errors})
        log.info("retrying %d request(s) after attempt %d in %.2f s: %s", len(errors), attempt, wait, codes)

    def _envelope_refused(
        self, chunk: list[SubRequest], raw: _Raw, attempt: int, renewed: set[str], kind: str = ASSIGNMENTS
    ) -> list[_Outcome]:
        """The whole envelope answered with an error status (401: renew once and resend it all)."""
        try:
            error_body = loads(raw.content)
        except ValueError:
            error_body = None
        err = map_graph_error(raw.status, error_body, raw.headers, method="POST", url="/$batch")
        if is_token_rejected(err) and not any(r.id in renewed for r in chunk):
            renewed.update(r.id for r in chunk)
            self._renew(raw.token)
            return [(req, None, mark_sent(token_renewed(err), False)) for req in chunk]
        if isinstance(err, AuthError):
            raise err
        self._note_error(err, kind)
        mark_sent(err, True)
        return self._envelope_failed(chunk, err, attempt)

    def _envelope_failed(self, chunk: list[SubRequest], err: AnyGraphError, attempt: int) -> list[_Outcome]:
        sent = was_sent(err)
        out: list[_Outcome] = []
        for req in chunk:
            if isinstance(err, TransientGraphError):
                if not sent:  # never left this machine: safe to resend, POSTs included
                    out.append((req, None, err))
                else:
                    out.append(self._transient_sub(req, err, attempt))
            else:
                status = getattr(err, "status", None) or 0
                # A 4xx for the whole envelope: nothing was applied. A failure while reading the
                # answer (too large, ...) came after Graph ran it: a POST's fate is unknown.
                unknown = req.method not in IDEMPOTENT_METHODS and status == 0 and sent
                if unknown:
                    self.stats.add(fate_unknown=1)
                out.append((req, SubResponse(req.id, status, None, {}, err, unknown, attempt), None))
        return out

    def _transient_sub(self, req: SubRequest, err: AnyGraphError, attempt: int) -> _Outcome:
        """A transient failure of a sub-request that may have reached Graph: an idempotent one is
        retried; a create is final with ``fate_unknown`` (the executor re-reads before deciding)."""
        if req.method in IDEMPOTENT_METHODS:
            return (req, None, err)
        self.stats.add(fate_unknown=1)
        status = getattr(err, "status", None) or 0
        return (req, SubResponse(req.id, status, None, {}, err, True, attempt), None)

    def _sub_outcome(self, req: SubRequest, item: dict[str, Any], attempt: int, ctx: SubContext) -> _Outcome:
        status = int(item["status"])
        raw_headers = item.get("headers")
        headers = {str(k): str(v) for k, v in raw_headers.items()} if isinstance(raw_headers, dict) else {}
        body = item.get("body")
        if isinstance(body, msgspec.Raw):  # from a typed envelope: decoded for this sub-request alone
            body = _body(body, ctx.page if status < 300 else None)
        if status < 300:
            broken = ctx.check(req, body) if ctx.check is not None else None
            if broken is None:
                return (req, SubResponse(req.id, status, body, headers, None, False, attempt), None)
            self._note_error(broken, limit_kind(req.url))
            return self._transient_sub(req, broken, attempt)
        err = map_graph_error(status, body, headers, method=req.method, url=req.url)
        self._note_error(err, limit_kind(req.url))
        err = self._rejected(err, ctx.token, ctx.renewed, req.id)
        if isinstance(err, TransientGraphError):
            return self._transient_sub(req, err, attempt)
        return (req, SubResponse(req.id, status, body, headers, err, False, attempt), None)

    # ------------------------------------------------------------------ many collections

    def get_all_many(
        self,
        urls: Iterable[str],
        *,
        page: PageDecoder | None = None,
        gate: Gate | None = None,
        on_page: Callable[[str, list[Any]], None] | None = None,
    ) -> PagedResults:
        """Read many collections completely through ``$batch`` — the quota-frugal read primitive.

        Round 1 sends every first page (≤ 20 per envelope, ``max_in_flight`` envelopes at once);
        each next round sends the ``@odata.nextLink`` of every collection whose last page came back
        (made relative to the version root), until none is left. Each page costs exactly one
        sub-request (plus retries of transient failures — a broken page inside a 200 sub-response
        is one), so for collections of p₁…pₙ pages the cost is Σpᵢ sub-requests in
        Σ_rounds ⌈open_r / 20⌉ envelopes. A page that failed is retried after its own backoff
        (:meth:`RetryEngine.run_each`) while the other collections go on to their next pages: one
        page failing three times in a row delays its own collection, not every other one.

        Errors are **returned, not raised**: a url whose listing failed (404 class gone, 400,
        retries exhausted, a foreign or looping nextLink, a malformed page) is absent from the
        result and its mapped error is in ``result.errors[url]`` (check ``error.status == 404``
        or ``error.code == "graph-not-found"``). Only an :class:`~gradesync.errors.AuthError`
        (401 twice, 403) is raised, since nothing else can succeed then. Partial listings are
        never returned. Duplicate urls are read once. A body without ``value`` (a single entity,
        e.g. ``/education/classes/{id}``) is returned as a one-item list.

        ``page`` (e.g. :func:`gradesync.graph.decode.submissions_page`) decodes the pages typed: a
        page it fits contributes its typed items, a page it does not fit is decoded generically and
        contributes dicts, exactly as without it (so one listing may hold both).

        ``on_page(url, items)`` hears of each page as it comes (in the calling thread): what a page
        shows is a read of those items even if a later page of the listing fails — a caller may act
        on it early (the executor writes on it), never conclude from it what the listing lacks.
        """
        unique = list(dict.fromkeys(urls))
        result = PagedResults()
        items: dict[str, list[dict[str, Any]]] = {u: [] for u in unique}
        seen: dict[str, set[str]] = {}
        pages: dict[str, int] = dict.fromkeys(unique, 0)
        current: dict[str, str] = {}
        for url in unique:
            try:
                current[url] = self._relative(url)
                seen[url] = {str(self._absolute(url))}
            except GraphError as exc:
                result.errors[url] = exc
        renewed_pages: set[tuple[str, int]] = set()  # pages whose 401 renewed the token: a second is final

        def send_round(
            keys: list[str], attempts: Mapping[str, int]
        ) -> tuple[dict[str, AnyGraphError], set[str]]:
            """Each due collection's current page; the failures, and the collections with a next page."""
            ids = {str(i): k for i, k in enumerate(keys)}
            sent_page = {i: (k, pages[k]) for i, k in ids.items()}
            subs = [SubRequest(i, "GET", current[k]) for i, k in ids.items()]
            chunks = [subs[i : i + MAX_BATCH] for i in range(0, len(subs), MAX_BATCH)]
            tries = {i: attempts[k] for i, k in ids.items()}
            renewed = {i for i, p in sent_page.items() if p in renewed_pages}
            ctx = SubContext("", renewed, _page_check, page, gate, tries)
            try:
                return _judge(ids, chunks, ctx)
            finally:
                renewed_pages.update(sent_page[i] for i in renewed)

        def _judge(
            ids: dict[str, str], chunks: list[list[SubRequest]], ctx: SubContext
        ) -> tuple[dict[str, AnyGraphError], set[str]]:
            failures: dict[str, AnyGraphError] = {}
            more: set[str] = set()
            for outcome in self._run_envelopes(chunks, 1, ctx):
                for req, answer, err in outcome:
                    key = ids[req.id]
                    if answer is None or answer.error is not None:
                        error = err if answer is None else answer.error
                        if isinstance(error, AuthError):
                            raise error
                        if error is not None:
                            failures[key] = error
                        continue
                    value, next_link = _page_items(answer.body, f"GET {current[key]}")
                    pages[key] += 1
                    if on_page is not None:
                        on_page(key, value)
                    try:
                        items[key].extend(value)
                        if next_link:
                            self._check_next_link(next_link, seen[key], pages[key], key)
                            current[key] = self._relative(next_link)
                            more.add(key)
                    except GraphError as exc:  # a link elsewhere or a loop: final, never re-read
                        result.errors[key] = exc
            return failures, more

        time_left = gate.time_left if gate is not None else None
        result.errors.update(
            self._engine.run_each(list(current), send_round, time_left=time_left, on_retry=self._on_retry)
        )
        for url in unique:
            if url not in result.errors:
                result[url] = items[url]
                result.pages[url] = pages[url]
        return result


class SubContext(NamedTuple):
    """What a sub-response is judged with: the envelope's token, the ids renewed once, the body check,
    the typed page decoder, the caller's gate, and each request's attempt number when the requests
    of one envelope are at different attempts (the pages of many listings)."""

    token: str
    renewed: set[str]
    check: BodyCheck | None
    page: PageDecoder | None = None
    gate: Gate | None = None
    attempts: Mapping[str, int] | None = None


def _responses(content: bytes) -> list[Any] | None:
    """The ``responses`` list of a ``$batch`` answer, or ``None`` when there is none.

    Typed first (bodies left raw, decoded per sub-request); an answer of any other shape is decoded
    whole with :func:`~gradesync.graph.decode.loads`, as it always was."""
    typed = envelope_answers(content)
    if typed is not None:
        return typed
    try:
        answer = loads(content)
    except ValueError:
        return None
    responses = answer.get("responses") if isinstance(answer, dict) else None
    return responses if isinstance(responses, list) else None


def _body(raw: msgspec.Raw, page: PageDecoder | None) -> Any:
    """One sub-response's body: typed by ``page`` when it fits, else generically."""
    if page is not None:
        try:
            return page(raw)
        except FALLBACK_ERRORS:
            pass
    return loads(raw)


def _margin(retry_after: float | None) -> float | None:
    return None if retry_after is None else retry_after + RETRY_AFTER_MARGIN


def _page_check(req: SubRequest, body: Any) -> TransientGraphError | None:
    """A 200 sub-response that is not a collection page (or entity) is broken: retried."""
    try:
        _page_items(body, f"GET {req.url}")
    except TransientGraphError as exc:
        return exc
    return None


def _page_items(page: Any, what: str) -> tuple[list[dict[str, Any]], Any]:
    """(items, nextLink) of a collection page; a single entity (no ``value``) is one item."""
    if isinstance(page, TypedPage):  # a typed decoder's page: well-formed by construction
        return page.items, page.next_link
    if not isinstance(page, dict):
        raise malformed_answer(what, "not a JSON object")
    if "value" not in page:
        return [page], None
    value = page["value"]
    if not isinstance(value, list):
        raise malformed_answer(what, "value is not a list")
    return [v for v in value if isinstance(v, dict)], page.get("@odata.nextLink")
