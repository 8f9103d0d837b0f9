"""Apply a reviewed plan to Graph exactly: every write on a fresh read, a hard deadline, then
re-verification of unknown fates and reconciliation.

Whether the plan may be applied at all (its age, how many grades it changes, lowers or clears, how
many students it covers) is decided before the executor starts, by the pipeline's guards
(``guards.plan_verdict``); the executor refuses only a plan already run (``--resume`` finishes it).

::

    apply_plan(plan, client, journal=..., options=...)
      1. refuse a plan this journal already ran, unless resuming
      2. the operations, assignment by assignment (oldest read first), cut into envelopes of
         ``MAX_BATCH``; this thread prepares each envelope right before a lane takes it:
         a. the deadline: an envelope that would not be answered before it (by what this run has
            learnt about how long an envelope takes, ``window.EnvelopeTimes``) is not sent — it and
            every later one are carried over (``carried_over``)
         b. just-in-time reads: the operations whose read (the plan's ``read_at``, or this run's)
            would be older than ``read_write_window`` when the write lands are read again — only
            what went stale, the cheaper of their assignments' listings or their submissions one by
            one — usually already done by the read ahead (one more envelope in flight, GETs only,
            reading the next envelopes' assignments while these are written); each operation is
            decided on the newest read (``decide.py``): write, already done, conflict (changed since
            it was read: never a silent overwrite) or carried over (the read could not be made)
         c. journal ``sending`` (committed) → a lane posts the envelope (``client.batch``) through a
            gate that looks again right before it leaves, after the pacer's wait: past the deadline,
            or its read gone stale meanwhile (a Retry-After pause, a full lane) → held back, never
            sent, and prepared again on a new read (an envelope held back twice is split in two)
         d. the answers, journalled as they come (committed); a 2xx carries the value written: it
            is the verification (``writes.py``)
      3. operations whose fate is unknown (dropped connection, 5xx/429 after sending, 409 on create)
         go round again: re-read (their submissions, batched), decided (done, conflict, send once
         more) — a create is never re-sent without that read; up to ``max_rounds`` rounds
      4. with ``--return`` (``publish.py``): return the written submissions of the allowed assignments
      5. reconcile (``reconcile.py``): every input row gets a status and what Teams holds

A transient failure (429, 5xx, network, an expired token, a read that could not be made) never makes
a row final: it stays ``pending``/``sending`` in the journal and is reported ``carried_over``;
``--resume`` and the next sync finish it. A 401, or Graph unreachable, stops the run (nothing more
is sent): its rows are carried over too.

Three-way sync: with a ``Memory`` (``state/memory.py``), every successful grade write is remembered
just before the journal records it, and grades found agreeing with the gradebook become the new base.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pandas as pd

from gradesync.config import ApplySettings, PublishSettings, Settings
from gradesync.errors import (
    AuthError,
    GradesyncError,
    NetworkError,
    TerminalGraphError,
    TransientGraphError,
    UsageError,
)
from gradesync.execute.decide import SEND_KINDS, Current, Decision, Kind, decide, decide_from_plan
from gradesync.execute.lanes import Answers, Lanes
from gradesync.execute.publish import PublishResult, publish
from gradesync.execute.reads import (
    AssignmentRead,
    read_assignments,
    read_assignments_in_turn,
    read_submissions,
)
from gradesync.execute.reconcile import reconcile
from gradesync.execute.window import Deadline, EnvelopeTimes, Pair, ReadTimes
from gradesync.execute.writes import dry_outcome, final_outcome, interpret, request_for
from gradesync.graph import MAX_BATCH, Gate, GraphClient, HeldBack
from gradesync.guards import GuardLimits, OverwriteGuard, parse_duration, plan_figures
from gradesync.models import Action, Operation, Plan
from gradesync.outcome import Status
from gradesync.single import equal as single_equal
from gradesync.state.journal import PENDING, SENDING, Journal, OpRecord, Outcome
from gradesync.state.memory import Memory, Written

__all__ = ["ApplyOptions", "ApplyResult", "apply_plan", "deadline_of", "order_of", "plan_hash"]

Progress = Callable[[str, int, int], None]
T = TypeVar("T")

# how long an envelope is assumed to take (leaving → answered) until this run has timed one: the
# deadline and the read-to-write window are kept with it; a measured time replaces it at once
DEFAULT_ENVELOPE_GUESS = timedelta(seconds=1)
PREPARED_AHEAD = 2  # envelopes prepared (read, decided, journalled) beyond those in flight
MAX_HOLDS = 4  # an envelope of one operation held back this often (its read went stale) is carried over

_SETTINGS = ApplySettings()  # the defaults below are the settings' own: there is no second copy
_WINDOW = parse_duration(_SETTINGS.read_write_window, "read_write_window")


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ApplyOptions:
    """How one apply writes. Built from ``[apply]`` by :meth:`from_settings`; a field given here
    directly (tests, benchmarks) defaults to the setting's default. Whether a plan may be applied
    at all is not the executor's question: the pipeline's guards answer it before the executor
    starts."""

    on_conflict: str = _SETTINGS.on_conflict  # skip | overwrite
    dry_run: bool = False
    resume: bool = False
    wave_size: int | None = None  # cut the operations into waves of this many (an envelope never
    # spans two; progress is told after each envelope's answer); None: one stream
    # read back after writing: "uncertain" only the assignments holding a write whose fate is still
    # unknown — the write answers verify the rest; "all" every touched assignment (one more listing
    # each: catches a change made right after our write, e.g. by another run)
    verify: str = _SETTINGS.verify
    max_rounds: int = 6  # re-verify/re-send rounds for operations whose fate is unknown
    publish: bool = False  # --return: return (publish) the submissions this plan wrote
    publish_assignments: tuple[str, ...] = ()  # [publish] assignments: names or ids, "*" = all
    # [publish] statuses: the submission statuses a return may publish (as a teacher would return)
    publish_statuses: tuple[str, ...] = tuple(PublishSettings().statuses)
    # [publish] unreturned_feedback: "publish" feedback not yet returned (noted) or "refuse" to return
    publish_unreturned_feedback: str = PublishSettings().unreturned_feedback
    # [policy] excuse_feedback = "delete": an excuse may delete the teacher's feedback and rubric
    excuse_deletes_feedback: bool = False
    # no grade lands on a read older than this; 0: read right before each envelope
    read_write_window: timedelta = _WINDOW
    deadline: datetime | None = None  # aware UTC: nothing is sent after it; the rest is carried over
    envelope_guess: timedelta = DEFAULT_ENVELOPE_GUESS  # an envelope's time until one was timed
    # the run's guard limits: with on_conflict = "overwrite", each overwrite of a grade changed since
    # the plan counts against them as the plan's own changes did (None: overwrites are not limited)
    limits: GuardLimits | None = None
    now: Callable[[], datetime] = _utcnow  # the wall clock: read once per run (plan age, read_at, deadline)
    clock: Callable[[], float] = time.monotonic  # every duration inside a run

    def __post_init__(self) -> None:
        if self.on_conflict not in ("skip", "overwrite"):
            raise UsageError(f"--on-conflict must be skip or overwrite, not {self.on_conflict!r}")
        if self.verify not in ("all", "uncertain"):
            raise UsageError(f"--verify must be all or uncertain, not {self.verify!r}")
        if (self.wave_size is not None and self.wave_size < 1) or self.max_rounds < 1:
            raise UsageError("wave size and rounds must be at least 1")
        if self.read_write_window < timedelta(0):
            raise UsageError("the read-to-write window cannot be negative")
        if self.deadline is not None and self.deadline.tzinfo is None:
            raise UsageError("the deadline must be a timezone-aware time")

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        dry_run: bool = False,
        resume: bool = False,
        publish: bool = False,
        now: datetime | None = None,
    ) -> ApplyOptions:
        """The executor's options from ``[apply]`` (and ``[publish]`` for ``--return``); every
        field of ``[apply]`` the executor uses is passed, none is dropped."""
        a = settings.apply
        return cls(
            on_conflict=a.on_conflict,
            verify=a.verify,
            dry_run=dry_run,
            resume=resume,
            publish=publish,
            publish_assignments=tuple(settings.publish.assignments) if publish else (),
            publish_statuses=tuple(settings.publish.statuses),
            publish_unreturned_feedback=settings.publish.unreturned_feedback,
            excuse_deletes_feedback=settings.policy.excuse_feedback == "delete",
            read_write_window=parse_duration(a.read_write_window, "read_write_window"),
            deadline=deadline_of(a, now or _utcnow()),
            limits=GuardLimits.from_settings(a),
        )

    @property
    def overwrite(self) -> bool:
        return self.on_conflict == "overwrite"


def deadline_of(a: ApplySettings, now: datetime) -> datetime | None:
    """The moment to stop sending (aware UTC): ``deadline`` ("HH:MM" local, the next such moment)
    or ``max_duration`` from ``now``, whichever comes first; None: no limit."""
    found: list[datetime] = []
    if a.deadline:
        hour, minute = (int(x) for x in a.deadline.strip().split(":"))
        local = now.astimezone()
        target = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if target <= local:
            target += timedelta(days=1)
        found.append(target.astimezone(UTC))
    if a.max_duration and a.max_duration.strip().lower() not in ("off", "none", "no"):
        found.append(now + parse_duration(a.max_duration, "max_duration"))
    return min(found) if found else None


@dataclass(slots=True)
class ApplyResult:
    """What an apply did — facts, not a verdict (``outcome.judge`` gives that): the reconciliation
    rows and the figures the summary needs."""

    rows: pd.DataFrame  # PLAN_COLUMNS + after_points, status (Status values), request_id, returned
    plan_hash: str
    graph_stats: dict[str, Any]
    elapsed_seconds: float
    dry_run: bool
    notes: list[str] = field(default_factory=list)
    return_failed: int = 0  # --return: written submissions that could not be returned
    return_carried: int = 0  # --return: written submissions not returned because the deadline came first
    error: GradesyncError | None = None  # what stopped the run early (AuthError, NetworkError)


# --- identity ------------------------------------------------------------------------------------
def plan_hash(plan: Plan) -> str:
    """The plan's identity in the journal: its header and every operation, canonically hashed."""
    fields: tuple[str, ...] = ("row_key", "class_id", "assignment_id", "submission_id", "outcome_id")
    fields += ("desired_points", "before_points", "before_modified")
    ops = [[o.action.value, *(getattr(o, f) for f in fields)] for o in plan.operations()]
    payload = {
        **({"id": plan.plan_id} if plan.plan_id else {}),
        "created_at": plan.created_at,
        "graph": plan.graph_base_url,
        "config": plan.config_hash,
        "ops": ops,
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _pair(op: Operation) -> Pair:
    return (op.class_id, op.assignment_id)


def _chunks(items: list[T], n: int) -> Iterable[list[T]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def _oldest_first(at: float | None) -> float:
    return float("-inf") if at is None else at


def order_of(ops: list[Operation], times: ReadTimes | None = None) -> list[Operation]:
    """Operations assignment by assignment (row order within each). With ``times``: first the
    assignments whose read is still within the window, the one closest to leaving it first (each is
    written on the read it has, while it lasts: no read again), then the others (read just in time)."""
    by_pair: dict[Pair, list[Operation]] = {}
    for op in sorted(ops, key=lambda o: (_pair(o), o.row_key)):
        by_pair.setdefault(_pair(op), []).append(op)
    if times is not None:
        key = {pair: (not times.fresh(pair), _oldest_first(times.last_read(pair))) for pair in by_pair}
        by_pair = dict(sorted(by_pair.items(), key=lambda kv: key[kv[0]]))
    return [op for group in by_pair.values() for op in group]


@dataclass(slots=True)
class Envelope:
    """Up to ``MAX_BATCH`` operations that leave together (one ``$batch``)."""

    keys: list[int]
    pairs: frozenset[Pair] = frozenset()  # the assignments its operations write to
    held: int = 0  # times the gate held it back because its read went stale while it waited
    to_send: dict[int, Decision] = field(default_factory=dict)
    read_at: dict[int, float | None] = field(default_factory=dict)  # when each decision's read began
    sent_at: float | None = None  # when it left (run's clock), set by the gate
    why: str = ""  # "deadline" or "stale" when the gate held it back


@dataclass(slots=True)
class ReadStamp:
    """When a read's first request left, after the pacer's wait (until then: when it was asked
    for): its content is at least that new, so the read counts from then."""

    asked: float
    left: float | None = None

    def leaving(self, now: float) -> None:
        if self.left is None:
            self.left = now

    @property
    def at(self) -> float:
        return self.asked if self.left is None else self.left


@dataclass(slots=True)
class ReadAhead:
    """A read of upcoming envelopes' assignments, made while the current ones are written. Its
    pages are told as they come (``shown``): an envelope whose submissions have all been shown
    need not wait for the rest of the listings (their later pages, the other assignments)."""

    pairs: set[Pair]
    stamp: ReadStamp  # on the run's monotonic clock
    future: Future[AssignmentRead] | None = None
    shown: dict[str, Current] = field(default_factory=dict)  # submission id → what a page showed
    changed: threading.Condition = field(default_factory=threading.Condition)

    def page(self, current: dict[str, Current]) -> None:
        """A page came (in the reader's thread)."""
        with self.changed:
            self.shown.update(current)
            self.changed.notify_all()

    def finished(self, _: object = None) -> None:
        with self.changed:
            self.changed.notify_all()

    def done(self) -> bool:
        return self.future is not None and self.future.done()

    def wait_for(self, submission_ids: set[str]) -> dict[str, Current] | None:
        """What the pages showed of ``submission_ids``, once every one has been shown; None when the
        read ended first (a submission no page shows may be gone: only the whole listing says)."""
        with self.changed:
            while not submission_ids <= self.shown.keys():
                if self.done():
                    return None
                self.changed.wait()
            return {sid: self.shown[sid] for sid in submission_ids}


class Executor:
    """One apply of one plan. ``run`` is the recipe; each step below is one method."""

    def __init__(
        self,
        client: GraphClient,
        journal: Journal | None,
        options: ApplyOptions,
        progress: Progress | None = None,
        memory: Memory | None = None,
    ) -> None:
        self.client = client
        self.options = options
        self.journal = None if options.dry_run else journal
        self.note: Progress = progress or (lambda step, done, total: None)
        self.memory = memory
        self.phash = ""
        self.ops: dict[int, Operation] = {}
        self.records: dict[int, OpRecord] = {}
        self.seen: dict[str, Current] = {}  # submission id → its newest read in this run
        self._seen_at: dict[str, float] = {}  # when that read started
        self.gone: set[str] = set()  # submissions this run found deleted
        self.read_pairs: set[Pair] = set()  # assignments this run listed itself
        self.read_subs: set[str] = set()  # submissions this run read one by one
        self.pages: dict[Pair, int] = {}  # pages each listing took: what reading it again costs
        self._items = 0  # submissions those listings held
        self._plan_rows: dict[Pair, int] = {}  # the plan's rows per assignment (about its roster)
        # maybe sent: re-read before anything else is decided, by a read that began after this time
        # (when the uncertain answer came; a read ahead begun earlier may not show that write)
        self.must_read: dict[int, float] = {}
        self.stop: GradesyncError | None = None  # AuthError / NetworkError: nothing more is sent
        self.overwrites: OverwriteGuard | None = None  # on_conflict = "overwrite": the guards' count
        self.times = ReadTimes(options.read_write_window, options.clock)
        self.deadline = Deadline(None, now=options.now(), clock=options.clock)
        self.envelope_times = EnvelopeTimes(options.envelope_guess.total_seconds())
        self.total = 0
        self._counted: set[int] = set()  # keys told to the progress callback
        # what the guarantees are measured by: (left, answered) of every envelope of writes, and per
        # write the time from the start of the read it rested on to the end of its answer
        self.sends: list[tuple[float, float]] = []
        self.gaps: dict[int, float] = {}
        self._unjournalled: list[Outcome] = []  # taken, not yet journalled (see _record)
        self._lanes: Lanes[Envelope] = Lanes(
            int(getattr(client, "max_in_flight", 4)), self._post, self._lanes_width
        )
        self._reader: ThreadPoolExecutor | None = None  # the read ahead
        self._ahead: ReadAhead | None = None

    # ------------------------------------------------------------------ the recipe
    def run(self, plan: Plan) -> ApplyResult:
        opts = self.options
        started = opts.clock()
        self.phash = plan_hash(plan)
        if opts.overwrite and opts.limits is not None:
            self.overwrites = OverwriteGuard(plan_figures(plan.rows), opts.limits)
        self.ops = {op.row_key: op for op in plan.operations()}
        rows = plan.rows[["class_id", "assignment_id"]].dropna().astype(str)
        self._plan_rows = {(str(c), str(a)): int(n) for (c, a), n in rows.value_counts().items()}
        self._refuse_a_second_run()
        self._load_records()
        open_ops = [op for k, op in self.ops.items() if not self.records[k].final]
        now = opts.now()
        self.times = ReadTimes.from_plan(
            getattr(plan, "read_at", None),
            {_pair(op) for op in open_ops},
            window=opts.read_write_window,
            now=now,
            clock=opts.clock,
        )
        self.deadline = Deadline(opts.deadline, now=now, clock=opts.clock)
        if self.journal is not None:
            self.journal.start(self.phash, plan.created_at, self.ops.values())
        try:
            self._write(order_of(open_ops, self.times))
        finally:
            self._close_threads()
        if self.journal is not None and self.stop is None and all(r.final for r in self.records.values()):
            self.journal.finish_run(self.phash)
        rows, notes, published = self._report(plan)
        return ApplyResult(
            rows=rows,
            plan_hash=self.phash,
            graph_stats=self.client.stats.asdict(),
            elapsed_seconds=opts.clock() - started,
            dry_run=opts.dry_run,
            notes=notes,
            return_failed=len(published.failed) if published is not None else 0,
            return_carried=len(published.carried) if published is not None else 0,
            error=self.stop,
        )

    # ------------------------------------------------------------------ 1. before any I/O
    def _refuse_a_second_run(self) -> None:
        journal = self.journal
        run = journal.run_state(self.phash) if journal else None
        if run is not None and not self.options.resume:
            assert journal is not None
            what = "was already applied" if run["state"] == "finished" else "was interrupted"
            raise UsageError(
                f"this plan {what} (run started {run['started_at']}, journal {journal.path})",
                code="plan-already-run",
                hint="use --resume to finish it (or to re-check and report it); never apply a plan twice",
            )

    def _load_records(self) -> None:
        prior = self.journal.ops(self.phash) if self.journal else {}
        self.records = {
            k: prior.get(k) or OpRecord(k, op.action.value, PENDING) for k, op in self.ops.items()
        }

    # ------------------------------------------------------------------ 2 and 3. the writes
    def _write(self, ordered: list[Operation]) -> None:
        """Every open operation once, then the rounds that settle the unknown fates."""
        keys = [op.row_key for op in ordered]
        now = self.options.clock()  # a run died meanwhile: any read of this run will do
        self.must_read = {k: now for k in keys if self.records[k].status == SENDING}
        self.total = len(keys)
        self.note("writing", 0, self.total)
        unknown = self._stream(keys)
        for _ in range(self.options.max_rounds):
            if not unknown or self.stop is not None or self.options.dry_run:
                break
            unknown = self._stream(sorted(unknown))
        for k in sorted(unknown):  # left ``sending``: --resume re-verifies them, never re-sends blindly
            rec = self.records[k]
            rec.message = rec.message or (
                f"could not confirm the write after {rec.attempts} attempt(s): Graph kept failing; "
                "carried over: `gradesync apply --resume` (or the next sync) re-checks it"
            )

    def _stream(self, keys: list[int]) -> set[int]:
        """Send ``keys`` envelope by envelope; returns the keys whose fate is unknown (re-read in the
        next round). Each envelope is prepared (read, decided, journalled) just before its turn — one
        ahead of the lanes, so that a lane coming free takes the next itself at once, before this
        thread records the answers it brought — and looked at again by the gate as it leaves."""
        size = self.options.wave_size or max(1, len(keys))
        queue = deque(self._envelope(c) for wave in _chunks(keys, size) for c in _chunks(wave, MAX_BATCH))
        lanes = self._lanes
        unknown: set[int] = set()
        self._read_ahead(queue)  # the first envelopes' assignments, read together
        while queue or lanes.waiting or lanes.in_flight:
            lanes.start()
            prepared: list[Envelope] = []
            while (
                queue
                and self.stop is None
                and lanes.waiting + len(prepared) + lanes.in_flight <= self._width() + PREPARED_AHEAD - 1
            ):
                env = queue.popleft()
                self._shown_first(env, queue)
                idle = self._width() - lanes.in_flight - lanes.waiting - len(prepared)
                if prepared and idle > 0 and self._would_wait(env):
                    # a lane is idle (the first envelopes): the prepared ones go now, not after
                    # this one's read; once the lanes are busy, a round's envelopes are journalled
                    # together — and so are the first ones, when their reads are all in
                    self._journal_sending(prepared)
                    lanes.offer(prepared)
                    prepared = []
                if not self._prepare(env, unknown):
                    queue.appendleft(env)
                    break
                if env.to_send:
                    prepared.append(env)
                if prepared and lanes.in_flight + lanes.waiting + len(prepared) == self._width():
                    self._journal_sending(prepared)  # the idle lanes each have one: they go
                    lanes.offer(prepared)
                    prepared = []
                self._read_ahead(queue, lanes.in_flight + lanes.waiting + len(prepared))
            if prepared:
                self._journal_sending(prepared)
                lanes.offer(prepared)
            if (queue or lanes.waiting) and (self.stop is not None or self._deadline_passed()):
                self._unsent(lanes.unsent())
                self._carry_over([k for e in queue for k in e.keys], self._why_not_sent())
                queue.clear()
            if lanes.in_flight:
                for env, answers in lanes.take():
                    unknown |= self._answered(env, answers, queue)
        self._flush()
        return unknown

    def _would_wait(self, env: Envelope) -> bool:
        """Whether preparing ``env`` would wait for a read (one not shown yet, or not even begun)."""
        ahead = self._ahead
        for k in env.keys:
            op = self.ops[k]
            if not self._stale(op):
                continue
            if ahead is None or _pair(op) not in ahead.pairs or k in self.must_read:
                return True
            if not ahead.done() and op.submission_id not in ahead.shown:
                return True
        return False

    def _lanes_width(self) -> int:
        """How many envelopes the lanes may have on their way now (none once the run has stopped)."""
        return 0 if self.stop is not None else self._width()

    def _unsent(self, unsent: list[Envelope]) -> None:
        """Prepared envelopes that will not leave (the run stopped, or the deadline came): their
        writes were never sent — back to ``pending``, carried over."""
        why = self._why_not_sent()
        self._record([Outcome(k, PENDING, message=why) for env in unsent for k in sorted(env.to_send)])

    def _envelope(self, keys: list[int], held: int = 0) -> Envelope:
        return Envelope(keys, frozenset(_pair(self.ops[k]) for k in keys), held)

    def _shown_first(self, env: Envelope, queue: deque[Envelope]) -> None:
        """While the read ahead is still reading, swap the operations of ``env`` whose submissions
        no page has shown yet for ones of later envelopes whose submissions a page has shown (of
        the assignments it reads: all read at the same moment, so the order among them changes no
        read's age). The envelope then leaves on the first pages, not after the listings' last.
        Only in one stream (an envelope never leaves its wave) and never for a held-back envelope."""
        ahead = self._ahead
        if ahead is None or ahead.done() or self.options.wave_size is not None or env.held:
            return
        with ahead.changed:
            shown = set(ahead.shown)

        def waiting(k: int) -> bool:
            op = self.ops[k]
            return _pair(op) in ahead.pairs and op.submission_id not in shown and self._stale(op)

        missing = [i for i, k in enumerate(env.keys) if waiting(k)]
        if not missing:
            return
        for later in queue:
            if later.held:
                continue
            for j, k in enumerate(later.keys):
                op = self.ops[k]
                if _pair(op) in ahead.pairs and op.submission_id in shown and k not in self.must_read:
                    i = missing.pop()
                    env.keys[i], later.keys[j] = k, env.keys[i]
                    if not missing:
                        break
            later.pairs = frozenset(_pair(self.ops[k]) for k in later.keys)
            if not missing:
                break
        env.pairs = frozenset(_pair(self.ops[k]) for k in env.keys)

    def _deadline_passed(self) -> bool:
        return not self.options.dry_run and not self.deadline.allows(self.envelope_times.expected)

    def _why_not_sent(self) -> str:
        if self.stop is not None:
            return f"not sent: the run stopped ({self.stop.message})"
        return (
            f"not sent: the deadline {self.deadline.text} was reached; `gradesync apply --resume` "
            "(or the next sync) sends it"
        )

    def _prepare(self, env: Envelope, unknown: set[int]) -> bool:
        """Read what went stale, decide each operation, record the final decisions; ``env.to_send``
        is what to send. False: nothing was done (the deadline, or the run stopped)."""
        if self._deadline_passed():
            return False
        ops = [self.ops[k] for k in env.keys]
        try:
            failed = self._refresh(ops)
        except (AuthError, NetworkError) as err:
            self.stop = self.stop or err
            return False
        if failed is None:
            return False
        decisions: dict[int, Decision] = {}
        for op in ops:
            k = op.row_key
            if k in failed:
                if k in self.must_read:  # maybe sent, and not read: left ``sending`` for the next round
                    unknown.add(k)
                    continue
                decisions[k] = _read_failed(failed[k])
            elif _pair(op) in self.read_pairs or op.submission_id in self.read_subs:
                decisions[k] = self._decide(op)
            else:
                decisions[k] = decide_from_plan(op)
        if self.options.dry_run:
            for k, d in decisions.items():
                self._set(dry_outcome(self.ops[k], d))
            self._progress(decisions)
            return True
        finals = [o for k, d in decisions.items() if (o := final_outcome(self.ops[k], d)) is not None]
        self._record(finals)
        self._progress(o.row_key for o in finals)
        env.to_send = {k: d for k, d in decisions.items() if d.kind in SEND_KINDS}
        # the gate holds each write to the read it was decided on (a newer read of the same
        # assignment, made for another envelope, does not make this decision any fresher)
        env.read_at = {
            k: self.times.last_read(_pair(self.ops[k]), self.ops[k].submission_id) for k in env.to_send
        }
        return True

    def _decide(self, op: Operation) -> Decision:
        """``op`` decided on this run's newest read of its submission."""
        sid = op.submission_id
        cur = None if sid in self.gone else self.seen.get(sid)
        ours: tuple[float, ...] = ()
        if self.memory is not None and op.action is Action.CREATE and cur is not None:
            last = self.memory.get(sid)
            if last is not None and isinstance(last.get("points"), int | float):
                ours = (float(last["points"]),)  # type: ignore[arg-type]
        maybe_sent = self.records[op.row_key].status == SENDING
        opts = self.options

        def decided(overwrite: bool) -> Decision:
            return decide(
                op,
                cur,
                overwrite=overwrite,
                maybe_sent=maybe_sent,
                delete_work=opts.excuse_deletes_feedback,
                ours=ours,
            )

        d = decided(False)
        if d.kind is not Kind.CONFLICT or not opts.overwrite:
            return d
        if self.overwrites is not None and cur is not None:
            limit = self.overwrites.admit(
                op.row_key,
                before=op.before_points,
                update=op.action is Action.UPDATE,
                found=cur.points if cur.outcome_id is not None else None,
                desired=op.desired_points,
            )
            if limit is not None:
                why = f"not overwritten: with the grades changed in Teams since the plan counted, the {limit}"
                return dataclasses.replace(d, message=f"{d.message}; {why}")
        return decided(True)

    # ------------------------------------------------------------------ just-in-time reads
    def _stale(self, op: Operation) -> bool:
        """Must ``op``'s submission be read before it is written? When its fate is unknown, or when
        its read would be older than the window by the time the write lands."""
        if op.row_key in self.must_read:
            return True
        return not self.times.fresh(_pair(op), op.submission_id, lead=self.envelope_times.expected)

    def _refresh(self, ops: list[Operation]) -> dict[int, GradesyncError] | None:
        """Read the submissions of ``ops`` that went stale (waiting for the read ahead when it is
        reading them); returns the keys whose read failed, with why (None: the deadline came, or the
        run stopped)."""
        stale = [op for op in ops if self._stale(op)]
        ahead = self._ahead
        if stale and ahead is not None and (ahead.pairs & {_pair(o) for o in stale} or ahead.done()):
            if ahead.done() or not self._from_pages(ahead, [o for o in stale if _pair(o) in ahead.pairs]):
                self._take_read_ahead()
            stale = [op for op in stale if self._stale(op)]
        if not stale:
            return {}
        if self.stop is not None or self._deadline_passed():
            return None
        return self._read_now(stale)

    def _read_now(self, ops: list[Operation]) -> dict[int, GradesyncError]:
        """Read ``ops``' submissions now, the cheaper way: their assignments' listings (pages as the
        last listing took, one if never listed), or the submissions one by one (a GET each)."""
        stamp = ReadStamp(self.options.clock())
        pairs = {_pair(op) for op in ops}
        subs = {op.row_key: op.submission_path for op in ops}
        failed: dict[int, GradesyncError] = {}
        if len(subs) <= sum(self._listing_cost(p) for p in pairs):
            found = read_submissions(self.client, subs, gate=self._read_gate(stamp))
            started = stamp.at
            for op in ops:
                k, sid = op.row_key, op.submission_id
                if k not in found:
                    failed[k] = TransientGraphError(f"Graph did not answer the read of submission {sid}")
                    continue
                cur = found[k]
                if cur is None:
                    self.gone.add(sid)
                else:
                    self._saw({sid: cur}, started)
                self.read_subs.add(sid)
                self.times.mark_submissions([sid], at=started)
                self._read_after_mark(k, started)
            return failed
        read = read_assignments(self.client, pairs, gate=self._read_gate(stamp))
        self._merge(read, stamp.at)
        return {op.row_key: read.errors[_pair(op)] for op in ops if _pair(op) in read.errors}

    def _from_pages(self, ahead: ReadAhead, ops: list[Operation]) -> bool:
        """Read ``ops``' submissions from the pages the read ahead has shown so far (waiting until
        each one was): every page is a read of what it shows, from when the read began — the
        envelope need not wait for the listings' later pages. False: the read ended first (then
        the whole read is taken, which also says which submissions are gone)."""
        found = ahead.wait_for({op.submission_id for op in ops})
        if found is None:
            return False
        started = ahead.stamp.at
        self._saw(found, started)
        self.read_subs.update(found)
        self.times.mark_submissions(found, at=started)
        for op in ops:
            self._read_after_mark(op.row_key, started)
        return True

    def _listing_cost(self, pair: Pair) -> int:
        """The pages reading ``pair``'s listing costs: as its last listing in this run took, else
        estimated from the plan's rows of it at the items per page seen so far (25 before any)."""
        if pair in self.pages:
            return self.pages[pair]
        per_page = self._items / max(1, sum(self.pages.values())) if self.pages else 25.0
        return max(1, math.ceil(self._plan_rows.get(pair, 1) / max(1.0, per_page)))

    def _merge(self, read: AssignmentRead, started: float) -> None:
        """A listing read (now or ahead) becomes this run's newest read of its assignments."""
        ok = set(read.pages)
        self.times.mark(ok, at=started)
        self.read_pairs |= ok
        self.pages.update(read.pages)
        self._items += sum(len(users) for pair, users in read.roster.items() if pair in ok)
        self._saw(read.current, started)
        for k in [k for k in self.must_read if _pair(self.ops[k]) in ok]:
            self._read_after_mark(k, started)

    def _mark_unknown(self, keys: Iterable[int]) -> None:
        now = self.options.clock()
        self.must_read.update(dict.fromkeys(keys, now))

    def _read_after_mark(self, key: int, started: float) -> None:
        """A read that began at ``started`` settles ``key`` only if it began after its fate became
        unknown."""
        if key in self.must_read and started >= self.must_read[key]:
            del self.must_read[key]

    def _saw(self, current: dict[str, Current], started: float) -> None:
        """Keep each submission's newest read (a read ahead merged late never hides a newer one)."""
        for sid, cur in current.items():
            if started >= self._seen_at.get(sid, -math.inf):
                self.seen[sid], self._seen_at[sid] = cur, started

    def _read_gate(self, stamp: ReadStamp | None = None) -> Gate:
        """Reads wait for no slot beyond the deadline; ``stamp`` learns when the read first left."""
        clock = self.options.clock

        def ready() -> None:
            if stamp is not None:
                stamp.leaving(clock())

        return Gate(time_left=self.deadline.left, ready=ready)

    def _read_ahead(self, queue: deque[Envelope], ahead_of: int = 0) -> None:
        """Start reading the upcoming envelopes' assignments that would be stale by the time they
        leave (one more envelope in flight, GETs only), so that their reads are done when their turn
        comes; reads no further ahead than half the window (a read made earlier would go stale
        again). Nothing is read ahead with a window of 0, in a dry run, or while the client learns
        Graph's pace (one envelope at a time, reads included)."""
        window = self.times.window
        if window <= 0 or self.options.dry_run or self._learning():
            return
        if self._ahead is not None:  # one at a time; a finished one is taken, and the next begins
            if not self._ahead.done():
                return
            self._take_read_ahead()
        step = self._seconds_per_envelope()
        wanted: dict[Pair, None] = {}  # in the order they are written
        for j, env in enumerate(queue, start=ahead_of):  # ``ahead_of`` envelopes leave before these
            lead = j * step
            if lead > window / 2 or len(wanted) >= MAX_BATCH:
                break
            lead += self.envelope_times.expected
            wanted.update((p, None) for p in sorted(env.pairs) if not self.times.fresh(p, lead=lead))
        pairs = set(itertools.islice(wanted, MAX_BATCH))
        if not pairs:
            return
        if self._reader is None:
            self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gradesync-read")
        ahead = ReadAhead(pairs, ReadStamp(self.options.clock()))
        gate = self._read_gate(ahead.stamp)
        ahead.future = self._reader.submit(
            read_assignments_in_turn, self.client, pairs, gate=gate, on_page=ahead.page
        )
        ahead.future.add_done_callback(ahead.finished)
        self._ahead = ahead

    def _take_read_ahead(self) -> None:
        """Merge the read ahead (waiting for it); an AuthError/NetworkError stops the run."""
        ahead, self._ahead = self._ahead, None
        if ahead is None or ahead.future is None:
            return
        try:
            self._merge(ahead.future.result(), ahead.stamp.at)
        except (AuthError, NetworkError) as err:
            self.stop = self.stop or err

    def _seconds_per_envelope(self) -> float:
        """About how long apart envelopes leave: the lanes' pace (once an envelope was timed), or
        the pacer's when it binds."""
        step = self.envelope_times.expected / self._width() if self.envelope_times.measured else 0.0
        pace = float(getattr(self.client, "pace", 0.0) or 0.0)
        limited = getattr(getattr(self.client, "rate_limit", None), "enabled", False)
        return max(step, MAX_BATCH / pace) if limited and pace > 0 else step

    # ------------------------------------------------------------------ sending
    def _journal_sending(self, envs: list[Envelope]) -> None:
        """Journal these envelopes ``sending`` (committed before they can leave), in one commit with
        the outcomes taken since the last one (see :meth:`_flush`)."""
        keys = sorted(k for env in envs for k in env.to_send)
        assert self.journal is not None
        self._flush(sending=keys)
        for k in keys:
            self.records[k].status = SENDING
            self.records[k].attempts += 1

    def _post(self, env: Envelope) -> Answers:
        """One envelope (in a lane): the answers, or the AuthError/NetworkError that stopped it."""
        keys = sorted(env.to_send)
        env.why, env.sent_at = "", None
        try:
            return self.client.batch(
                [request_for(self.ops[k], env.to_send[k]) for k in keys], gate=self._gate(env)
            )
        except (AuthError, NetworkError) as err:
            return err

    def _gate(self, env: Envelope) -> Gate:
        """The last look before the envelope leaves (in the lane, after the pacer's wait): its
        answer must come before the deadline, and every write must still land on a read within the
        window. ``time_left`` keeps the pacer and the retries from waiting past the deadline."""
        window = self.times.window
        clock = self.options.clock

        def ready() -> str | None:
            lead = self.envelope_times.expected
            if not self.deadline.allows(lead):
                env.why = "deadline"
                return f"its answer would come after the deadline {self.deadline.text}"
            now = clock()
            if window > 0 and any(at is None or now + lead - at > window for at in env.read_at.values()):
                env.why = "stale"
                return "its read would be older than the read-to-write window when it lands"
            env.sent_at = now
            return None

        def time_left() -> float | None:
            left = self.deadline.left()
            return None if left is None else left - self.envelope_times.expected

        def took(_: float) -> None:  # timed on the run's own clock, from the gate to the answer's end
            if env.sent_at is None:
                return
            now = clock()
            self.envelope_times.observe(now - env.sent_at)
            self.sends.append((env.sent_at, now))
            for k, at in env.read_at.items():  # read → answer: what the window bounds (measured)
                if at is not None:
                    self.gaps[k] = now - at

        return Gate(time_left=time_left, ready=ready, took=took)

    def _answered(self, env: Envelope, answers: Answers, queue: deque[Envelope]) -> set[int]:
        """What one envelope's answers mean (in this thread); returns the keys whose fate is unknown.
        Writes held back by the gate were never sent: prepared again on a new read (the envelope
        split in two once held back twice), or carried over when the deadline held them."""
        keys = sorted(env.to_send)
        if isinstance(answers, GradesyncError):
            self.stop = self.stop or answers  # some writes may have gone: left ``sending`` (re-read)
            self._mark_unknown(keys)
            return set()
        outcomes: list[Outcome] = []
        held: list[int] = []
        for k in keys:
            answer = answers[str(k)]
            if isinstance(answer.error, HeldBack):
                if answer.attempts == 1:
                    held.append(k)  # never left
                else:
                    outcomes.append(Outcome(k, SENDING))  # an earlier attempt left: re-read it
                continue
            if isinstance(answer.error, AuthError) and self.stop is None:
                self.stop = answer.error  # a refused token or a missing permission: nothing else can succeed
            outcomes.append(interpret(self.ops[k], env.to_send[k], answer))
        if held:
            outcomes += self._held(env, held, queue)
        self._record([o for o in outcomes if o.status != SENDING])
        unknown = {o.row_key for o in outcomes if o.status == SENDING}
        self._mark_unknown(unknown)
        self._progress(set(keys) - set(held))
        return unknown

    def _held(self, env: Envelope, held: list[int], queue: deque[Envelope]) -> list[Outcome]:
        if env.why == "deadline" or self._deadline_passed():
            return [Outcome(k, PENDING, message=self._why_not_sent()) for k in held]
        if env.held + 1 >= MAX_HOLDS and len(held) == 1:
            why = (
                "not sent: Graph's pace kept it from landing within the read-to-write window "
                f"({self.times.window:g} s); carried over: `gradesync apply --resume` sends it"
            )
            return [Outcome(k, PENDING, message=why) for k in held]
        parts = [held] if env.held == 0 else [held[: len(held) // 2], held[len(held) // 2 :]]
        for part in reversed([p for p in parts if p]):
            queue.appendleft(self._envelope(part, env.held + 1))
        return [Outcome(k, PENDING) for k in held]

    def _progress(self, keys: Iterable[int]) -> None:
        new = set(keys) - self._counted
        if new:
            self._counted |= new
            self.note("writing", len(self._counted), self.total)

    def _learning(self) -> bool:
        """Whether the client's pacer is still learning Graph's pace (``GraphClient.learning``, the
        rule its own ``batch`` follows): then one envelope at a time, reads included."""
        return bool(getattr(self.client, "learning", False))

    def _width(self) -> int:
        """Envelopes in flight at once: the client's ``max_in_flight``, or one while it is learning."""
        return 1 if self._learning() else max(1, int(getattr(self.client, "max_in_flight", 4)))

    def _close_threads(self) -> None:
        """Wait for the envelopes on their way (after an error in this thread — a full disk, Ctrl-C —
        none more leaves; what is on its way stays ``sending`` in the journal) and the read ahead."""
        self._lanes.close()
        if self._ahead is not None and self._ahead.future is not None:
            wait([self._ahead.future])
        self._ahead = None
        if self._reader is not None:
            self._reader.shutdown(wait=True)
            self._reader = None

    def _carry_over(self, keys: list[int], message: str) -> None:
        """Operations not sent in this run: they stay open in the journal (``pending``, or
        ``sending`` when a send may have happened), reported ``carried_over`` with ``message``."""
        outcomes = []
        for k in keys:
            rec = self.records[k]
            if rec.final or self.options.dry_run:
                continue
            if rec.status == SENDING:
                rec.message = rec.message or message
                continue
            outcomes.append(Outcome(k, PENDING, message=message))
        self._record(outcomes)

    # ------------------------------------------------------------------ journal and memory
    def _set(self, outcome: Outcome) -> None:
        rec = self.records[outcome.row_key]
        rec.status = outcome.status
        rec.outcome_id = outcome.outcome_id or rec.outcome_id
        rec.after_points = outcome.after_points
        rec.http_status = outcome.http_status
        rec.request_id = outcome.request_id
        rec.message = outcome.message

    def _record(self, outcomes: list[Outcome]) -> None:
        """Take ``outcomes`` now; the journal gets them at the next :meth:`_flush` — before any
        envelope is journalled ``sending`` again, and at the end — so the journal commits once per
        round of envelopes, not twice per envelope. A run killed before the flush leaves those writes
        ``sending``: the next run re-reads them, never re-sends them blindly."""
        if not outcomes:
            return
        if self.journal is not None:
            self._unjournalled.extend(outcomes)
        for o in outcomes:
            self._set(o)

    def _flush(self, sending: list[int] | None = None) -> None:
        """Journal the outcomes taken since the last flush and, with ``sending``, mark those
        operations ``sending`` after them — one commit (a commit is a disk sync: one per round of
        envelopes, not two)."""
        outcomes, self._unjournalled = self._unjournalled, []
        if self.journal is None:
            return
        if not outcomes:
            if sending:
                self.journal.mark_sending(self.phash, sending)
            return
        if self.memory is not None:  # before the journal: a recorded write is always remembered
            self.memory.remember(self._written(outcomes))
            self.memory.remember_excused(self._excused(outcomes))
        if sending:
            self.journal.record(self.phash, outcomes, sending=sending)
        else:
            self.journal.record(self.phash, outcomes)

    def _excused(self, outcomes: list[Outcome]) -> list[str]:
        """The submissions these outcomes excused (an excuse still being applied is never re-sent)."""
        return [
            self.ops[o.row_key].submission_id
            for o in outcomes
            if o.status == Status.EXCUSED and o.row_key in self.ops
        ]

    def _written(self, outcomes: list[Outcome]) -> list[Written]:
        """The grade writes among ``outcomes`` (updated/created, or already at the desired value)."""
        out = []
        remembered = (Status.UPDATED, Status.CREATED, Status.UNCHANGED)
        for o in outcomes:
            op = self.ops.get(o.row_key)
            if op is None or op.action is Action.EXCUSE or o.status not in remembered:
                continue
            points = o.after_points if o.after_points is not None else op.desired_points
            out.append(
                Written(
                    op.submission_id, op.class_id, op.assignment_id, o.outcome_id or op.outcome_id, points
                )
            )
        return out

    # ------------------------------------------------------------------ 3 and 4. return, reconcile
    def _report(self, plan: Plan) -> tuple[pd.DataFrame, list[str], PublishResult | None]:
        opts = self.options
        published = None
        notes: list[str] = []
        if opts.publish and not opts.dry_run and self.stop is None:
            self.note("returning", 0, 0)
            published = publish(
                self.client,
                plan.rows,
                self.records,
                opts.publish_assignments,
                statuses=opts.publish_statuses,
                unreturned_feedback=opts.publish_unreturned_feedback,
                gate=Gate(time_left=self.deadline.left, ready=self._return_stopped),
            )
        rows, read_notes = reconcile(
            plan,
            self.client,
            self.records,
            seen=self.seen,
            dry_run=opts.dry_run,
            verify=opts.verify,
            read_back=self.stop is None and (opts.dry_run or not self._deadline_passed()),
            gate=self._read_gate(),
        )
        notes += read_notes
        if self.stop is not None:
            notes.append(f"the run stopped early: {self.stop.message}; the rows not written are carried over")
        rows["returned"] = False
        if published is not None:
            keys = rows["row_key"].astype(int)
            rows["returned"] = keys.isin(published.returned)
            said = keys.map(published.row_notes())  # failed, left alone on purpose, or what it published
            has = said.notna()
            rows.loc[has, "message"] = rows.loc[has, "message"].astype(str) + "; " + said[has].astype(str)
            notes += published.notes
        elif opts.publish and opts.dry_run:
            notes.append("dry run: nothing was returned to students")
        if self.memory is not None and not opts.dry_run:
            self._remember_agreements(rows)
        return rows, notes, published

    def _return_stopped(self) -> str | None:
        """Why a return may not leave now: the deadline (a return is a write), else None."""
        if self._deadline_passed():
            return f"the deadline {self.deadline.text} was reached before returning"
        return None

    def _remember_agreements(self, rows: pd.DataFrame) -> None:
        """Three-way sync: a grade a teacher changed that the gradebook now agrees with (a noop whose
        remembered value differs) becomes the new base, so later gradebook changes are ordinary."""
        if "last_written_points" not in rows:
            return
        remembered = rows["last_written_points"].astype(float)
        now = rows["after_points"].astype(float)
        agree = (
            (rows["action"] == Action.NOOP.value)
            & (rows["reason"].fillna("") == "")
            & (rows["status"] == Status.UNCHANGED)
            & rows["submission_id"].notna()
            & remembered.notna()
            & now.notna()
            & ~single_equal(remembered, now)  # compared as Teams stores points (a Single)
        )
        assert self.memory is not None
        self.memory.remember(
            Written(str(r.submission_id), r.class_id, r.assignment_id, r.outcome_id, float(r.after_points))
            for r in rows[agree].itertuples(index=False)
        )


def _read_failed(err: GradesyncError) -> Decision:
    """An operation whose assignment could not be read: a terminal answer (the class or the
    assignment is gone, 400) fails it; anything transient carries it over (never final)."""
    if isinstance(err, TerminalGraphError):
        return Decision(
            Kind.FAILED, message=f"could not read the assignment to confirm the plan: {err.message}"
        )
    return Decision(
        Kind.CARRY,
        message=f"not sent: could not read the assignment to confirm the plan ({err.message}); "
        "carried over: `gradesync apply --resume` (or the next sync) re-checks it",
    )


def apply_plan(
    plan: Plan,
    client: GraphClient,
    *,
    journal: Journal | None,
    options: ApplyOptions | None = None,
    progress: Progress | None = None,
    memory: Memory | None = None,
) -> ApplyResult:
    """Apply ``plan`` through ``client`` (see the module docstring).

    ``memory``: the three-way sync state database; every successful grade write is remembered there.
    The guards are not run here (the pipeline runs them before calling this).
    Raises UsageError (already applied without --resume),
    StorageError (the journal failed). An expired token or an unreachable Graph mid-run stops the
    run with its rows carried over (``ApplyResult.error``), not raised.
    """
    return Executor(client, journal, options or ApplyOptions(), progress, memory).run(plan)
