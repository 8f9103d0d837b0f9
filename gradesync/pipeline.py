"""The pipeline library: read → resolve → plan → guards → execute → reconcile → report.

Both front ends (``gradesync.cli`` and the web app) call this and nothing else wires stages::

    pipeline = Pipeline(settings, make_client(settings), listener=print)
    preview = pipeline.plan(["grades.csv"], report_dir="reports", out="plan.json")
    preview.digest, preview.guard_verdict           # what a reviewer approves; why apply would refuse
    result = pipeline.apply(preview.plan, approved_digest=preview.digest[:12])
    result.exit_code, result.verdict                # the run's outcome (``gradesync.outcome``)

Success is decided once, by ``outcome.judge`` on the facts the stages return (the rows' statuses,
the error that stopped the run); the run summary carries that verdict and everything renders it.
Progress goes to a ``Listener`` as ``Event`` values (the CLI renders them with rich, the web app as
a page). ``apply`` and ``sync`` run inside an unattended run (``state.runs``: lock, run directory,
log, ``run.json``, notify), driven by ``Settings`` — the command line overrides settings, it never
hands dicts down.

Errors: a ``GradesyncError`` of ``apply``/``sync`` becomes ``RunResult.error`` (and ``run.json``'s
``error``); ``plan`` raises it. A transport failure that leaves a stage (Graph unreachable, DNS, TLS)
becomes a ``NetworkError`` (exit 7) here; a failing disk a ``StorageError`` (exit 8,
``errors.storage_error``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from collections.abc import Mapping as MappingOf
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gradesync.auth import token_provider
from gradesync.config import Settings
from gradesync.errors import (
    AuthError,
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
from gradesync.execute.apply import ApplyOptions, ApplyResult, apply_plan, plan_hash
from gradesync.execute.reads import read_assignments
from gradesync.graph import GraphClient, RetryPolicy
from gradesync.guards import GuardLimits, plan_verdict, refuse
from gradesync.logs import logging_transport, redacting
from gradesync.models import CURRENT_COLUMNS, InputFile, Plan, TeamsClass
from gradesync.outcome import Status, Verdict, judge
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
from gradesync.plan.planfile import SCHEMA_VERSION, read_plan, write_plan
from gradesync.plan.undo import build_undo_plan
from gradesync.read import ReadResult, load_mapping
from gradesync.read.inspect import Inspection, SnapshotLookup, lookup_from_snapshot
from gradesync.read.isolated import inspect_inputs, read_inputs  # in a caged process with [input] isolate
from gradesync.report import RunSummary, write_reports
from gradesync.resolve import read_classes, read_teachers, resolve
from gradesync.state.doctor import critical_failures
from gradesync.state.history import find_run, read_run_record, records_frame, run_plan_path, runs_undoing
from gradesync.state.journal import JOURNAL_NAME, Journal
from gradesync.state.mappings import saved_mapping_path
from gradesync.state.memory import Memory, load_memory
from gradesync.state.plankey import load_plan_key, plan_key_path
from gradesync.state.runs import PLAN_NAME, Run, RunOptions, RunOutcome, unattended_run

__all__ = [
    "EDITED_HINT",
    "NETWORK_CODES",
    "SHOWN_MAX",
    "STAGES",
    "Event",
    "Listener",
    "Pipeline",
    "PlanResult",
    "RunResult",
    "SourceNames",
    "guard_limits",
    "log",
    "make_client",
    "make_plan",
    "network_error",
    "utc_now",
]

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
    """What a plan, apply or sync came to: the rows, the summary (which holds the run's verdict:
    ``outcome.judge``), the reports and the error that stopped the run, if any."""

    kind: str  # "plan" | "apply" | "sync"
    plan: Plan | None = None
    rows: pd.DataFrame | None = None  # plan rows; for apply/sync with a ``status`` column (Status values)
    summary: RunSummary | None = None  # None only when the run stopped before it had rows
    digest: str = ""  # the plan digest (full hex; people see the first 12)
    warnings: list[str] = field(default_factory=list)
    error: GradesyncError | None = None
    report_paths: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # the executor's remarks (read-back, --return)
    run_dir: Path | None = None
    dry_run: bool = False

    @property
    def verdict(self) -> Verdict:
        """The run's outcome, as its summary judged it (a run that stopped before it had rows is
        judged on its error alone)."""
        return self.summary.verdict if self.summary is not None else judge(error=self.error)

    @property
    def exit_code(self) -> ExitCode:
        return self.verdict.exit_code

    @property
    def guard_verdict(self) -> list[str]:
        """Why the guards refuse (for a preview: would refuse) the plan; [] = it may be applied."""
        return list(self.verdict.refused)

    @property
    def short_digest(self) -> str:
        return short_digest(self.digest)

    @property
    def status_counts(self) -> dict[str, int] | None:
        """How many rows ended in each status (those some row has); None for a preview."""
        if self.summary is None or self.summary.kind != "reconciliation":
            return None
        return {s: n for s, n in self.summary.status_counts.items() if n}

    def asdict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "exit_code": int(self.exit_code),
            "verdict": self.verdict.asdict(),
            "digest": self.short_digest,
            "guard_verdict": self.guard_verdict,
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
        extra["guard_verdict"] = self.guard_verdict
        extra["verdict"] = self.verdict.asdict()
        return RunOutcome(
            exit_code=int(self.exit_code),
            error=self.error.as_dict() if self.error is not None else None,
            reports=dict(self.report_paths),
            plan=plan_file,
            status_counts=self.status_counts,
            extra=extra,
            summary=self.summary.asdict() if self.summary is not None else None,
        )


@dataclass(slots=True)
class PlanResult:
    """A preview: the plan, its summary (with the verdict), why apply would refuse it, its digest."""

    plan: Plan
    summary: RunSummary
    digest: str
    warnings: list[str] = field(default_factory=list)
    report_paths: dict[str, Path] = field(default_factory=dict)
    key_id: str = ""  # which plan key made the digest (``plan.digest.key_id``)
    # the plan's rows as the plan file holds them (``plan.encoding``): the digest was computed from
    # them, and the plan file is written from them (encoding a million rows once, not twice)
    columns: dict[str, Column] | None = field(default=None, repr=False, compare=False)

    @property
    def guard_verdict(self) -> list[str]:
        return list(self.summary.verdict.refused)

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
            warnings=list(self.warnings),
            report_paths=dict(self.report_paths),
        )

    @property
    def exit_code(self) -> ExitCode:
        return self.summary.verdict.exit_code


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
    return GuardLimits.from_settings(settings.apply)


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
class SourceNames:
    """How the input files are named in what a run writes and raises: ``path → name``.

    The web app stores an upload under the server's state directory; its reports, plan file, messages
    and errors must name the file as the registrar uploaded it (``canvas.csv``), never by the server's
    path. Every text that names an input (a row's ``source_file`` and ``message``, the inputs, the
    reader's warnings and diagnoses, an error's message and hint) goes through :meth:`text`. A bundle's
    member (``PATH!results.csv``) keeps its member name after the bundle's."""

    def __init__(self, names: MappingOf[str, str] | None = None) -> None:
        # longest first: a path that begins with another is replaced whole
        self.pairs = sorted(
            ((str(k), v) for k, v in (names or {}).items() if str(k)), key=lambda p: -len(p[0])
        )

    def __bool__(self) -> bool:
        return bool(self.pairs)

    def text(self, value: str) -> str:
        for path, name in self.pairs:
            if path in value:
                value = value.replace(path, name)
        return value

    def column(self, values: pd.Series) -> pd.Series:
        """A text column renamed per distinct value (a million rows name a few files)."""
        codes, uniques = pd.factorize(values.astype(object), use_na_sentinel=False)
        renamed = np.array([self.text(u) if isinstance(u, str) else u for u in uniques], dtype=object)
        return pd.Series(renamed[codes], index=values.index, dtype=object)

    def read(self, read: ReadResult) -> ReadResult:
        frame = read.frame
        for name in ("source_file", "message", "note"):
            if name in frame.columns:
                frame[name] = self.column(frame[name])
        read.inputs = [dataclasses.replace(i, path=self.text(i.path)) for i in read.inputs]
        read.warnings = [self.text(w) for w in read.warnings]
        read.diagnoses = [self.text(d) for d in read.diagnoses]
        for f in read.files:
            f.path = self.text(f.path)
        return read

    def inspection(self, inspection: Inspection) -> Inspection:
        for f in inspection.files:
            f.path = self.text(f.path)
        inspection.warnings = [self.text(w) for w in inspection.warnings]
        inspection.diagnoses = [self.text(d) for d in inspection.diagnoses]
        return inspection

    def error(self, error: GradesyncError) -> GradesyncError:
        error.message = self.text(error.message)
        error.args = (error.message,)
        error.hint = self.text(error.hint) if error.hint else error.hint
        if isinstance(error, InputError):
            error.file = self.text(error.file)
        return error


