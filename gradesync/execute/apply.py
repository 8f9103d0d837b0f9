"""Apply a reviewed plan to Graph exactly: assignment-by-assignment writes, each on a read no older
than the read-to-write window → re-verification of unknown fates → reconciliation.

Whether the plan may be applied at all (its age, how many grades it changes, lowers or clears, how
many students it covers) is decided before the executor starts, by the pipeline's guards
(``guards.plan_verdict``); the executor refuses only a plan already run (``--resume`` finishes it).

::

    apply_plan(plan, client, journal=..., options=...)
      1. refuse a plan this journal already ran, unless resuming
      2. waves of writes, assignment by assignment, oldest read first (``window.py``):
         a. stop before the deadline: what is not sent is carried over (``carried_over``)
         b. the wave's assignments whose last read (the plan's ``read_at``, or this run's) is older
            than ``read_write_window`` are read again (one ``$expand=outcomes`` listing each,
            batched) — usually already done while the previous wave was written (the early read,
            used only if it is still within the window; never with a window of 0); each operation
            is decided on the newest read (``decide.py``): write, already done, conflict (changed
            since it was read: never a silent overwrite) or carried over (the read could not be made)
         c. journal ``sending`` (committed) → the envelopes stream through ``max_in_flight`` lanes
            (``client.batch`` of one envelope each; after a refusal no lane takes another) → journal
            the answers as they come (committed); the 2xx answers carry the value written: they are
            the verification (``writes.py``)
         d. operations whose fate is unknown (dropped connection, 5xx/429 after sending, 409 on
            create) are re-read (their submission, batched: ``reads.read_submissions``) and decided
            again — a create is never re-sent without that read
      3. with ``--return`` (``publish.py``): return the written submissions of the allowed assignments
      4. reconcile (``reconcile.py``): every input row gets a status and what Teams holds

A transient failure (429, 5xx, network, an expired token, a read that could not be made) never makes
a row final: it stays ``pending``/``sending`` in the journal and is reported ``carried_over``;
``--resume`` and the next sync finish it. A 401, or Graph unreachable, stops the run (nothing more
is sent): its rows are carried over too.

Three-way sync: with a ``Memory`` (``state/memory.py``), every successful grade write is remembered
just before the journal records it, and grades found agreeing with the gradebook become the new base.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pandas as pd

from gradesync import single
from gradesync.config import ApplySettings, PublishSettings, Settings
from gradesync.errors import AuthError, GradesyncError, NetworkError, TerminalGraphError, UsageError
from gradesync.execute.decide import SEND_KINDS, Current, Decision, Kind, decide, decide_from_plan
from gradesync.execute.lanes import Answers, Chunk, Lanes
from gradesync.execute.publish import publish
from gradesync.execute.reads import (
    AssignmentRead,
    read_assignments,
    read_assignments_in_turn,
    read_submissions,
)
from gradesync.execute.reconcile import reconcile
from gradesync.execute.window import Deadline, Pair, ReadTimes
from gradesync.execute.writes import dry_outcome, final_outcome, interpret, request_for
from gradesync.graph import MAX_BATCH, GraphClient
from gradesync.guards import parse_duration
from gradesync.models import Action, Operation, Plan
from gradesync.outcome import Status
from gradesync.state.journal import PENDING, SENDING, Journal, OpRecord, Outcome
from gradesync.state.memory import Memory, Written

Progress = Callable[[str, int, int], None]
T = TypeVar("T")

WAVE_ROUNDS = 4  # a wave (one journal commit) is this many rounds of max_in_flight $batch envelopes
# stop sending this long before the deadline at least (longer when a wave took longer)
DEFAULT_DEADLINE_MARGIN = timedelta(seconds=5)

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
    wave_size: int | None = (
        None  # operations per journal commit; None: 4 rounds of the client's in-flight batches
    )
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
    # no grade is written on a read older than this; 0: re-read right before every write wave
    read_write_window: timedelta = _WINDOW
    deadline: datetime | None = None  # aware UTC: stop sending before it; the rest is carried over
    deadline_margin: timedelta = DEFAULT_DEADLINE_MARGIN
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


def waves_of(ops: list[Operation], size: int, times: ReadTimes | None = None) -> list[list[Operation]]:
    """Operations assignment by assignment, cut into waves of exactly ``size`` (the last one may be
    smaller): an assignment may end one wave and begin the next — its read, made for the first,
    serves the second while it is within the window — so every wave fills whole envelopes and
    whole rounds of the lanes. With ``times``, the assignments read longest ago go first (written
    before their read leaves the window: fewer reads again)."""
    by_pair: dict[Pair, list[Operation]] = {}
    for op in sorted(ops, key=lambda o: (_pair(o), o.row_key)):
        by_pair.setdefault(_pair(op), []).append(op)
    if times is not None:
        last = {pair: times.last_read(pair) for pair in by_pair}
        by_pair = dict(sorted(by_pair.items(), key=lambda kv: _oldest_first(last[kv[0]])))
    ordered = [op for group in by_pair.values() for op in group]
    return list(_chunks(ordered, size))


@dataclass(slots=True)
class EarlyRead:
    """A before-write read of the next wave's assignments, made while this wave is written."""

    pairs: set[Pair]
    started: float  # on the run's monotonic clock
    future: Future[AssignmentRead]


