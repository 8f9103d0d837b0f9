"""The pipeline library: read → resolve → plan → guards → execute → reconcile → report.

Both front ends (``gradesync.cli`` and the web app) call this and nothing else wires stages::

    pipeline = Pipeline(settings, make_client(settings), listener=print)
    preview = pipeline.plan(["grades.csv"], report_dir="reports", out="plan.json")
    preview.digest, preview.guard_verdict           # what a reviewer approves; why apply would refuse
    result = pipeline.apply(preview.plan, approved_digest=preview.digest[:12])
    result.exit_code                                # THE definition of success (errors.ExitCode)

``RunResult.exit_code`` is the only place success is decided. Progress goes to a ``Listener`` as
``Event`` values (the CLI renders them with rich, the web app as a page). ``apply`` and ``sync`` run
inside an unattended run (``state.runs``: lock, run directory, log, ``run.json``, notify), driven by
``Settings`` — the command line overrides settings, it never hands dicts down.

Errors: a ``GradesyncError`` of ``apply``/``sync`` becomes ``RunResult.error`` (and ``run.json``'s
``error``); ``plan`` raises it. A transport failure that leaves a stage (Graph unreachable, DNS, TLS)
becomes a ``NetworkError`` (exit 7) here; a failing disk a ``StorageError`` (exit 8,
``errors.storage_error``).
"""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from gradesync.auth import token_provider
from gradesync.config import Settings
from gradesync.errors import (
    ExitCode,
    GradesyncError,
    GuardError,
    InputError,
    LockError,
    NetworkError,
    StorageError,
    TransientGraphError,
    UsageError,
    storage_error,
)
from gradesync.execute.apply import ApplyOptions, ApplyResult, apply_plan
from gradesync.graph import GraphClient, RetryPolicy
from gradesync.guards import GuardLimits, parse_duration, plan_verdict, refuse
from gradesync.logs import logging_transport, redacting
from gradesync.models import OK_STATUSES, Plan, Status
from gradesync.plan import build_plan, plan_is_refused
from gradesync.plan.digest import (
    digest_matches,
    key_id,
    legacy_digest,
    plan_digest,
    same_digest,
    short_digest,
)
from gradesync.plan.encoding import Column, encode_columns
from gradesync.plan.planfile import SCHEMA_VERSION, write_plan
from gradesync.read import ReadResult, load_mapping, read_inputs
from gradesync.read.inspect import Inspection, inspect_inputs, lookup_from_snapshot
from gradesync.report import RunSummary, write_reports
from gradesync.resolve import resolve
from gradesync.state.journal import Journal
from gradesync.state.memory import Memory, load_memory
from gradesync.state.plankey import load_plan_key, plan_key_path
from gradesync.state.runs import PLAN_NAME, Run, RunOptions, RunOutcome, unattended_run

log = logging.getLogger("gradesync.pipeline")

STAGES = ("read", "resolve", "plan", "guards", "execute", "reconcile", "report")
# transport failures that mean "Graph could not be reached" once retries are spent (graph/errors.py)
NETWORK_CODES = frozenset(
    {
        "graph-timeout",
        "graph-connection-failed",
        "graph-connection-dropped",
        "graph-proxy-error",
        "graph-transport-error",
    }
)
# the executor's and resolve's progress steps, by stage
_STEP_STAGE = {
    "classes": "resolve",
    "rosters": "resolve",
    "submissions": "resolve",
    "checking": "execute",
    "writing": "execute",
    "returning": "execute",
    "verifying": "reconcile",
    "reconciling": "reconcile",
}


@dataclass(frozen=True, slots=True)
class Event:
    """What a front end renders."""

    kind: str  # "stage" | "progress" | "warning" | "done"
    stage: str  # one of STAGES
    done: int = 0
    total: int = 0
    message: str = ""


Listener = Callable[[Event], None]


def utc_now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


