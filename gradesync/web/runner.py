"""The web app's one door into ``gradesync.pipeline``: nothing in ``gradesync/web`` wires a stage itself.

- Map page: :func:`inspect` is ``Pipeline.inspect(..., teams=True)`` — read's ``Inspection`` (preset,
  header row, each column's role and assignment, the class values, ignored rows, diagnoses) with "did
  you mean" against Teams; :func:`classes` lists the tenant's classes for the class chooser.
- The registrar's choices on that page become each file's mapping (:func:`mapping_for`): the mapping
  the file was read with, plus ``[class]`` (one class for the whole file, or a ``[class.values]``
  table from each class value to the Teams class chosen for it) and ``[columns] assignments`` /
  ``ignore``. The web app writes it beside the stored file, where the pipeline's reader finds it.
- Preview: :func:`plan` is ``Pipeline.plan``: the digest and the guards' verdict come with its
  ``PlanResult``; :func:`preview_of` is the same preview of a plan file already made (after a restart).
- Apply: :func:`apply` is ``Pipeline.apply(plan, approved_digest=..., approved_by=...)``: the state
  directory's lock, a run directory with ``run.json``, the journal and memory, the guards and the
  reports — the same as a nightly ``gradesync sync``; ``resume`` finishes an interrupted or carried-over
  run of the same plan, ``publish`` is ``--return``.
- Undo: :func:`undo` is ``Pipeline.undo(run)``: a plan that puts back what a run changed, previewed and
  approved like any other.

Every call names the uploaded files by the names the registrar gave them (``names``), so nothing the
pipeline writes or raises carries the server's paths.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping as MappingOf
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gradesync.config import Settings
from gradesync.models import Plan, TeamsClass
from gradesync.pipeline import Event, Listener, Pipeline, PlanResult, RunResult
from gradesync.plan.digest import short_digest
from gradesync.plan.planfile import read_plan, write_plan
from gradesync.read.inspect import FileInspection, Inspection
from gradesync.read.mapping import Mapping

__all__ = [
    "IGNORE",
    "Event",
    "Inspection",
    "PlanResult",
    "RunResult",
    "apply",
    "can_undo",
    "classes",
    "inspect",
    "load_plan",
    "mapping_for",
    "plan",
    "preview_of",
    "save_plan",
    "settings_for",
    "short_digest",
    "teachers",
    "undo",
]

IGNORE = ""  # the Map page's "ignore this column" choice


def settings_for(settings: Settings, state_dir: str | Path) -> Settings:
    """``settings`` for the web app: its state directory as ``[apply] state_dir``; uploads read by what
    they are and the mapping beside each (never the nightly run's ``[input] mapping`` or ``class_key``);
    parsed in a separate process with limits (``[input] isolate``), so no file can take the server down."""
    settings = settings.override("apply", state_dir=str(state_dir))
    cleared = settings.input.model_copy(update={"mapping": "", "class_key": None, "sheet": None})
    settings = settings.model_copy(update={"input": cleared})
    return settings.override("input", isolate=True)


def with_options(settings: Settings, *, strict: bool = False, allow_clear: bool = False) -> Settings:
    """The preview's and the apply's settings with the registrar's options (``--strict``,
    ``--allow-clear``)."""
    return settings.strict(strict).override("apply", allow_clear=True if allow_clear else None)


def inspect(
    paths: Sequence[str | Path],
    settings: Settings,
    client: Any,
    *,
    names: MappingOf[str, str] | None = None,
    sheet: str | None = None,
    tenant: Sequence[TeamsClass] | None = None,
) -> Inspection:
    """How the files are understood, checked against Teams; nothing planned, nothing written."""
    return Pipeline(settings, client, names=names).inspect(
        list(paths), sheet=sheet, teams=True, classes=tenant
    )


def classes(settings: Settings, client: Any) -> list[TeamsClass]:
    return Pipeline(settings, client).classes()


def teachers(settings: Settings, client: Any, class_ids: Sequence[str]) -> dict[str, tuple[str, ...]]:
    return Pipeline(settings, client).teachers(class_ids)


def mapping_for(
    base_toml: str,
    *,
    columns: MappingOf[str, str] | None = None,
    class_column: str = "",
    class_values: MappingOf[str, str] | None = None,
    class_key: str = "",
) -> Mapping:
    """A file's mapping with the Map page's choices: ``columns`` (header → assignment, or
    :data:`IGNORE`), the whole file's ``class_key``, or ``class_values`` (a class value of the file →
    Teams class key), read from ``class_column`` when the file's rows carry no class of their own."""
    base = Mapping.model_validate(tomllib.loads(base_toml))
    update: dict[str, Any] = {}
    if columns:
        ignore = [*base.columns.ignore, *(h for h, t in columns.items() if t == IGNORE)]
        assignments = {**base.columns.assignments, **{h: t for h, t in columns.items() if t != IGNORE}}
        update["columns"] = base.columns.model_copy(update={"ignore": ignore, "assignments": assignments})
    if class_key:
        update["class_"] = base.class_.model_copy(
            update={"key": class_key, "column": None, "template": None, "values": {}}
        )
    elif class_column or class_values:
        rule: dict[str, Any] = {"values": {**base.class_.values, **(class_values or {})}}
        if class_column:
            rule.update(column=class_column, template=None, key=None)
        update["class_"] = base.class_.model_copy(update=rule)
    # validated again as a whole: a file the registrar cannot write must not be written by the page
    return Mapping.model_validate(base.model_copy(update=update).model_dump(by_alias=True))


