"""Apply a reviewed plan to Graph exactly: guards → stale-plan check → journalled $batch writes →
re-verification of unknown fates → reconciliation.

::

    apply_plan(plan, client, journal=..., options=...)
      1. refuse: plan age, --max-changes, --max-decreases, clears without --allow-clear   (no I/O)
      2. read the assignments the open operations touch (one paged ``submissions?$expand=outcomes``
         listing each, batched through ``get_all_many``) and decide per operation (``decide.py``):
         write, already done, conflict (changed since the plan) or failed; refuse on --min-coverage
      3. waves of writes: journal ``sending`` (committed) → ``client.batch`` → journal final (committed)
      4. operations whose fate is unknown (dropped connection, 5xx/429 after sending, 409 on create,
         left ``sending`` by a killed run) are re-read (their submission's outcomes, batched) and
         decided again — a create is never re-sent without that read
      5. with ``--return`` (``publish.py``): return the written submissions of the allowed assignments
      6. reconcile (``reconcile.py``): read the touched assignments back and give every input row a status

Three-way sync: with a ``Memory`` (``memory.py``), every successful grade write is remembered just
before the journal records it, and grades found agreeing with the gradebook become the new base.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import quote

import pandas as pd

from gradesync.errors import AuthError, ExitCode, UsageError
from gradesync.execute.decide import SEND_KINDS, Current, Decision, Kind, decide, fmt, grade_body
from gradesync.execute.reads import coverage, read_assignments
from gradesync.graph import GraphClient, SubRequest, SubResponse, points_of
from gradesync.guards import (
    DEFAULT_MAX_CHANGES,
    DEFAULT_MAX_DECREASES,
    DEFAULT_MAX_PLAN_AGE,
    DEFAULT_MIN_COVERAGE,
    Figures,
    Limit,
    coverage_violation,
    guard_violations,
    parse_duration,
    parse_time,
    plan_age_violation,
    plan_figures,
    refuse,
)
from gradesync.models import Action, Operation, Plan
from gradesync.state.journal import SENDING, Journal, OpRecord, Outcome
from gradesync.state.memory import Memory, Written

Progress = Callable[[str, int, int], None]
T = TypeVar("T")

WAVE_ROUNDS = 4  # a wave (one journal commit) is this many rounds of max_in_flight $batch envelopes
OK_STATUSES = frozenset({"unchanged", "updated", "created", "excused"})
_REMEMBERED = frozenset({"updated", "created", "unchanged"})  # a grade write's outcomes kept in memory


_DEFAULT_MAX_CHANGES = Limit.parse(DEFAULT_MAX_CHANGES)
_DEFAULT_MAX_DECREASES = Limit.parse(DEFAULT_MAX_DECREASES)
_DEFAULT_MIN_COVERAGE = Limit.parse(DEFAULT_MIN_COVERAGE)
_DEFAULT_MAX_PLAN_AGE = parse_duration(DEFAULT_MAX_PLAN_AGE)


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ApplyOptions:
    on_conflict: str = "skip"  # skip | overwrite
    max_changes: Limit | None = _DEFAULT_MAX_CHANGES
    max_decreases: Limit | None = _DEFAULT_MAX_DECREASES
    min_coverage: Limit | None = _DEFAULT_MIN_COVERAGE
    allow_clear: bool = False
    max_plan_age: timedelta | None = _DEFAULT_MAX_PLAN_AGE
    dry_run: bool = False
    resume: bool = False
    wave_size: int | None = (
        None  # operations per journal commit; None: 4 rounds of the client's in-flight batches
    )
    verify: str = "all"  # read back: "all" touched assignments, or only "uncertain" ones (cheaper)
    max_rounds: int = 6  # re-verify/re-send rounds for operations whose fate is unknown
    publish: bool = False  # --return: return (publish) the submissions this plan wrote
    publish_assignments: tuple[str, ...] = ()  # [publish] assignments: names or ids, "*" = all
    now: Callable[[], datetime] = _utcnow

    def __post_init__(self) -> None:
        if self.on_conflict not in ("skip", "overwrite"):
            raise UsageError(f"--on-conflict must be skip or overwrite, not {self.on_conflict!r}")
        if self.verify not in ("all", "uncertain"):
            raise UsageError(f"--verify must be all or uncertain, not {self.verify!r}")
        if (self.wave_size is not None and self.wave_size < 1) or self.max_rounds < 1:
            raise UsageError("wave size and rounds must be at least 1")

    @property
    def overwrite(self) -> bool:
        return self.on_conflict == "overwrite"


@dataclass(slots=True)
class ApplyResult:
    """What an apply did: the reconciliation rows and the figures the summary needs."""

    rows: pd.DataFrame  # PLAN_COLUMNS + after_points, status, request_id (message updated)
    plan_hash: str
    figures: Figures
    graph_stats: dict[str, Any]
    elapsed_seconds: float
    dry_run: bool
    auth_failed: bool = False
    notes: list[str] = field(default_factory=list)
    return_failed: int = 0  # --return: written submissions that could not be returned

    @property
    def status_counts(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in self.rows["status"].value_counts().items()}

    @property
    def exit_code(self) -> ExitCode:
        if self.auth_failed:
            return ExitCode.AUTH
        ok = self.rows["status"].isin(OK_STATUSES | ({"pending"} if self.dry_run else set()))
        return ExitCode.OK if bool(ok.all()) and not self.return_failed else ExitCode.ROWS_NOT_DONE


# --- identity and URLs ---------------------------------------------------------------------------
def plan_hash(plan: Plan) -> str:
    """The plan's identity in the journal: its header and every operation, canonically hashed."""
    fields = ("row_key", "class_id", "assignment_id", "submission_id", "outcome_id", "desired_points")
    fields += ("before_points", "before_modified")
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


