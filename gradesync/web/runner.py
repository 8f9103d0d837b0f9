"""The ONLY place the web app calls into gradesync's pipeline (read, resolve, plan, guards, apply, report).

Its functions are shaped like contract 9's ``gradesync.pipeline.Pipeline`` (``inspect`` / ``plan`` /
``apply`` with a listener of :class:`Event`), so that switching the web app to the pipeline library
is a change of this module only. Until that library lands, they wire the stages that exist today the
way ``gradesync/cli/apply.py`` does: ``read_inputs`` → ``resolve`` → ``build_plan``, and for apply
``unattended_run`` (the lock, a run directory, ``run.json``) around ``apply_plan`` with the state
directory's journal and memory, then ``write_reports`` — the same journal, lock and guards as a
nightly ``gradesync sync``. What the switch needs is listed in notes/web.md.

The column mapping a registrar edits on the Map page is a :data:`ColumnMap`: the assignment
*as the file names it* (a wide file's column header, or a value of a long file's assignment column)
→ the Teams assignment it goes to (its display name), or ``None`` to ignore those cells (they stay
in the report as ``ignored_row``, no row is dropped).
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from gradesync.config import Settings
from gradesync.errors import ExitCode, GradesyncError, GuardError
from gradesync.execute.apply import ApplyOptions, apply_plan
from gradesync.guards import (
    coverage_violation,
    guard_violations,
    plan_age_violation,
    plan_figures,
)
from gradesync.models import Plan, ReasonCode, Snapshot
from gradesync.plan import build_plan
from gradesync.plan.planfile import read_plan, write_plan
from gradesync.read import build_desired, load_table, read_inputs
from gradesync.report import RunSummary, write_reports
from gradesync.resolve import resolve
from gradesync.state.journal import Journal
from gradesync.state.memory import Memory, load_memory
from gradesync.state.runs import unattended_run

ColumnMap = Mapping[str, str | None]
IGNORE = ""  # the Map page's "ignore this column" choice


@dataclass(frozen=True, slots=True)
class Event:
    """What a front end renders (contract 9's ``gradesync.pipeline.Event``)."""

    kind: str  # "stage" | "progress" | "warning" | "done"
    stage: str  # "read", "resolve", "plan", "guards", "execute", "reconcile", "report"
    done: int = 0
    total: int = 0
    message: str = ""


Listener = Callable[[Event], None]


def _quiet(_event: Event) -> None:
    return None


def _progress(listener: Listener, stage: str) -> Callable[[str, int, int], None]:
    def note(step: str, done: int, total: int) -> None:
        listener(Event("progress", stage, done, total, step))

    return note


def utc_now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


# --- the digest (contract 10) -------------------------------------------------------------------
_DIGEST_FIELDS = (
    "row_key",
    "action",
    "submission_id",
    "outcome_id",
    "desired_points",
    "clear",
    "excuse",
    "before_points",
)


def _plain(v: Any) -> Any:
    if v is None or v is pd.NA:
        return None
    if isinstance(v, float):
        return None if math.isnan(v) else v
    if hasattr(v, "item"):
        return _plain(v.item())
    return v


def plan_digest(plan: Plan) -> str:
    """sha256 over the plan's decisive row fields and header, first 12 hex digits (contract 10).

    A stand-in for ``gradesync.plan.digest`` (pipe's, in parallel): the switch replaces this body."""
    rows = plan.rows
    columns = [rows[f].tolist() if f in rows.columns else [None] * len(rows) for f in _DIGEST_FIELDS]
    body = [[_plain(v) for v in values] for values in zip(*columns, strict=True)]
    head = {"plan_id": plan.plan_id, "created_at": plan.created_at, "graph_base_url": plan.graph_base_url}
    text = json.dumps({"header": head, "rows": body}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


# --- inspection (the Map page) ------------------------------------------------------------------
@dataclass(slots=True)
class ColumnView:
    header: str  # as the file names it
    role: str  # "class" | "student" | "assignment" | "points" | "assignment values" | "other"
    rows: int = 0  # grade cells this column (or value) holds
    target: str | None = None  # the Teams assignment it maps to now; None: none found
    did_you_mean: list[str] = field(default_factory=list)
    choices: list[str] = field(default_factory=list)  # the class's Teams assignments

    def asdict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(slots=True)
class FileView:
    name: str
    layout: str
    rows: int
    encoding: str | None
    header_row: int
    key_columns: dict[str, str]
    columns: list[ColumnView]

    def asdict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "columns": [c.asdict() for c in self.columns]}


@dataclass(slots=True)
class Inspection:
    """How the files are understood (shaped like read's ``gradesync.read.inspect.Inspection``)."""

    files: list[FileView]
    classes: list[dict[str, Any]]  # per class key: found id and name (or not found)
    warnings: list[str]
    # what inspect read, so that a plan made right after it need not read the files and Teams again
    reuse: Reused | None = None

    def asdict(self) -> dict[str, Any]:
        return {
            "files": [f.asdict() for f in self.files],
            "classes": list(self.classes),
            "warnings": list(self.warnings),
        }


SNAPSHOT_REUSE_SECONDS = 300.0  # a preview never shows "current" grades read longer ago than this


@dataclass(slots=True)
class Reused:
    read: Any  # the ReadResult
    snapshot: Snapshot
    keys: frozenset[str]  # the assignment keys the file names (their submissions were read)
    at: float  # time.monotonic() when Teams was read

    def fits(self, mapping: ColumnMap) -> bool:
        """True when a plan with ``mapping`` needs nothing the snapshot lacks, and it is recent."""
        fresh = time.monotonic() - self.at <= SNAPSHOT_REUSE_SECONDS
        return fresh and all(t in (None, IGNORE) or t in self.keys for t in mapping.values())


def _assignment_names(snapshot: Snapshot) -> dict[str, list[str]]:
    """Graded assignment names per class key (what a column may be mapped to)."""
    a = snapshot.assignments
    graded = a[a["graded"].fillna(False).astype(bool)] if "graded" in a.columns else a
    by_id = graded.groupby("class_id")["display_name"].apply(lambda s: sorted({str(x) for x in s}))
    out: dict[str, list[str]] = {}
    for key, cid in snapshot.classes[["class_key", "class_id"]].itertuples(index=False, name=None):
        out.setdefault(str(key), [])
        out[str(key)] = sorted({*out[str(key)], *by_id.get(cid, [])})
    return out


def inspect(
    paths: Sequence[str | Path],
    settings: Settings,
    client: Any,
    *,
    class_key: str | None = None,
    sheet: str | None = None,
    mapping: ColumnMap | None = None,
    listener: Listener = _quiet,
) -> Inspection:
    """Read the files and look their classes and assignments up in Teams; plan nothing."""
    started = time.monotonic()
    listener(Event("stage", "read"))
    read = read_inputs(list(paths), settings, class_key=class_key, sheet=sheet)
    listener(Event("stage", "resolve"))
    snapshot = resolve(read.frame, settings, client, progress=_progress(listener, "resolve"))
    names = _assignment_names(snapshot)
    mapping = mapping or {}
    files: list[FileView] = []
    for path, item in zip(paths, read.inputs, strict=True):
        table = load_table(path, sheet=sheet if sheet is not None else settings.input.sheet)
        desired = build_desired(table, settings.input, class_key)
        frame = read.frame[read.frame["source_file"] == item.path]
        keys = sorted({str(k) for k in frame["class_key"]})
        choices = sorted({n for k in keys for n in names.get(k, [])})
        columns = [
            ColumnView(header=h, role=role, choices=[])
            for role, h in desired.key_columns.items()
            if role != "assignment" or desired.layout == "long"
        ]
        counts = frame["assignment_key"].value_counts(sort=False)
        for key, n in counts.items():
            name = str(key)
            target = mapping.get(name, name) if name in mapping else name
            known = target in choices
            columns.append(
                ColumnView(
                    header=name,
                    role="assignment" if desired.layout == "wide" else "assignment values",
                    rows=int(n),
                    target=target if (known or target == IGNORE) else None,
                    did_you_mean=[] if known else difflib.get_close_matches(name, choices, n=3, cutoff=0.5),
                    choices=choices,
                )
            )
        files.append(
            FileView(
                name=Path(item.path).name,
                layout=desired.layout,
                rows=item.rows,
                encoding=item.encoding,
                header_row=table.header_row,
                key_columns=dict(desired.key_columns),
                columns=columns,
            )
        )
    found = snapshot.classes.groupby("class_key")
    classes = []
    for key in sorted({str(k) for k in read.frame["class_key"] if str(k)}):
        rows = found.get_group(key) if key in found.groups else None
        classes.append(
            {
                "class": key,
                "found": rows is not None and len(rows) == 1,
                "name": "" if rows is None else str(rows["class_name"].iloc[0]),
                "matches": 0 if rows is None else len(rows),
            }
        )
    keys = frozenset(str(k) for k in read.frame["assignment_key"].unique())
    reuse = Reused(read, snapshot, keys, started)
    return Inspection(files=files, classes=classes, warnings=list(read.warnings), reuse=reuse)


# --- plan (the Preview page) --------------------------------------------------------------------
@dataclass(slots=True)
class Limits:
    """The guard limits and apply options the web app applies with (as a nightly run's CLI options)."""

    options: ApplyOptions = field(default_factory=ApplyOptions)


@dataclass(slots=True)
class PlanResult:
    """Contract 9's ``PlanResult``, plus the roster's SIS ids the preview shows for students with no row."""

    plan: Plan
    summary: RunSummary
    guard_verdict: list[str]
    digest: str
    warnings: list[str]
    report_paths: dict[str, Path] = field(default_factory=dict)
    sis_ids: dict[str, str] = field(default_factory=dict)  # user_id → SIS id (roster gaps)


def _apply_mapping(frame: pd.DataFrame, mapping: ColumnMap) -> pd.DataFrame:
    """Retarget (or ignore) the cells of a mapped assignment key; every row stays."""
    if not mapping:
        return frame
    frame = frame.copy()
    for source, target in mapping.items():
        hit = frame["assignment_key"] == source
        if not hit.any() or target == source:
            continue
        if target in (None, IGNORE):
            live = hit & (frame["reason"].fillna("") == "")
            frame.loc[live, "reason"] = ReasonCode.IGNORED_ROW.value
            frame.loc[live, "message"] = f"column “{source}” is set to “ignore” on the Map page"
            frame.loc[live, "desired_points"] = math.nan
        else:
            frame.loc[hit, "assignment_key"] = target
            frame.loc[hit, "note"] = (
                frame.loc[hit, "note"]
                .fillna("")
                .map(lambda n, s=source, t=target: (n + "; " if n else "") + f"“{s}” mapped to “{t}”")
            )
    return frame


def _coverage(rows: pd.DataFrame, snapshot: Snapshot) -> tuple[int, int]:
    """(students the input names, individual submissions) over the assignments the plan writes to."""
    writes = rows[rows["action"].isin(["update", "create", "excuse"])]
    pairs = set(writes[["class_id", "assignment_id"]].dropna().itertuples(index=False, name=None))
    if not pairs:
        return 0, 0
    subs = snapshot.submissions
    subs = subs[subs["recipient_type"] == "individual"]
    roster: dict[tuple[str, str], set[str]] = {}
    for cid, aid, uid in subs[["class_id", "assignment_id", "user_id"]].itertuples(index=False, name=None):
        if (cid, aid) in pairs and uid:
            roster.setdefault((cid, aid), set()).add(str(uid))
    named: dict[tuple[str, str], set[str]] = {}
    for cid, aid, uid in (
        rows[["class_id", "assignment_id", "user_id"]].dropna().itertuples(index=False, name=None)
    ):
        named.setdefault((str(cid), str(aid)), set()).add(str(uid))
    covered = sum(len(users & named.get(pair, set())) for pair, users in roster.items())
    return covered, sum(len(u) for u in roster.values())


def guard_verdict(plan: Plan, options: ApplyOptions, snapshot: Snapshot | None = None) -> list[str]:
    """Would apply refuse this plan, and why (the guards of a nightly run; [] = it would go on)."""
    out = [v for v in [plan_age_violation(plan.created_at, options.now(), options.max_plan_age)] if v]
    out += guard_violations(
        plan_figures(plan.rows),
        max_changes=options.max_changes,
        max_decreases=options.max_decreases,
        allow_clear=options.allow_clear,
    )
    if snapshot is not None:
        out += [v for v in [coverage_violation(*_coverage(plan.rows, snapshot), options.min_coverage)] if v]
    return out


def plan(
    paths: Sequence[str | Path],
    settings: Settings,
    client: Any,
    *,
    class_key: str | None = None,
    sheet: str | None = None,
    mapping: ColumnMap | None = None,
    state_dir: str | Path | None = None,
    limits: Limits | None = None,
    listener: Listener = _quiet,
    report_dir: Path | None = None,
    reuse: Reused | None = None,
) -> PlanResult:
    """Read, resolve and plan (with the Map page's ``mapping``); guards evaluated, nothing written.

    ``reuse``: what a recent ``inspect`` of the same files read; used when it holds everything this
    mapping needs (see :meth:`Reused.fits`), so a preview does not read the files and Teams twice."""
    limits = limits or Limits()
    mapping = mapping or {}
    if reuse is not None and reuse.fits(mapping):
        read, snapshot = reuse.read, reuse.snapshot
        frame = _apply_mapping(read.frame, mapping)
    else:
        listener(Event("stage", "read"))
        read = read_inputs(list(paths), settings, class_key=class_key, sheet=sheet)
        frame = _apply_mapping(read.frame, mapping)
        listener(Event("stage", "resolve"))
        snapshot = resolve(frame, settings, client, progress=_progress(listener, "resolve"))
    memory = load_memory(state_dir, snapshot.submissions["submission_id"].tolist())
    listener(Event("stage", "plan"))
    made = build_plan(
        frame,
        snapshot,
        settings,
        created_at=utc_now(),
        graph_base_url=settings.graph.base_url,
        inputs=read.inputs,
        memory=memory,
    )
    made.warnings = list(read.warnings)
    listener(Event("stage", "guards"))
    verdict = guard_verdict(made, limits.options, snapshot)
    digest = plan_digest(made)
    members = snapshot.members
    sis = members["sis_id"].where(
        members["sis_id"].notna() & (members["sis_id"] != ""), members["external_id"]
    )
    sis_ids = {
        str(u): str(s) for u, s in zip(members["user_id"], sis, strict=True) if isinstance(s, str) and s
    }
    summary = summarise(made, kind="plan", guard_verdict=verdict, digest=digest)
    result = PlanResult(made, summary, verdict, digest, list(made.warnings), sis_ids=sis_ids)
    if report_dir is not None:
        result.report_paths = write_reports(
            made.rows, summary, report_dir, roster_gaps=with_sis_ids(made.roster_gaps, sis_ids), kind="plan"
        )
    return result


def with_sis_ids(gaps: list[dict[str, Any]], sis_ids: Mapping[str, str]) -> list[dict[str, Any]]:
    return [{**g, "sis_id": sis_ids.get(str(g.get("user_id")), "")} for g in gaps]


def summarise(
    plan_: Plan,
    *,
    kind: str,
    guard_verdict: list[str],
    digest: str,
    rows: pd.DataFrame | None = None,
    graph_stats: Mapping[str, Any] | None = None,
    elapsed_seconds: float | None = None,
    dry_run: bool = True,
) -> RunSummary:
    stats = dict(graph_stats or {})
    return RunSummary.from_rows(
        plan_.rows if rows is None else rows,
        kind=kind,  # type: ignore[arg-type]
        inputs=plan_.inputs,
        graph_base_url=plan_.graph_base_url,
        created_at=plan_.created_at if kind == "plan" else utc_now(),
        graph_stats=stats,
        elapsed_seconds=elapsed_seconds,
        retries=int(stats.get("retries", 0)),
        throttled=int(stats.get("throttled", 0)),
        dry_run=dry_run,
        warnings=list(plan_.warnings),
        guard_verdict=list(guard_verdict),
        digest=digest,
    )


def save_plan(result: PlanResult, path: Path) -> None:
    write_plan(result.plan, path)


def load_plan(path: Path) -> Plan:
    return read_plan(path)


# --- apply (the Apply and Result pages) ---------------------------------------------------------
@dataclass(slots=True)
class RunResult:
    """Contract 9's ``RunResult`` (what the Result page shows)."""

    kind: str
    plan: Plan
    rows: pd.DataFrame | None
    summary: RunSummary | None
    digest: str
    guard_verdict: list[str]
    warnings: list[str]
    error: GradesyncError | None
    report_paths: dict[str, Path]
    run_dir: Path | None = None
    exit_code_value: int | None = None

    @property
    def exit_code(self) -> int:
        if self.exit_code_value is not None:
            return self.exit_code_value
        if self.error is not None:
            return int(self.error.exit_code)
        return int(ExitCode.OK)


def apply(
    plan_: Plan,
    settings: Settings,
    client: Any,
    *,
    approved_digest: str | None,
    approved_by: str | None,
    state_dir: str | Path,
    limits: Limits | None = None,
    listener: Listener = _quiet,
    sis_ids: Mapping[str, str] | None = None,
    on_run_dir: Callable[[Path], None] | None = None,
) -> RunResult:
    """Apply an approved plan as a nightly run does: lock, run directory, guards, journal, reports.

    Refused (a GuardError, exit 4, ``plan-digest-mismatch``) unless ``approved_digest`` is this plan's
    digest now. Raises LockError (exit 5) when another run holds the state directory's lock."""
    limits = limits or Limits()
    digest = plan_digest(plan_)
    if not approved_digest or approved_digest != digest:
        raise GuardError(
            f"the plan's digest is {digest}, but the approval was for {approved_digest or 'nothing'}",
            code="plan-digest-mismatch",
            hint="preview the file again and approve what you see",
        )
    kw: dict[str, Any] = {"state_dir": str(state_dir), "report_dir": None}
    argv = ["gradesync", "serve", "apply", f"--digest={digest}"]
    with unattended_run("web-apply", kw, settings, argv=argv) as run:
        run.write_record(approved_by=approved_by or "", digest=digest)
        if on_run_dir is not None:
            on_run_dir(run.run_dir)
        write_plan(plan_, run.run_dir / "plan.json")
        run.plan_path = run.run_dir / "plan.json"
        listener(Event("stage", "execute"))  # apply_plan runs the nightly guards itself
        with (
            Journal.in_dir(state_dir) as journal,
            Memory.in_dir(state_dir, graph_base_url=plan_.graph_base_url) as memory,
        ):
            done = apply_plan(
                plan_,
                client,
                journal=journal,
                options=limits.options,
                progress=run.progress(_progress(listener, "execute")),
                memory=memory,
            )
        listener(Event("stage", "report"))
        summary = summarise(
            plan_,
            kind="reconciliation",
            guard_verdict=[],
            digest=digest,
            rows=done.rows,
            graph_stats=done.graph_stats,
            elapsed_seconds=done.elapsed_seconds,
            dry_run=done.dry_run,
        )
        paths = write_reports(
            done.rows,
            summary,
            Path(kw["report_dir"]),
            roster_gaps=with_sis_ids(plan_.roster_gaps, sis_ids or {}),
            kind="reconciliation",
        )
        code = int(done.exit_code)
        result = RunResult(
            kind="apply",
            plan=plan_,
            rows=done.rows,
            summary=summary,
            digest=digest,
            guard_verdict=[],
            warnings=list(done.notes),
            error=None,
            report_paths=paths,
            run_dir=run.run_dir,
            exit_code_value=code,
        )
    if code != ExitCode.OK:  # unattended_run records 0 for a run that raised nothing
        run.write_record(exit_code=code)
    listener(Event("done", "report", message=f"exit {code}"))
    return result