# --- the value objects ---------------------------------------------------------------------------
@dataclass(slots=True)
class RunResult:
    """What a plan, apply or sync came to. ``exit_code`` is THE definition of success."""

    kind: str  # "plan" | "apply" | "sync"
    plan: Plan | None = None
    rows: pd.DataFrame | None = None  # plan rows; for apply/sync with a ``status`` column (Status values)
    summary: RunSummary | None = None
    digest: str = ""  # the plan digest (full hex; people see the first 12)
    guard_verdict: list[str] = field(default_factory=list)  # [] = apply would go on
    warnings: list[str] = field(default_factory=list)
    error: GradesyncError | None = None
    report_paths: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # the executor's remarks (read-back, --return)
    run_dir: Path | None = None
    dry_run: bool = False
    auth_failed: bool = False
    return_failed: int = 0

    @property
    def exit_code(self) -> ExitCode:
        """0 done; 1 rows need attention; 3 auth; 4 guard (for a preview: apply would refuse); 6 some
        rows carried over and nothing failed; any error's own code (2, 5, 7, 8, …)."""
        if self.error is not None:
            return self.error.exit_code
        if self.auth_failed:
            return ExitCode.AUTH
        rows = self.rows
        if rows is None or "status" not in rows.columns:  # a preview (or a refused sync)
            if self.summary is not None and self.summary.has_problems:
                return ExitCode.ROWS_NOT_DONE
            return ExitCode.GUARD if self.guard_verdict else ExitCode.OK
        status = rows["status"].astype(str)
        ok = {str(s) for s in OK_STATUSES} | ({"pending"} if self.dry_run else set())
        carried = status == Status.CARRIED_OVER.value
        if self.return_failed or bool((~status.isin(ok) & ~carried).any()):
            return ExitCode.ROWS_NOT_DONE
        return ExitCode.CARRIED_OVER if bool(carried.any()) else ExitCode.OK

    @property
    def short_digest(self) -> str:
        return short_digest(self.digest)

    @property
    def status_counts(self) -> dict[str, int] | None:
        if self.rows is None or "status" not in self.rows.columns:
            return None
        return {str(k): int(v) for k, v in self.rows["status"].value_counts().items()}

    def asdict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "exit_code": int(self.exit_code),
            "digest": self.short_digest,
            "guard_verdict": list(self.guard_verdict),
            "warnings": list(self.warnings),
            "notes": list(self.notes),
            "error": self.error.as_dict() if self.error is not None else None,
            "report_paths": {k: str(v) for k, v in self.report_paths.items()},
            "run_dir": str(self.run_dir) if self.run_dir else None,
            "dry_run": self.dry_run,
            "status_counts": self.status_counts,
            "summary": self.summary.asdict() if self.summary is not None else None,
        }

    def outcome(self, plan_file: Path | None = None) -> RunOutcome:
        """What ``run.json`` records for this result."""
        extra: dict[str, Any] = {"kind": self.kind, "digest": self.short_digest or None}
        extra["guard_verdict"] = list(self.guard_verdict)
        return RunOutcome(
            exit_code=int(self.exit_code),
            error=self.error.as_dict() if self.error is not None else None,
            reports=dict(self.report_paths),
            plan=plan_file,
            status_counts=self.status_counts,
            extra=extra,
        )


@dataclass(slots=True)
class PlanResult:
    """A preview: the plan, its summary, why apply would refuse it, and its digest."""

    plan: Plan
    summary: RunSummary
    guard_verdict: list[str]
    digest: str
    warnings: list[str] = field(default_factory=list)
    report_paths: dict[str, Path] = field(default_factory=dict)
    key_id: str = ""  # which plan key made the digest (``plan.digest.key_id``)
    # the plan's rows as the plan file holds them (``plan.encoding``): the digest was computed from
    # them, and the plan file is written from them (encoding a million rows once, not twice)
    columns: dict[str, Column] | None = field(default=None, repr=False, compare=False)

    @property
    def refused(self) -> bool:
        """``--strict`` and some rows are rejected: no plan file is written."""
        return plan_is_refused(self.plan)

    def result(self) -> RunResult:
        return RunResult(
            kind="plan",
            plan=self.plan,
            rows=self.plan.rows,
            summary=self.summary,
            digest=self.digest,
            guard_verdict=list(self.guard_verdict),
            warnings=list(self.warnings),
            report_paths=dict(self.report_paths),
        )

    @property
    def exit_code(self) -> ExitCode:
        return self.result().exit_code