class Pipeline:
    def __init__(
        self,
        settings: Settings,
        client: GraphClient,
        *,
        listener: Listener | None = None,
        argv: Sequence[str] | None = None,
        names: MappingOf[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.client = client
        self.listener = listener
        self.argv = argv  # recorded (redacted) in run.json; None: sys.argv
        self.names = SourceNames(names)  # input path → the name reports and errors give it
        self._key: bytes | None = None

    # ------------------------------------------------------------------ events
    def emit(self, kind: str, stage: str, done: int = 0, total: int = 0, message: str = "") -> None:
        event = Event(kind, stage, done, total, message)
        if kind == "warning" and (self.listener is None or log.hasHandlers()):
            # a listener (the CLI, the web app) shows warnings itself: logged where a log is kept (an
            # unattended run's), never printed a second time by logging's last-resort handler
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
            mapping = load_mapping(self.mapping_path(self.settings.input.mapping))
        try:
            read = read_inputs(list(paths), self.settings, class_key=class_key, sheet=sheet, mapping=mapping,
                               format=format or self.settings.input.format)  # fmt: skip
        except GradesyncError as e:
            raise self.names.error(e) from None
        if self.names:
            read = self.names.read(read)
        if read.preset:
            read.warnings.insert(0, f"read as: {read.preset} (format detected from the header)")
        read.warnings.extend(read.diagnoses)
        return read

    def mapping_path(self, value: str) -> Path:
        """``--mapping`` / ``[input] mapping``: a TOML file, or the name of a mapping saved for the
        nightly run (``STATE_DIR/mappings/NAME.toml``, what the web app's "Save the mapping" writes)."""
        return saved_mapping_path(value, self.settings.apply.state_dir or None)

    def classes(self) -> list[TeamsClass]:
        """Every class of the tenant, as people know them (the class chooser, "did you mean")."""
        with _errors_mapped("state directory"):
            return read_classes(self.client)

    def teachers(self, class_ids: Sequence[str]) -> dict[str, tuple[str, ...]]:
        """``class id → teachers' names`` for the classes a person is shown."""
        with _errors_mapped("state directory"):
            return read_teachers(self.client, class_ids)

    def inspect(
        self,
        paths: Sequence[str | Path],
        *,
        class_key: str | None = None,
        sheet: str | None = None,
        mapping: Any = None,
        format: str | None = None,
        teams: bool = False,
        classes: Sequence[TeamsClass] | None = None,
    ) -> Inspection:
        """How ``paths`` are understood (``gradesync.read.inspect``), for the Map page and
        ``gradesync inspect``. With ``teams``, Graph is read for "did you mean": classes, rosters and
        assignments only (the rows' assignment names are blanked, so no submission list is read), and
        every class of the tenant (or ``classes``, a list already read) for a class Teams lacks."""
        kw: dict[str, Any] = {"class_key": class_key, "sheet": sheet, "mapping": mapping, "format": format}
        try:
            return self.names.inspection(self._inspect(paths, teams=teams, classes=classes, **kw))
        except GradesyncError as e:
            raise self.names.error(e) from None

    def _inspect(self, paths: Sequence[str | Path], *, class_key: str | None, sheet: str | None,
                 mapping: Any, format: str | None, teams: bool,
                 classes: Sequence[TeamsClass] | None) -> Inspection:  # fmt: skip
        self.emit("stage", "read", message="inspect")
        if mapping is None and self.settings.input.mapping:
            mapping = load_mapping(self.mapping_path(self.settings.input.mapping))
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
            tenant = list(classes) if classes is not None else self.classes()
            lookup = dataclasses.replace(lookup or SnapshotLookup(), classes=tenant)
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
        refused = self.verdict(plan)
        key = self.plan_key()
        columns = encode_columns(plan.rows)
        digest = plan_digest(plan, key, columns=columns)
        summary = self._summary(plan.rows, plan, kind="plan", refused=refused, digest=digest)
        return PlanResult(plan, summary, digest, list(plan.warnings), key_id=key_id(key), columns=columns)

    def plan(self, paths: Sequence[str | Path], *, class_key: str | None = None, sheet: str | None = None,
             mapping: Any = None, report_dir: str | Path | None = None,
             out: str | Path | None = None) -> PlanResult:  # fmt: skip
        """The preview: read, resolve, plan, guards; with ``report_dir`` the reports are written, with
        ``out`` the plan file (not for a plan ``--strict`` refused). Raises a GradesyncError."""
        result = self.preview(self.make_plan(paths, class_key=class_key, sheet=sheet, mapping=mapping))
        return self._preview_files(result, report_dir, out)

    def _preview_files(self, result: PlanResult, report_dir: str | Path | None,
                       out: str | Path | None) -> PlanResult:  # fmt: skip
        """A preview's reports (``report_dir``) and plan file (``out``; not for a plan ``--strict``
        refused)."""
        if report_dir is not None:
            result.report_paths.update(
                self._reports(result.plan.rows, result.summary, result.plan, report_dir, run=False)
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
            self._check_doctor()
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
            _record_plan_kind(run, plan, dry_run)
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
            self._check_doctor()
            plan = self.make_plan(paths, class_key=class_key, sheet=sheet, mapping=mapping)
            _log_plan(plan)
            _record_plan_kind(run, plan, dry_run)
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

    # ------------------------------------------------------------------ undo
    def undo(self, run: str | Path, *, report_dir: str | Path | None = None,
             out: str | Path | None = None) -> PlanResult:  # fmt: skip
        """The preview of undoing ``run`` (a run id in the runs directory, or a run directory): a plan
        that puts back what the run changed (``plan/undo.py``), its digest, the guards' verdict and
        summary — applied like any plan, ``apply(preview.plan, approved_digest=preview.digest[:12])``,
        whose run records ``undo_of``. Reads the run's plan and the journal's records of it, and what
        Teams holds now for the assignments the run wrote to (so the preview says which cells changed
        since and which grades the students have seen). With ``report_dir`` the reports are written,
        with ``out`` the plan file. Raises a GradesyncError."""
        self.emit("stage", "read", message="the run to undo")
        source = self._undo_source(run)
        self.emit("stage", "resolve")
        current, read = self._read_now(source.plan, source.records)
        warnings = source.warnings + [
            f"could not read {what}: {why}; its grades are checked only when the undo is applied"
            for what, why in read.errors.items()
        ]
        self.emit("stage", "plan")
        plan = build_undo_plan(
            source.plan.rows,
            source.records,
            current,
            undo_of=source.run_dir.name,
            created_at=utc_now(),
            graph_base_url=source.plan.graph_base_url,
            config_hash=self.settings.config_hash(),
            inputs=[source.plan_input],
            read=read.ok,
            precision=self.settings.policy.precision,
        )
        for warning in warnings:
            self.emit("warning", "plan", message=warning)
        plan.warnings = warnings + plan.warnings
        return self._preview_files(self.preview(plan), report_dir, out)

    def _undo_source(self, ref: str | Path) -> _UndoSource:
        """The run directory, the plan it applied, the journal's records of that plan and what the
        preview must say about the run as a whole."""
        options = RunOptions.from_settings(self.settings)
        with _errors_mapped("runs directory", options.runs_dir):
            run_dir = find_run(ref, options.runs_dir)
            record = read_run_record(run_dir)
        plan_path = run_plan_path(run_dir, record)
        if not plan_path.is_file():
            raise UsageError(
                f"run {run_dir.name} has no plan file ({plan_path}): it stopped before it had a plan, "
                "so it wrote nothing",
                code="undo-nothing",
                hint="nothing to undo; `gradesync undo` takes a run that applied a plan",
            )
        run_plan = read_plan(plan_path)
        with _errors_mapped("run directory", plan_path):
            plan_input = InputFile(str(plan_path), _sha256(plan_path), len(run_plan.rows))
        self._check_graph(run_plan)
        recorded = str(record.get("digest") or "")
        # what the run recorded is the digest people saw: keyed for this version's plans, the plain one
        # for a plan file of an earlier version
        if run_plan.schema_version < SCHEMA_VERSION:
            current = legacy_digest(run_plan)
        else:
            current = plan_digest(run_plan, self.plan_key())
        if recorded and not current.startswith(recorded):
            raise UsageError(
                f"the plan file {plan_path} is not the plan run {run_dir.name} applied (its digest is "
                f"{short_digest(current)}, the run recorded {recorded}): a later run "
                "with the same --report-dir replaced it",
                code="undo-plan-replaced",
                hint="a run keeps its own plan.json in its run directory unless --report-dir sends it "
                "elsewhere; give each sync its own report directory (or none)",
            )
        records = self._journal_records(run_dir, record, run_plan)
        warnings = [f"run {run_dir.name} was already undone by run {other}: the cells it put back are "
                    "listed as already holding the value from before the run"
                    for other in runs_undoing(options.runs_dir, run_dir.name)]  # fmt: skip
        if record.get("status") == "running":
            warnings.append(
                f"run {run_dir.name} has not finished (or stopped without finishing): rows it has not "
                "written are not undone; run the undo again once it has finished"
            )
        return _UndoSource(run_dir, run_plan, plan_input, records, warnings)

    def _journal_records(self, run_dir: Path, record: dict[str, Any], run_plan: Plan) -> pd.DataFrame:
        """The journal's records of the run's plan (none for a dry run). A journal that does not know
        a run that wrote is another state directory's: refused, never guessed."""
        state_dir = Path(self.settings.apply.state_dir)
        found: dict[int, Any] = {}
        if not record.get("dry_run") and (state_dir / JOURNAL_NAME).is_file():
            with _errors_mapped("state directory", state_dir), Journal.in_dir(state_dir) as journal:
                found = journal.ops(plan_hash(run_plan))
        counts = record.get("status_counts")
        written = ("updated", "created", "excused")
        wrote = sum(int(counts.get(s) or 0) for s in written) if isinstance(counts, dict) else 0
        if not found and wrote and not record.get("dry_run"):
            raise UsageError(
                f"the journal in {state_dir} has no record of run {run_dir.name}, which wrote {wrote} "
                "grade(s)",
                code="undo-journal-missing",
                hint=f"give the state directory the run used: --state-dir {record.get('state_dir') or 'DIR'}",
            )
        return records_frame(found)

    def _read_now(self, run_plan: Plan, records: pd.DataFrame) -> tuple[pd.DataFrame, _ReadNow]:
        """What Teams holds now (``models.CURRENT_COLUMNS``) for the assignments the run wrote to."""
        maybe_written = records["status"].isin([Status.UPDATED.value, Status.CREATED.value, "sending"])
        written = set(records.loc[maybe_written, "row_key"].astype(int))
        rows = run_plan.rows[run_plan.rows["row_key"].astype(int).isin(written)]
        pairs = set(rows[["class_id", "assignment_id"]].astype(str).itertuples(index=False, name=None))
        with _errors_mapped("state directory"):
            found = read_assignments(self.client, pairs)
            # Graph unreachable, failing or refusing the token: a preview that cannot see Teams could
            # not say which grades the students have seen (a class or assignment that is gone is a row)
            stop = [e for e in found.errors.values() if isinstance(e, (TransientGraphError, AuthError))]
            if stop:
                raise stop[0]
        current = pd.DataFrame(
            [(sid, cur.outcome_id, cur.points, cur.published_points) for sid, cur in found.current.items()],
            columns=list(CURRENT_COLUMNS),
        ).astype(CURRENT_COLUMNS)
        errors = {f"assignment {a} of class {c}": err.message for (c, a), err in found.errors.items()}
        return current, _ReadNow(pairs - found.errors.keys(), errors)

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
        except (LockError, StorageError) as e:  # before the run began: a storage failure is still recorded
            return RunResult(kind=command, error=e, run_dir=getattr(e, "run_dir", None))
        return result

    def _save_plan(self, plan: Plan, run: Run, digest: str, kid: str, columns: dict[str, Column]) -> Path:
        """The run's copy of a plan given in memory, with ``digest`` made by the key ``kid``."""
        target = run.run_dir / PLAN_NAME
        with _errors_mapped("run directory", run.run_dir):
            write_plan(plan, target, digest=digest, key_id=kid or "0" * 8, columns=columns)
        return target

    def _check_doctor(self) -> None:
        """Refuse to write while the last ``gradesync doctor`` run against this Graph found a critical
        check failing (``state.doctor``): an assumption gradesync relies on does not hold there."""
        a = self.settings.apply
        if a.ignore_doctor or not a.state_dir:
            return
        with _errors_mapped("state directory", a.state_dir):
            failed = critical_failures(a.state_dir, self.settings.graph.base_url)
        if failed:
            names = ", ".join(str(c.get("name")) for c in failed)
            raise GuardError(
                f"the last gradesync doctor run found critical check(s) failing against this Graph: {names} "
                f"({failed[0].get('evidence')})",
                code="doctor-check-failed",
                hint="fix what the doctor reported and run `gradesync doctor` again (a passing run clears "
                "this), or start anyway with --ignore-doctor ([apply] ignore_doctor = true)",
            )

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
        refused = self.verdict(plan, check_age=not resume)
        try:
            refuse(refused)
            options = ApplyOptions.from_settings(
                self.settings, dry_run=dry_run, resume=resume, publish=publish
            )
            if plan.undo_of and options.overwrite:  # an undo never writes over a grade changed since
                options = dataclasses.replace(options, on_conflict="skip")
                self.emit("warning", "execute", message="an undo never overwrites a grade changed since "
                          "the run: [apply] on_conflict = \"overwrite\" is ignored for it")  # fmt: skip
            if publish and not options.publish_assignments:
                empty = "--return, but [publish] assignments is empty: nothing will be returned"
                self.emit("warning", "execute", message=empty)
            self.emit("stage", "execute")
            applied = self._run_executor(plan, options)
        except GuardError as e:
            return self._refused(plan, run, digest, refused or [e.message], e, kind=kind)
        self.emit("stage", "report")
        error = applied.error  # what stopped the run early: the rows it left are carried over
        if isinstance(error, TransientGraphError) and error.code in NETWORK_CODES:
            error = network_error(error)
        summary = self._summary(applied.rows, plan, kind="reconciliation", refused=[], digest=digest,
                                applied=applied, error=error)  # fmt: skip
        paths = self._reports(applied.rows, summary, plan, run.report_dir, kind="reconciliation")
        for note in applied.notes:
            self.emit("warning", "reconcile", message=note)
        result = RunResult(
            kind=kind, plan=plan, rows=applied.rows, summary=summary, digest=digest, error=error,
            warnings=list(plan.warnings), report_paths=paths, notes=list(applied.notes),
            dry_run=applied.dry_run,
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

    def _refused(self, plan: Plan, run: Run, digest: str, refused: list[str], error: GuardError | None,
                 *, kind: str) -> RunResult:  # fmt: skip
        """A refused apply/sync (a guard, or --strict) still writes the plan's report, verdict shown."""
        summary = self._summary(plan.rows, plan, kind="plan", refused=refused, digest=digest, error=error)
        paths = self._reports(plan.rows, summary, plan, run.report_dir)
        return RunResult(kind=kind, plan=plan, rows=plan.rows, summary=summary, digest=digest,
                         warnings=list(plan.warnings), error=error, report_paths=paths)  # fmt: skip

    def _summary(self, rows: pd.DataFrame, plan: Plan, *, kind: str, refused: list[str], digest: str,
                 applied: ApplyResult | None = None,
                 error: GradesyncError | None = None) -> RunSummary:  # fmt: skip
        """The run summary, which judges the run (``outcome.judge``) on these facts."""
        stats = applied.graph_stats if applied is not None else self.client.stats.asdict()
        return RunSummary.from_rows(
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
            warnings=list(plan.warnings),
            guard_verdict=list(refused),
            digest=short_digest(digest),
            error=error,
            return_failed=applied.return_failed if applied is not None else 0,
            return_carried=applied.return_carried if applied is not None else 0,
        )

    def _reports(self, rows: pd.DataFrame, summary: RunSummary, plan: Plan, report_dir: str | Path,
                 kind: str = "plan", *, run: bool = True) -> dict[str, Path]:  # fmt: skip
        """The reports; a run's (``run``) also ``rows.json``, the rows typed for the web app's pages."""
        self.emit("stage", "report")
        with _errors_mapped("report directory", report_dir):
            return write_reports(rows, summary, Path(report_dir), roster_gaps=plan.roster_gaps, kind=kind,
                                 rows_file=run)  # fmt: skip


SHOWN_MAX = 64  # characters of a wrong approved digest echoed back
EDITED_HINT = "never edit a plan by hand: change the export, make a fresh plan and review it again"


@dataclass(frozen=True, slots=True)
class _UndoSource:
    run_dir: Path
    plan: Plan  # the plan the run applied
    plan_input: InputFile  # that plan's file, the undo plan's input
    records: pd.DataFrame  # the journal's records of it (models.JOURNAL_COLUMNS)
    warnings: list[str]


@dataclass(frozen=True, slots=True)
class _ReadNow:
    ok: set[tuple[str, str]]  # the assignments read
    errors: dict[str, str]  # what could not be read → why


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _record_plan_kind(run: Run, plan: Plan, dry_run: bool) -> None:
    """What run.json says about the plan beyond the outcome: the run it undoes (``undo_of``) and
    whether it was a dry run (an undo of it has nothing to put back)."""
    if plan.undo_of:
        run.record["undo_of"] = plan.undo_of
    if dry_run:
        run.record["dry_run"] = True


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