def plan(
    paths: Sequence[str | Path],
    settings: Settings,
    client: Any,
    *,
    names: MappingOf[str, str] | None = None,
    sheet: str | None = None,
    listener: Listener | None = None,
) -> PlanResult:
    """Read, resolve, plan and evaluate the guards (the preview); nothing written."""
    return Pipeline(settings, client, listener=listener, names=names).plan(list(paths), sheet=sheet)


def preview_of(plan_: Plan, settings: Settings, client: Any) -> PlanResult:
    """The preview of a plan already made (its verdict now, its digest, its summary); Graph is not read."""
    return Pipeline(settings, client).preview(plan_)


def apply(
    plan_: Plan,
    settings: Settings,
    client: Any,
    *,
    approved_digest: str,
    approved_by: str,
    plan_file: Path | None = None,
    listener: Listener | None = None,
    resume: bool = False,
    publish: bool = False,
) -> RunResult:
    """Apply the approved plan as a nightly run does; refused (exit 4, ``plan-digest-mismatch``) unless
    its rows still give ``approved_digest``; exit 5 when another run holds the lock. ``resume``
    finishes an earlier run of the same plan (``apply --resume``); ``publish`` returns the written
    grades to the students (``--return``). Never raises a GradesyncError: it is ``RunResult.error``."""
    argv = ["gradesync", "serve", "apply", f"--digest={approved_digest}"]
    argv += ["--resume"] if resume else []
    argv += ["--return"] if publish else []
    return Pipeline(settings, client, listener=listener, argv=argv).apply(
        plan_,
        approved_digest=approved_digest,
        approved_by=approved_by,
        plan_file=plan_file,
        resume=resume,
        publish=publish,
    )


def can_undo() -> bool:
    """Whether this gradesync has ``Pipeline.undo`` (a plan that puts back what a run changed)."""
    return callable(getattr(Pipeline, "undo", None))


def undo(run_dir: Path, settings: Settings, client: Any, *, listener: Listener | None = None) -> PlanResult:
    """The preview of undoing the run in ``run_dir``: from the journal's before-values, a plan that puts
    back what it changed (a grade changed in Teams since is left alone, and said so)."""
    result: PlanResult = Pipeline(settings, client, listener=listener).undo(run_dir)  # type: ignore[attr-defined]
    return result


def save_plan(result: PlanResult, path: Path) -> None:
    write_plan(result.plan, path, digest=result.digest, key_id=result.key_id, columns=result.columns)
    result.columns = None  # written: the plan's encoded columns need not stay in memory


def load_plan(path: Path) -> Plan:
    return read_plan(path)


def base_mapping(file: FileInspection) -> str:
    """The mapping a file is read with before any choice (TOML)."""
    return file.mapping_toml