# --- building blocks -----------------------------------------------------------------------------
def make_client(settings: Settings, *, token: str | None = None, **kwargs: Any) -> GraphClient:
    """The GraphClient for ``settings``; the token is ``token`` if given, else ``gradesync.auth``'s
    provider (``GRADESYNC_ACCESS_TOKEN``, then the configured MSAL sign-in). Requests are logged
    (never their headers)."""
    fixed = (lambda force_refresh=False: token) if token is not None else None  # a fixed token: no renewal
    provider = redacting(fixed or token_provider(settings))
    kwargs.setdefault("max_in_flight", settings.apply.max_in_flight)
    if "transport" not in kwargs and "http" not in kwargs:
        kwargs["transport"] = logging_transport(kwargs["max_in_flight"])
    policy = RetryPolicy(
        max_attempts=settings.graph.max_attempts, max_total_seconds=settings.graph.max_retry_seconds
    )
    return GraphClient(
        settings.graph.base_url, provider, policy=policy, timeout=settings.graph.timeout_seconds, **kwargs
    )


def guard_limits(settings: Settings) -> GuardLimits:
    a = settings.apply
    return GuardLimits.parse(
        max_changes=a.max_changes,
        max_decreases=a.max_decreases,
        min_coverage=a.min_coverage,
        max_plan_age=a.max_plan_age,
        allow_clear=a.allow_clear,
        expect_full=a.expect_full,
    )


def deadline_of(settings: Settings, now: datetime) -> datetime | None:
    """The moment to stop sending (aware UTC): ``[apply] deadline`` ("HH:MM" local, the next such
    moment) or ``max_duration`` from ``now``, whichever comes first; None: no limit."""
    a = settings.apply
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


def apply_options(
    settings: Settings, *, dry_run: bool = False, resume: bool = False, publish: bool = False
) -> ApplyOptions:
    """The executor's options from ``[apply]`` (and ``[publish]`` for ``--return``)."""
    a, limits = settings.apply, guard_limits(settings)
    now = datetime.now(UTC)
    given: dict[str, Any] = {
        "on_conflict": a.on_conflict,
        "max_changes": limits.max_changes,
        "max_decreases": limits.max_decreases,
        "min_coverage": limits.min_coverage,
        "allow_clear": a.allow_clear,
        "max_plan_age": limits.max_plan_age,
        "dry_run": dry_run,
        "resume": resume,
        "verify": a.verify,
        "publish": publish,
        "publish_assignments": tuple(settings.publish.assignments) if publish else (),
        # contract 5 (the executor's read-to-write window and deadline)
        "read_write_window": parse_duration(a.read_write_window, "read_write_window"),
        "deadline": deadline_of(settings, now),
    }
    known = {f.name for f in dataclasses.fields(ApplyOptions)}
    # until the executor has a field (branches merge in any order) it is not passed
    return ApplyOptions(**{k: v for k, v in given.items() if k in known})


def network_error(err: TransientGraphError) -> NetworkError:
    return NetworkError(
        f"Graph could not be reached: {err.message}",
        code="graph-unreachable",
        hint="check the network, DNS, proxy and TLS, and GRADESYNC_GRAPH_URL / [graph] base_url; "
        "nothing was written by this step, so running again later is safe",
    )


@contextmanager
def _errors_mapped(what: str, path: object = None) -> Iterator[None]:
    """Transport failures → NetworkError; disk failures → StorageError (``what`` names the files)."""
    try:
        yield
    except TransientGraphError as e:
        if e.code in NETWORK_CODES:
            raise network_error(e) from e
        raise
    except sqlite3.Error as e:
        raise storage_error(e, "state database (journal, memory)", path) from e
    except OSError as e:
        raise storage_error(e, what, path) from e