# --- the executor --------------------------------------------------------------------------------
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
        self.read_by_us: set[Pair] = set()  # assignments this run read itself
        self.stop: GradesyncError | None = None  # AuthError / NetworkError: nothing more is sent
        self._lanes = Lanes(int(getattr(client, "max_in_flight", 4)))  # the write envelopes in flight
        self._reader: ThreadPoolExecutor | None = None  # the next wave's before-write read
        self._early: EarlyRead | None = None

    # ------------------------------------------------------------------ the recipe
    def run(self, plan: Plan) -> ApplyResult:
        opts = self.options
        started = opts.clock()
        self.phash = plan_hash(plan)
        self.ops = {op.row_key: op for op in plan.operations()}
        self._refuse_a_second_run()
        self._load_records()
        open_ops = [op for k, op in self.ops.items() if not self.records[k].final]
        now = opts.now()
        times = ReadTimes.from_plan(
            getattr(plan, "read_at", None),
            {_pair(op) for op in open_ops},
            window=opts.read_write_window,
            now=now,
            clock=opts.clock,
        )
        deadline = Deadline(opts.deadline, now=now, clock=opts.clock, margin=opts.deadline_margin)
        if self.journal is not None:
            self.journal.start(self.phash, plan.created_at, self.ops.values())
        try:
            self._write_waves(open_ops, times, deadline)
        finally:
            self._close_threads()
        if self.journal is not None and self.stop is None and all(r.final for r in self.records.values()):
            self.journal.finish_run(self.phash)
        rows, notes, return_failed = self._report(plan)
        return ApplyResult(
            rows=rows,
            plan_hash=self.phash,
            graph_stats=self.client.stats.asdict(),
            elapsed_seconds=opts.clock() - started,
            dry_run=opts.dry_run,
            notes=notes,
            return_failed=return_failed,
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

    # ------------------------------------------------------------------ 2. the waves
    def _write_waves(self, open_ops: list[Operation], times: ReadTimes, deadline: Deadline) -> None:
        opts = self.options
        size = opts.wave_size or MAX_BATCH * int(getattr(self.client, "max_in_flight", 4)) * WAVE_ROUNDS
        waves = waves_of(open_ops, size, times)
        total, done = len(open_ops), 0
        self.note("writing", 0, total)
        for i, wave in enumerate(waves):
            if not opts.dry_run and deadline.reached():
                self._carry_over(
                    [op for w in waves[i:] for op in w],
                    f"not sent: the deadline {deadline.text} was reached; `gradesync apply --resume` "
                    "(or the next sync) sends it",
                )
                return
            began = opts.clock()
            try:
                self._wave(wave, times, deadline, waves[i + 1] if i + 1 < len(waves) else None)
            except (AuthError, NetworkError) as err:
                self.stop = err
            deadline.wave_took(opts.clock() - began)
            done += len(wave)
            self.note("writing", done, total)
            if self.stop is not None:
                why = self.stop.message
                self._carry_over([op for w in waves[i:] for op in w], f"not sent: the run stopped ({why})")
                return

    def _wave(
        self, wave: list[Operation], times: ReadTimes, deadline: Deadline, upcoming: list[Operation] | None
    ) -> None:
        decisions = self._check(wave, times)
        if self.options.dry_run:
            for op in wave:
                self._set(dry_outcome(op, decisions[op.row_key]))
            return
        self._record([o for op in wave if (o := final_outcome(op, decisions[op.row_key])) is not None])
        to_send = {k: d for k, d in decisions.items() if d.kind in SEND_KINDS}

        def read_next() -> None:  # once the wave's first envelope was answered: no refused token
            if upcoming is not None and self.stop is None:
                self._read_early(upcoming, times, exclude={_pair(op) for op in wave})

        unknown = self._send(to_send, read_next)
        self._settle(unknown, deadline)

    def _stale_pairs(self, wave: list[Operation], times: ReadTimes) -> set[Pair]:
        """The assignments of ``wave`` to read before writing it: those whose last read is older than
        the window, and those holding an operation a previous run may have sent (``sending``)."""
        maybe_sent = {_pair(op) for op in wave if self.records[op.row_key].status == SENDING}
        return {p for p in {_pair(op) for op in wave} if times.stale(p)} | maybe_sent

    def _read_early(self, upcoming: list[Operation], times: ReadTimes, exclude: set[Pair]) -> None:
        """Start reading the next wave's stale assignments now, while this wave's writes are in
        flight (one more envelope in flight, of GETs only: ``read_assignments_in_turn``). ``_check``
        uses that read only if it is still within the window when the next wave is about to go; with
        a window of 0 nothing is read early (the read must come right before the wave)."""
        if self.options.read_write_window <= timedelta(0) or self._learning():
            return  # learning: one envelope at a time, reads included (they go before the wave)
        pairs = self._stale_pairs(upcoming, times) - exclude
        if not pairs:
            return
        if self._reader is None:
            self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gradesync-read")
        started = self.options.clock()  # the read's time: its start (earlier than any page it serves)
        self._early = EarlyRead(
            pairs, started, self._reader.submit(read_assignments_in_turn, self.client, pairs)
        )

    def _take_early(self, times: ReadTimes) -> set[Pair]:
        """Merge the early read (if any) into this run's reads; the assignments it read that are
        still within the window (these need no read now)."""
        early, self._early = self._early, None
        if early is None:
            return set()
        read = early.future.result()  # AuthError/NetworkError: the run stops, as for the wave's own read
        ok = early.pairs - read.errors.keys()
        times.mark(ok, at=early.started)
        self.read_by_us |= ok
        self.seen.update(read.current)
        return {p for p in ok if not times.stale(p)}

    def _check(self, wave: list[Operation], times: ReadTimes) -> dict[int, Decision]:
        """Read the wave's stale assignments (and those of maybe-sent operations) again — unless the
        early read made during the previous wave is still within the window — then decide each
        operation on the newest read, or on the plan's own read when that is still fresh."""
        opts = self.options
        fresh = self._take_early(times)
        need = self._stale_pairs(wave, times) - fresh
        maybe_sent = {op.row_key for op in wave if self.records[op.row_key].status == SENDING}
        started = opts.clock()
        read = read_assignments(self.client, need)
        times.mark(need - read.errors.keys(), at=started)
        self.read_by_us |= need - read.errors.keys()
        self.seen.update(read.current)
        decisions: dict[int, Decision] = {}
        for op in wave:
            pair, k = _pair(op), op.row_key
            if pair in read.errors:
                decisions[k] = _read_failed(read.errors[pair])
            elif pair in self.read_by_us:
                cur = self.seen.get(op.submission_id)
                decisions[k] = decide(
                    op,
                    cur,
                    overwrite=opts.overwrite,
                    maybe_sent=k in maybe_sent,
                    delete_work=opts.excuse_deletes_feedback,
                )
            else:
                decisions[k] = decide_from_plan(op)
        return decisions

    def _send(
        self, to_send: dict[int, Decision], first_answered: Callable[[], None] | None = None
    ) -> set[int]:
        """Journal, send and record one wave of writes; returns the keys whose fate is unknown.

        Envelopes (``MAX_BATCH`` writes each) stream through up to ``max_in_flight`` lanes: a lane
        takes the next envelope as soon as its previous one is answered (no round waits for its
        slowest envelope, nor for the journal), and this thread records the answers as they come.
        After a 401 (or Graph unreachable) no further envelope leaves — the ones already on their way
        are answered and recorded — and the operations that did not go are back to ``pending``.
        ``first_answered`` is called once the first envelope's answers are recorded."""
        if not to_send:
            if first_answered is not None:
                first_answered()
            return set()
        keys = sorted(to_send)
        assert self.journal is not None
        self.journal.mark_sending(self.phash, keys)
        for k in keys:
            self.records[k].status = SENDING
            self.records[k].attempts += 1
        unknown: set[int] = set()

        def answered(batch: list[tuple[Chunk, Answers]]) -> None:  # one journal commit for them all
            nonlocal first_answered
            outcomes = [o for chunk, answers in batch for o in self._absorb(chunk, answers, to_send)]
            self._record([o for o in outcomes if o.status != SENDING])
            unknown.update(o.row_key for o in outcomes if o.status == SENDING)
            call, first_answered = first_answered, None
            if call is not None:
                call()

        def post(chunk: Chunk) -> Answers:
            return self._post(chunk, to_send)

        not_sent = self._lanes.stream(deque(_chunks(keys, MAX_BATCH)), post, self._width, answered)
        if not_sent:
            assert self.stop is not None
            why = f"not sent: the run stopped ({self.stop.message}); carried over"
            self._record([Outcome(k, PENDING, message=why) for chunk in not_sent for k in chunk])
        return unknown

    def _learning(self) -> bool:
        """Whether the client's pacer is still learning Graph's pace (``GraphClient.learning``, the
        rule its own ``batch`` follows): then one envelope at a time, reads included."""
        return bool(getattr(self.client, "learning", False))

    def _width(self) -> int:
        """Envelopes in flight at once: the client's ``max_in_flight``, or one while it is learning."""
        return 1 if self._learning() else max(1, int(getattr(self.client, "max_in_flight", 4)))

    def _post(self, keys: list[int], to_send: dict[int, Decision]) -> Answers:
        """One envelope (in a lane): the answers, or the AuthError/NetworkError that stopped it."""
        try:
            return self.client.batch([request_for(self.ops[k], to_send[k]) for k in keys])
        except (AuthError, NetworkError) as err:
            return err

    def _absorb(self, keys: list[int], answers: Answers, to_send: dict[int, Decision]) -> list[Outcome]:
        """What one envelope's answers mean (in the executor's thread; recorded by the caller)."""
        if isinstance(answers, GradesyncError):
            self.stop = self.stop or answers  # some envelopes may have gone: left ``sending`` (re-read)
            return []
        for k in keys:
            refused = answers[str(k)].error
            if isinstance(refused, AuthError) and self.stop is None:
                self.stop = refused  # a refused token or a missing permission: nothing else can succeed
        return [interpret(self.ops[k], to_send[k], answers[str(k)]) for k in keys]

    def _close_threads(self) -> None:
        """Halt the lanes — after an error in this thread (a full disk, Ctrl-C) no lane takes another
        envelope; what is on its way stays ``sending`` in the journal — and wait for them and for an
        early read still under way."""
        self._lanes.close()
        if self._early is not None:
            wait([self._early.future])
            self._early = None
        if self._reader is not None:
            self._reader.shutdown(wait=True)
            self._reader = None

    def _settle(self, unknown: set[int], deadline: Deadline) -> None:
        """The one re-verify path: re-read each operation whose fate is unknown, decide again
        (done, conflict, or send once more), for up to ``max_rounds`` rounds."""
        opts = self.options
        for _ in range(opts.max_rounds):
            if not unknown or self.stop is not None or deadline.reached():
                break
            keys = sorted(unknown)
            found = read_submissions(self.client, {k: self.ops[k].submission_path for k in keys})
            resend: dict[int, Decision] = {}
            finals: list[Outcome] = []
            for k in keys:
                if k not in found:
                    continue  # the read failed: still unknown, read again next round
                cur = found[k]
                if cur is not None:
                    self.seen[cur.submission_id] = cur
                d = decide(
                    self.ops[k],
                    cur,
                    overwrite=opts.overwrite,
                    maybe_sent=True,
                    delete_work=opts.excuse_deletes_feedback,
                )
                if d.kind in SEND_KINDS:
                    resend[k] = d
                elif (out := final_outcome(self.ops[k], d)) is not None:
                    finals.append(out)
            self._record(finals)
            unknown = (unknown - {o.row_key for o in finals} - set(resend)) | self._send(resend)
        for k in sorted(unknown):  # left ``sending``: --resume re-verifies them, never re-sends blindly
            rec = self.records[k]
            rec.message = (
                f"could not confirm the write after {rec.attempts} attempt(s): Graph kept failing; "
                "carried over: `gradesync apply --resume` (or the next sync) re-checks it"
            )

    def _carry_over(self, ops: list[Operation], message: str) -> None:
        """Operations not sent in this run: they stay open in the journal (``pending``, or
        ``sending`` when a send may have happened), reported ``carried_over`` with ``message``."""
        outcomes = []
        for op in ops:
            rec = self.records[op.row_key]
            if rec.final or self.options.dry_run:
                continue
            if rec.status == SENDING:
                rec.message = rec.message or message
                continue
            outcomes.append(Outcome(op.row_key, PENDING, message=message))
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
        if not outcomes:
            return
        if self.journal is not None:
            if self.memory is not None:  # before the journal: a recorded write is always remembered
                self.memory.remember(self._written(outcomes))
                self.memory.remember_excused(self._excused(outcomes))
            self.journal.record(self.phash, outcomes)
        for o in outcomes:
            self._set(o)

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
    def _report(self, plan: Plan) -> tuple[pd.DataFrame, list[str], int]:
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
            )
        rows, read_notes = reconcile(
            plan,
            self.client,
            self.records,
            seen=self.seen,
            dry_run=opts.dry_run,
            verify=opts.verify,
            read_back=self.stop is None,
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
        return rows, notes, len(published.failed) if published is not None else 0

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
            & ~single.equal(remembered, now)  # compared as Teams stores points (a Single)
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