def _q(value: str) -> str:
    return quote(value, safe="")


def submission_path(op: Operation) -> str:
    return op.submission_path


def outcomes_url(op: Operation) -> str:
    return submission_path(op) + "/outcomes"


def _chunks(items: list[T], n: int) -> Iterable[list[T]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


# --- the executor --------------------------------------------------------------------------------
@dataclass(slots=True)
class _State:
    """Per-operation results gathered during this run (mirrors what the journal holds)."""

    records: dict[int, OpRecord]
    auth_failed: bool = False

    def set(self, outcome: Outcome) -> None:
        rec = self.records.get(outcome.row_key)
        if rec is None:
            return
        rec.status = outcome.status
        rec.outcome_id = outcome.outcome_id or rec.outcome_id
        rec.after_points = outcome.after_points
        rec.http_status = outcome.http_status
        rec.request_id = outcome.request_id
        rec.message = outcome.message


class Executor:
    def __init__(
        self,
        client: GraphClient,
        journal: Journal | None,
        options: ApplyOptions,
        progress: Progress | None = None,
        memory: Memory | None = None,
    ) -> None:
        self.client = client
        self.journal = journal
        self.options = options
        self.note: Progress = progress or (lambda step, done, total: None)
        self.memory = memory
        self._ops: dict[int, Operation] = {}

    # ------------------------------------------------------------------ entry point
    def run(self, plan: Plan) -> ApplyResult:
        from gradesync.execute.reconcile import reconcile

        started = time.monotonic()
        opts = self.options
        phash = plan_hash(plan)
        ops = {op.row_key: op for op in plan.operations()}
        self._ops = ops
        figures = plan_figures(plan.rows)
        journal = None if opts.dry_run else self.journal
        run = journal.run_state(phash) if journal else None
        if run is not None and not opts.resume:
            what = "was already applied" if run["state"] == "finished" else "was interrupted"
            raise UsageError(
                f"this plan {what} (run started {run['started_at']}, journal {journal.path})",  # type: ignore[union-attr]
                code="plan-already-run",
                hint="use --resume to finish it (or to re-check and report it); never apply a plan twice",
            )

        # 1. guards that need no I/O
        ref = parse_time(str(run["started_at"])) if run else opts.now()
        violations = [v for v in [plan_age_violation(plan.created_at, ref, opts.max_plan_age)] if v]
        violations += guard_violations(
            figures,
            max_changes=opts.max_changes,
            max_decreases=opts.max_decreases,
            allow_clear=opts.allow_clear,
        )
        refuse(violations)

        prior = journal.ops(phash) if journal else {}
        state = _State({k: prior.get(k) or OpRecord(k, op.action.value, "pending") for k, op in ops.items()})
        open_ops = [op for k, op in ops.items() if not state.records[k].final]
        maybe_sent = {k for k, rec in prior.items() if rec.status == SENDING}

        # 2. the stale-plan check: read what the targets hold now, decide per operation
        self.note("checking", 0, len(open_ops))
        read = read_assignments(self.client, {(op.class_id, op.assignment_id) for op in open_ops})
        if not run:  # a resumed run passed this guard before it wrote anything
            covered, roster = coverage(plan.rows, read)
            refuse([v for v in [coverage_violation(covered, roster, opts.min_coverage)] if v])
        decisions: dict[int, Decision] = {}
        for op in open_ops:
            pair = (op.class_id, op.assignment_id)
            if pair in read.errors:
                err = read.errors[pair]
                if isinstance(err, AuthError):
                    raise err
                decisions[op.row_key] = Decision(
                    Kind.FAILED, message=f"could not read the assignment to confirm the plan: {err.message}"
                )
                continue
            decisions[op.row_key] = decide(
                op,
                read.current.get(op.submission_id),
                overwrite=opts.overwrite,
                maybe_sent=op.row_key in maybe_sent,
            )
        self.note("checking", len(open_ops), len(open_ops))

        if opts.dry_run:
            for op in open_ops:
                state.set(self._dry_outcome(op, decisions[op.row_key]))
        else:
            assert journal is not None
            journal.start(phash, plan.created_at, ops.values())
            self._write(phash, ops, decisions, state, maybe_sent)
            if not any(rec.status == SENDING for rec in state.records.values()):
                journal.finish_run(phash)

        published = None
        if opts.publish and not opts.dry_run:
            from gradesync.execute.publish import publish

            self.note("returning", 0, 0)
            published = publish(self.client, plan.rows, state.records, opts.publish_assignments)
        rows, notes = reconcile(plan, self.client, state.records, dry_run=opts.dry_run, verify=opts.verify)
        rows["returned"] = False
        if published is not None:
            keys = rows["row_key"].astype(int)
            rows["returned"] = keys.isin(published.returned)
            failed = keys.map(published.failed)
            has = failed.notna()
            rows.loc[has, "message"] = rows.loc[has, "message"].astype(str) + "; " + failed[has].astype(str)
            notes += published.notes
        elif opts.publish:
            notes.append("dry run: nothing was returned to students")
        if self.memory is not None and not opts.dry_run:
            self._remember_agreements(rows)
        return ApplyResult(
            rows=rows,
            plan_hash=phash,
            figures=figures,
            graph_stats=self.client.stats.asdict(),
            elapsed_seconds=time.monotonic() - started,
            dry_run=opts.dry_run,
            auth_failed=state.auth_failed,
            notes=notes,
            return_failed=len(published.failed) if published is not None else 0,
        )

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
            & (rows["status"] == "unchanged")
            & rows["submission_id"].notna()
            & remembered.notna()
            & now.notna()
            & ((remembered - now).abs() > 1e-9)
        )
        assert self.memory is not None
        self.memory.remember(
            Written(str(r.submission_id), r.class_id, r.assignment_id, r.outcome_id, float(r.after_points))
            for r in rows[agree].itertuples(index=False)
        )

    # ------------------------------------------------------------------ writes
    def _write(
        self,
        phash: str,
        ops: dict[int, Operation],
        decisions: dict[int, Decision],
        state: _State,
        maybe_sent: set[int],
    ) -> None:
        opts = self.options
        journal = self.journal
        assert journal is not None
        final = [self._final(ops[k], d, k in maybe_sent) for k, d in decisions.items()]
        final = [o for o in final if o is not None]
        self._record(phash, state, final)
        to_send = {k: d for k, d in decisions.items() if d.kind in SEND_KINDS}
        unknown: set[int] = set()
        total, done = len(to_send), 0
        self.note("writing", 0, total)
        wave_size = opts.wave_size or 20 * int(getattr(self.client, "max_in_flight", 4)) * WAVE_ROUNDS
        for round_no in range(opts.max_rounds):
            for wave in _chunks(sorted(to_send), wave_size):
                journal.mark_sending(phash, wave)
                for k in wave:
                    state.records[k].status = SENDING
                    state.records[k].attempts += 1
                reqs = [self._request(ops[k], to_send[k]) for k in wave]
                answers = self.client.batch(reqs)
                outcomes: list[Outcome] = []
                for k in wave:
                    out = self._interpret(ops[k], to_send[k], answers[str(k)], state)
                    if out is None:
                        unknown.add(k)
                    else:
                        outcomes.append(out)
                self._record(phash, state, outcomes)
                done += len(wave)
                self.note("writing", min(done, total), max(total, done))
            if not unknown:
                return
            # re-read what Graph holds for every operation whose fate is unknown, then decide again
            to_send = {}
            found = self._reread([ops[k] for k in sorted(unknown)])
            outcomes = []
            for k in sorted(unknown):
                if k not in found:
                    continue  # the read failed: still unknown, read again next round
                d = decide(ops[k], found[k], overwrite=opts.overwrite, maybe_sent=True)
                if d.kind in SEND_KINDS:
                    to_send[k] = d
                else:
                    out = self._final(ops[k], d, True)
                    if out is not None:
                        outcomes.append(out)
                    unknown.discard(k)
            unknown -= set(to_send)
            self._record(phash, state, outcomes)
            if not to_send and not unknown:
                return
            total += len(to_send)
            if round_no == opts.max_rounds - 1:
                break
        # still unknown: left ``sending`` in the journal so that --resume re-verifies them
        for k in sorted(unknown | set(to_send)):
            rec = state.records[k]
            rec.status = SENDING
            rec.message = (
                f"could not confirm the write after {rec.attempts} attempt(s): Graph kept failing; "
                "run `gradesync apply --resume` to re-check it (it is never re-sent blindly)"
            )

    def _record(self, phash: str, state: _State, outcomes: list[Outcome]) -> None:
        if not outcomes:
            return
        assert self.journal is not None
        if self.memory is not None:  # before the journal: a recorded write is always remembered
            self.memory.remember(self._written(outcomes))
        self.journal.record(phash, outcomes)
        for o in outcomes:
            state.set(o)

    def _written(self, outcomes: list[Outcome]) -> list[Written]:
        """The grade writes among ``outcomes`` (updated/created, or already at the desired value)."""
        out = []
        for o in outcomes:
            op = self._ops.get(o.row_key)
            if (
                op is None
                or op.action is Action.EXCUSE
                or o.status not in ("updated", "created", "unchanged")
            ):
                continue
            points = o.after_points if o.after_points is not None else op.desired_points
            out.append(
                Written(
                    op.submission_id, op.class_id, op.assignment_id, o.outcome_id or op.outcome_id, points
                )
            )
        return out

    def _reread(self, ops: list[Operation]) -> dict[int, Current | None]:
        """Each operation's submission outcomes now (None: the submission is gone; absent: read failed).

        An excuse needs the submission's status: its submission is read (``$expand=outcomes``)."""
        urls = {
            op.row_key: submission_path(op) + "?$expand=outcomes"
            if op.action is Action.EXCUSE
            else outcomes_url(op)
            for op in ops
        }
        pages = self.client.get_all_many(list(urls.values()))
        found: dict[int, Current | None] = {}
        for op in ops:
            url = urls[op.row_key]
            if url in pages and op.action is Action.EXCUSE:
                items = pages[url]
                found[op.row_key] = Current.from_submission(items[0]) if items else None
            elif url in pages:
                found[op.row_key] = Current.from_outcomes(op.submission_id, pages[url])
            elif (err := pages.errors.get(url)) is not None:
                if isinstance(err, AuthError):
                    raise err
                if err.status == 404:
                    found[op.row_key] = None
        return found

    @staticmethod
    def _request(op: Operation, d: Decision) -> SubRequest:
        if d.kind is Kind.EXCUSE:
            return SubRequest(str(op.row_key), "POST", submission_path(op) + "/excuse")
        if d.kind is Kind.PATCH:
            url = outcomes_url(op) + "/" + _q(str(d.outcome_id))
            return SubRequest(str(op.row_key), "PATCH", url, grade_body(op.desired_points))
        return SubRequest(str(op.row_key), "POST", outcomes_url(op), grade_body(op.desired_points))

    @staticmethod
    def _status_for(op: Operation) -> str:
        if op.action is Action.EXCUSE:
            return "excused"
        return "created" if op.action is Action.CREATE else "updated"

    def _final(self, op: Operation, d: Decision, maybe_sent: bool) -> Outcome | None:
        if d.kind is Kind.DONE:
            return Outcome(op.row_key, d.status, d.outcome_id, d.after, message=d.message or None)
        if d.kind is Kind.CONFLICT:
            return Outcome(op.row_key, "conflict", d.outcome_id, d.after, message=d.message)
        if d.kind is Kind.FAILED:
            return Outcome(op.row_key, "failed", message=d.message)
        return None

    def _interpret(self, op: Operation, d: Decision, answer: SubResponse, state: _State) -> Outcome | None:
        """A final Outcome, or None when the fate is unknown (re-read before anything else)."""
        if answer.ok and op.action is Action.EXCUSE:
            rid = answer.headers.get("request-id") if answer.headers else None
            return Outcome(op.row_key, "excused", d.outcome_id, d.after, answer.status, rid, None)
        if answer.ok:
            body = answer.body if isinstance(answer.body, dict) else {}
            outcome_id = str(body.get("id") or d.outcome_id or "") or None
            return Outcome(
                op.row_key,
                self._status_for(op),
                outcome_id,
                points_of(body) if body else op.desired_points,
                answer.status,
                answer.headers.get("request-id") if answer.headers else None,
                d.message or None,
            )
        err = answer.error
        if answer.fate_unknown:
            return None
        if answer.status == 409 and d.kind is Kind.POST:
            return None  # a points outcome exists after all: re-read, then PATCH if needed
        if err is not None and getattr(err, "retryable", False):
            return None  # retries exhausted: PATCH is idempotent, but re-read first all the same
        if isinstance(err, AuthError):
            state.auth_failed = True
        message = err.message if err is not None else f"Graph answered {answer.status}"
        if isinstance(err, AuthError) and err.hint:
            message += f" — {err.hint}"
        return Outcome(
            op.row_key,
            "failed",
            http_status=answer.status or None,
            request_id=getattr(err, "request_id", None),
            message=message,
        )

    @staticmethod
    def _dry_outcome(op: Operation, d: Decision) -> Outcome:
        if d.kind is Kind.EXCUSE:
            return Outcome(
                op.row_key, "pending", d.outcome_id, op.before_points, message="dry run: would excuse"
            )
        if d.kind in SEND_KINDS:
            verb = "create" if d.kind is Kind.POST else "update"
            msg = f"dry run: would {verb} {fmt(op.before_points)} → {fmt(op.desired_points)}"
            if d.message:
                msg += f" ({d.message})"
            return Outcome(op.row_key, "pending", d.outcome_id, op.before_points, message=msg)
        if d.kind is Kind.DONE:
            return Outcome(op.row_key, "unchanged", d.outcome_id, d.after, message=d.message or None)
        if d.kind is Kind.CONFLICT:
            return Outcome(op.row_key, "conflict", d.outcome_id, d.after, message=d.message)
        return Outcome(op.row_key, "failed", message=d.message)


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
    Raises GuardError (a guard refused), UsageError (already applied without --resume), AuthError.
    """
    return Executor(client, journal, options or ApplyOptions(), progress, memory).run(plan)