# --- the pipeline --------------------------------------------------------------------------------
class Pipeline:
    def __init__(
        self,
        settings: Settings,
        client: GraphClient,
        *,
        listener: Listener | None = None,
        argv: Sequence[str] | None = None,
    ) -> None:
        self.settings = settings
        self.client = client
        self.listener = listener
        self.argv = argv  # recorded (redacted) in run.json; None: sys.argv
        self._key: bytes | None = None

    # ------------------------------------------------------------------ events
    def emit(self, kind: str, stage: str, done: int = 0, total: int = 0, message: str = "") -> None:
        event = Event(kind, stage, done, total, message)
        if kind == "warning":
            log.warning("%s: %s", stage, message, extra={"stage": stage})
        elif kind in ("stage", "done") or (kind == "progress" and done in (0, total)):
            log.info("%s: %s %s", stage, message or kind, f"{done}/{total}" if total else "",
                     extra={"stage": stage, "total": total})  # fmt: skip
        if self.listener is not None:
            self.listener(event)

    def _progress(self, default_stage: str) -> Callable[[str, int, int], None]:
        def note(step: str, done: int, total: int) -> None:
            self.emit("progress", _STEP_STAGE.get(step, default_stage), done, total, step)

        return note

    # ------------------------------------------------------------------ read, resolve, plan
    def _read(self, paths: Sequence[str | Path], *, class_key: str | None, sheet: str | None,
              mapping: Any, format: str | None) -> ReadResult:  # fmt: skip
        """The read stage with the mapping and format of ``[input]`` unless given; the detected preset
        and the file-level diagnoses travel with the reader's warnings (reports and summary show them)."""
        if mapping is None and self.settings.input.mapping:
            mapping = load_mapping(self.settings.input.mapping)
        read = read_inputs(list(paths), self.settings, class_key=class_key, sheet=sheet, mapping=mapping,
                           format=format or self.settings.input.format)  # fmt: skip
        if read.preset:
            read.warnings.insert(0, f"read as: {read.preset} (format detected from the header)")
        read.warnings.extend(read.diagnoses)
        return read

    def inspect(
        self,
        paths: Sequence[str | Path],
        *,
        class_key: str | None = None,
        sheet: str | None = None,
        mapping: Any = None,
        format: str | None = None,
        teams: bool = False,
    ) -> Inspection:
        """How ``paths`` are understood (``gradesync.read.inspect``), for the Map page and
        ``gradesync inspect``. With ``teams``, Graph is read for "did you mean": classes, rosters and
        assignments only (the rows' assignment names are blanked, so no submission list is read)."""
        self.emit("stage", "read", message="inspect")
        kw: dict[str, Any] = {"class_key": class_key, "sheet": sheet, "mapping": mapping,
                              "format": format or self.settings.input.format}  # fmt: skip
        lookup = None
        if teams:
            try:
                read = read_inputs(list(paths), self.settings, **kw)
            except InputError:
                read = None  # inspect_inputs says what is wrong with the file
            if read is not None:
                self.emit("stage", "resolve")
                names = read.frame.assign(assignment_key="")
                with _errors_mapped("state directory"):
                    lookup = lookup_from_snapshot(resolve(names, self.settings, self.client,
                                                          progress=self._progress("resolve")))  # fmt: skip
        return inspect_inputs(list(paths), self.settings, lookup, **kw)

    def make_plan(self, paths: Sequence[str | Path], *, class_key: str | None = None,
                  sheet: str | None = None, mapping: Any = None,
                  format: str | None = None) -> Plan:  # fmt: skip
        """read → resolve → plan; read warnings travel in ``plan.warnings`` (and as events)."""
        self.emit("stage", "read")
        read = self._read(paths, class_key=class_key, sheet=sheet, mapping=mapping, format=format)
        for warning in read.warnings:
            self.emit("warning", "read", message=str(warning))
        self.emit("stage", "resolve")
        with _errors_mapped("state directory"):
            snapshot = resolve(read.frame, self.settings, self.client, progress=self._progress("resolve"))
            memory = load_memory(
                self.settings.apply.state_dir or None, snapshot.submissions["submission_id"].tolist()
            )
        self.emit("stage", "plan")
        plan = build_plan(
            read.frame,
            snapshot,
            self.settings,
            created_at=utc_now(),
            graph_base_url=self.settings.graph.base_url,
            inputs=read.inputs,
            memory=memory,
        )
        plan.warnings = list(read.warnings)
        return plan

    def verdict(self, plan: Plan, *, check_age: bool = True) -> list[str]:
        """Why ``apply`` would refuse ``plan`` before reading Graph ([] = it would go on)."""
        self.emit("stage", "guards")
        return plan_verdict(
            plan.rows,
            created_at=plan.created_at,
            roster_gaps=plan.roster_gaps,
            limits=guard_limits(self.settings),
            now=datetime.now(UTC),
            check_age=check_age,
        )

    def plan_key(self) -> bytes:
        """The secret that signs plan digests (``state/plankey.py``): ``[apply] plan_key_file``, or
        ``plan.key`` in the state directory, made at first use."""
        if self._key is None:
            apply = self.settings.apply
            with _errors_mapped("state directory", apply.state_dir):
                self._key = load_plan_key(plan_key_path(apply.state_dir, apply.plan_key_file))
        return self._key

    def preview(self, plan: Plan) -> PlanResult:
        verdict = self.verdict(plan)
        key = self.plan_key()
        columns = encode_columns(plan.rows)
        digest = plan_digest(plan, key, columns=columns)
        summary = self._summary(plan.rows, plan, kind="plan", verdict=verdict, digest=digest)
        return PlanResult(
            plan, summary, verdict, digest, list(plan.warnings), key_id=key_id(key), columns=columns
        )

    def plan(self, paths: Sequence[str | Path], *, class_key: str | None = None, sheet: str | None = None,
             mapping: Any = None, report_dir: str | Path | None = None,
             out: str | Path | None = None) -> PlanResult:  # fmt: skip
        """The preview: read, resolve, plan, guards; with ``report_dir`` the reports are written, with
        ``out`` the plan file (not for a plan ``--strict`` refused). Raises a GradesyncError."""
        result = self.preview(self.make_plan(paths, class_key=class_key, sheet=sheet, mapping=mapping))
        if report_dir is not None:
            result.report_paths.update(
                self._reports(result.plan.rows, result.summary, result.plan, report_dir)
            )
        if out is not None and not result.refused:
            with _errors_mapped("plan file", out):
                write_plan(result.plan, Path(out), digest=result.digest, key_id=result.key_id,
                           columns=result.columns)  # fmt: skip
            result.report_paths["plan"] = Path(out)
            result.columns = None  # written: the encoded rows are no longer needed
        self.emit("done", "report", message=f"plan {short_digest(result.digest)}")
        return result

    # ------------------------------------------------------------------ apply and sync
    def apply(self, plan: Plan, *, approved_digest: str | None = None, approved_by: str | None = None,
              report_dir: str | Path | None = None, dry_run: bool = False, resume: bool = False,
              publish: bool = False, plan_file: str | Path | None = None) -> RunResult:  # fmt: skip
        """Apply a reviewed plan exactly, in an unattended run. Refuses (exit 4) a plan whose rows no
        longer match its digest (stored, or ``approved_digest``), a plan dated in the future or too
        old, and any guard; a refused plan still gets its report."""

        def body(run: Run) -> RunResult:
            key = self.plan_key()
            columns = encode_columns(plan.rows)
            digest = plan_digest(plan, key, columns=columns)  # of the plan as it is, with this key
            if plan_file:
                run.plan_path = run.keep_plan_copy(Path(plan_file))
            if approved_by:
                run.record["approved_by"] = approved_by
            try:
                shown = self._check_digest(plan, digest, approved_digest, key)  # an edited file first
            except GuardError:
                if not plan_file:  # the refused plan, for the record, with the digest it came with
                    run.plan_path = self._save_plan(plan, run, plan.digest or "0" * 64, plan.key_id, columns)
                raise
            # checked: this key signs the run's copy (so that `apply RUN_DIR/plan.json --resume` takes it)
            if not plan_file:
                run.plan_path = self._save_plan(plan, run, digest, key_id(key), columns)
            self._check_graph(plan)
            return self._execute(plan, run, shown, kind="apply", dry_run=dry_run, resume=resume,
                                 publish=publish)  # fmt: skip

        return self._unattended("apply", report_dir, body)

    def sync(self, paths: Sequence[str | Path], *, class_key: str | None = None, sheet: str | None = None,
             mapping: Any = None, report_dir: str | Path | None = None, dry_run: bool = False,
             publish: bool = False) -> RunResult:  # fmt: skip
        """Plan and apply in one go (the nightly form), in an unattended run. The plan is saved as
        plan.json in the report directory first, so ``apply RUN_DIR/plan.json --resume`` can finish an
        interrupted sync."""

        def body(run: Run) -> RunResult:
            plan = self.make_plan(paths, class_key=class_key, sheet=sheet, mapping=mapping)
            _log_plan(plan)
            key = self.plan_key()
            columns = encode_columns(plan.rows)
            digest = plan_digest(plan, key, columns=columns)
            with _errors_mapped("report directory", run.report_dir):
                run.plan_path = run.report_dir / PLAN_NAME
                run.report_dir.mkdir(parents=True, exist_ok=True)
                write_plan(plan, run.plan_path, digest=digest, key_id=key_id(key), columns=columns)
            del columns
            if plan_is_refused(plan):
                refused = self._refused(plan, run, digest, [], None, kind="sync")
                refused.notes.append("sync refused: --strict and some rows are rejected; nothing was written")
                return refused
            return self._execute(plan, run, digest, kind="sync", dry_run=dry_run, publish=publish)

        return self._unattended("sync", report_dir, body)

    # ------------------------------------------------------------------ internals
    def _unattended(self, command: str, report_dir: str | Path | None,
                    body: Callable[[Run], RunResult]) -> RunResult:  # fmt: skip
        options = RunOptions.from_settings(self.settings, report_dir=report_dir)
        try:
            with unattended_run(command, options, argv=self.argv) as run:
                try:
                    result = body(run)
                except GradesyncError as e:
                    result = RunResult(kind=command, error=e)
                result.run_dir = run.run_dir
                run.outcome = result.outcome(run.plan_path)
        except (LockError, StorageError) as e:  # before the run began: no run directory, no run.json
            return RunResult(kind=command, error=e)
        return result

    def _save_plan(self, plan: Plan, run: Run, digest: str, kid: str, columns: dict[str, Column]) -> Path:
        """The run's copy of a plan given in memory, with ``digest`` made by the key ``kid``."""
        target = run.run_dir / PLAN_NAME
        with _errors_mapped("run directory", run.run_dir):
            write_plan(plan, target, digest=digest, key_id=kid or "0" * 8, columns=columns)
        return target

    def _check_graph(self, plan: Plan) -> None:
        planned, configured = plan.graph_base_url.rstrip("/"), self.settings.graph.base_url.rstrip("/")
        if planned and planned != configured:
            raise UsageError(
                f"the plan was made against {planned}, but Graph is configured as {configured}",
                code="plan-graph-mismatch",
                hint="set GRADESYNC_GRAPH_URL (or graph.base_url) to the Graph the plan was made against",
            )

    def _check_digest(self, plan: Plan, digest: str, approved: str | None, key: bytes) -> str:
        """Refuse (exit 4) a plan that is not the one made and reviewed: a plan file whose stored
        digest is not what this key gives for its content now (edited, or signed with another key),
        or any plan other than the ``approved`` one. A plan file of schema 1 or 2, whose digest is
        not keyed, is applied only with the digest a reviewer approved. Returns the digest people see."""
        shown = legacy_digest(plan) if plan.schema_version < SCHEMA_VERSION else digest
        self.emit("stage", "guards", message=f"plan digest {short_digest(shown)}")
        problem, code, hint = None, "plan-digest-mismatch", EDITED_HINT
        if plan.schema_version < SCHEMA_VERSION:
            if approved is None:
                problem, code = (
                    f"this plan file (schema {plan.schema_version}) was written by an earlier gradesync, "
                    "whose digest anyone can recompute: it is applied only with the digest a reviewer "
                    "approved",
                    "plan-unsigned",
                )
                hint = f"gradesync apply PLAN --digest {short_digest(shown)} (if that is the digest you "
                hint += "reviewed), or make the plan again with this version"
            elif plan.digest and not same_digest(plan.digest, shown):
                problem = self._changed(plan.digest, shown)
        elif plan.digest and plan.key_id and plan.key_id != key_id(key):
            problem, code, hint = (
                f"the plan was signed with another plan key (key id {plan.key_id}; this state "
                f"directory's key is {key_id(key)}): it was made with another state directory or on "
                "another machine",
                "plan-key-mismatch",
                "apply it with the --state-dir it was made with, or set [apply] plan_key_file "
                "(GRADESYNC_APPLY_PLAN_KEY_FILE) to the key file that signed it",
            )
        elif plan.digest and not same_digest(plan.digest, digest):
            problem = self._changed(plan.digest, digest)
        if problem is None and approved is not None and not digest_matches(approved, shown):
            problem = (
                f"the plan's digest is {short_digest(shown)}, not the approved {approved.strip()[:SHOWN_MAX]}"
            )
        if problem:
            raise GuardError(problem, code=code, hint=hint)
        if plan.schema_version < SCHEMA_VERSION:
            old = f"applying a schema-{plan.schema_version} plan file on the strength of its approved digest"
            self.emit("warning", "guards", message=f"{old}; plans made by this version are signed")
        return shown

    @staticmethod
    def _changed(stored: str, now: str) -> str:
        return (
            f"the plan no longer matches its digest (stored {short_digest(stored)}, its content gives "
            f"{short_digest(now)}): the file was changed after it was made"
        )

    def _execute(self, plan: Plan, run: Run, digest: str, *, kind: str, dry_run: bool = False,
                 resume: bool = False, publish: bool = False) -> RunResult:  # fmt: skip
        """guards → execute (→ reconcile, inside the executor) → report."""
        verdict = self.verdict(plan, check_age=not resume)
        try:
            refuse(verdict)
            options = apply_options(self.settings, dry_run=dry_run, resume=resume, publish=publish)
            if publish and not options.publish_assignments:
                empty = "--return, but [publish] assignments is empty: nothing will be returned"
                self.emit("warning", "execute", message=empty)
            self.emit("stage", "execute")
            applied = self._run_executor(plan, options)
        except GuardError as e:
            return self._refused(plan, run, digest, verdict or [e.message], e, kind=kind)
        self.emit("stage", "report")
        summary = self._summary(applied.rows, plan, kind="reconciliation", verdict=[], digest=digest,
                                applied=applied)  # fmt: skip
        paths = self._reports(applied.rows, summary, plan, run.report_dir, kind="reconciliation")
        for note in applied.notes:
            self.emit("warning", "reconcile", message=note)
        error = applied.error  # what stopped the run early: the rows it left are carried over
        if isinstance(error, TransientGraphError) and error.code in NETWORK_CODES:
            error = network_error(error)
        result = RunResult(
            kind=kind, plan=plan, rows=applied.rows, summary=summary, digest=digest, error=error,
            warnings=list(plan.warnings), report_paths=paths, notes=list(applied.notes),
            dry_run=applied.dry_run, auth_failed=applied.auth_failed, return_failed=applied.return_failed,
        )  # fmt: skip
        self.emit("done", "report", message=f"exit code {int(result.exit_code)}")
        return result

    def _run_executor(self, plan: Plan, options: ApplyOptions) -> ApplyResult:
        state_dir = self.settings.apply.state_dir
        with (
            _errors_mapped("state directory", state_dir),
            Journal.in_dir(state_dir) as journal,
            Memory.in_dir(state_dir, graph_base_url=plan.graph_base_url) as memory,
        ):
            return apply_plan(plan, self.client, journal=journal, options=options,
                              progress=self._progress("execute"), memory=memory)  # fmt: skip

    def _refused(self, plan: Plan, run: Run, digest: str, verdict: list[str], error: GuardError | None,
                 *, kind: str) -> RunResult:  # fmt: skip
        """A refused apply/sync (a guard, or --strict) still writes the plan's report, verdict shown."""
        summary = self._summary(plan.rows, plan, kind="plan", verdict=verdict, digest=digest)
        paths = self._reports(plan.rows, summary, plan, run.report_dir)
        return RunResult(kind=kind, plan=plan, rows=plan.rows, summary=summary, digest=digest,
                         guard_verdict=list(verdict), warnings=list(plan.warnings), error=error,
                         report_paths=paths)  # fmt: skip

    def _summary(self, rows: pd.DataFrame, plan: Plan, *, kind: str, verdict: list[str], digest: str,
                 applied: ApplyResult | None = None) -> RunSummary:  # fmt: skip
        stats = applied.graph_stats if applied is not None else self.client.stats.asdict()
        summary = RunSummary.from_rows(
            rows,
            kind="reconciliation" if kind == "reconciliation" else "plan",
            inputs=plan.inputs,
            graph_base_url=plan.graph_base_url,
            created_at=plan.created_at if applied is None else utc_now(),
            graph_stats=stats,
            elapsed_seconds=applied.elapsed_seconds if applied is not None else None,
            retries=int(stats.get("retries", 0)),
            throttled=int(stats.get("throttled", 0)),
            strict_refused=applied is None and plan_is_refused(plan),
            dry_run=True if applied is None else applied.dry_run,
        )
        return dataclasses.replace(
            summary, guard_verdict=list(verdict), digest=short_digest(digest), warnings=list(plan.warnings)
        )

    def _reports(self, rows: pd.DataFrame, summary: RunSummary, plan: Plan, report_dir: str | Path,
                 kind: str = "plan") -> dict[str, Path]:  # fmt: skip
        self.emit("stage", "report")
        with _errors_mapped("report directory", report_dir):
            return write_reports(rows, summary, Path(report_dir), roster_gaps=plan.roster_gaps, kind=kind)


SHOWN_MAX = 64  # characters of a wrong approved digest echoed back
EDITED_HINT = "never edit a plan by hand: change the export, make a fresh plan and review it again"


def _log_plan(plan: Plan) -> None:
    for item in plan.inputs:
        log.info("read: %s (%d rows)", item.path, item.rows, extra={"input": item.path, "rows": item.rows})
    counts = {k: v for k, v in plan.counts().items() if v}
    log.info(
        "plan: %d rows, %d writes (%s)",
        len(plan.rows),
        len(plan.operations()),
        ", ".join(f"{k}={v}" for k, v in counts.items()) or "nothing",
        extra={"actions": counts, "rows": len(plan.rows)},
    )


def make_plan(
    paths: Sequence[str | Path],
    settings: Settings,
    client: GraphClient,
    *,
    class_key: str | None = None,
    sheet: str | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    created_at: str | None = None,
    state_dir: str | Path | None = None,
) -> Plan:
    """read → resolve → plan in one call (tests and benchmarks); ``Pipeline.make_plan`` with
    ``state_dir`` as ``[apply] state_dir`` (three-way sync) and ``progress`` as a step callback."""
    if state_dir is not None:
        settings = settings.override("apply", state_dir=str(state_dir))
    else:  # no state: every difference is an ordinary change
        settings = settings.override("apply", state_dir="")

    def listener(event: Event) -> None:
        if progress is not None and event.kind == "progress":
            progress(event.message, event.done, event.total)

    plan = Pipeline(settings, client, listener=listener).make_plan(paths, class_key=class_key, sheet=sheet)
    if created_at is not None:
        plan.created_at = created_at
    return plan
