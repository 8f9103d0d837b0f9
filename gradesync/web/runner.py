"""The web app's one door into ``gradesync.pipeline`` (contract 9): nothing in ``gradesync/web`` wires
a stage itself.

- Map page: :func:`inspect` is ``Pipeline.inspect(..., teams=True)`` — read's ``Inspection`` (preset,
  header row, each column's role and assignment, ignored rows, diagnoses) with "did you mean" against
  the classes and assignments Teams holds.
- The registrar's choices on that page (a wide file's assignment column → another assignment, or
  ignored) become read's :class:`~gradesync.read.mapping.Mapping` (:func:`mapping_from`): the mapping
  in effect for the file (its preset's, or what the generic reading understood) with
  ``[columns] assignments`` / ``ignore`` added. An ignored column is not read at all, as a mapping
  file's ``ignore`` would do.
- Preview: :func:`plan` is ``Pipeline.plan(..., mapping=...)``: the digest (``plan/digest.py``) and the
  guards' verdict come with its ``PlanResult``.
- Apply: :func:`apply` is ``Pipeline.apply(plan, approved_digest=..., approved_by=...)``: the state
  directory's lock, a run directory with ``run.json`` (``approved_by``, the digest, the exit code),
  the journal and memory, the guards and the reports — the same as a nightly ``gradesync sync``.

The state directory is the web app's (``WebConfig.state_dir``): :func:`settings_for` puts it into
``[apply] state_dir`` so that one lock, one journal and one history serve both front ends.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping as MappingOf
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gradesync.config import Settings
from gradesync.errors import UsageError
from gradesync.models import Plan
from gradesync.pipeline import Event, Listener, Pipeline, PlanResult, RunResult
from gradesync.plan.digest import short_digest
from gradesync.plan.planfile import read_plan, write_plan
from gradesync.read.inspect import Inspection
from gradesync.read.mapping import Mapping

__all__ = [
    "IGNORE",
    "Event",
    "Inspection",
    "PlanResult",
    "RunResult",
    "apply",
    "inspect",
    "load_plan",
    "mapping_from",
    "plan",
    "save_plan",
    "settings_for",
    "short_digest",
]

IGNORE = ""  # the Map page's "ignore this column" choice


def settings_for(settings: Settings, state_dir: str | Path) -> Settings:
    """``settings`` with the web app's state directory as ``[apply] state_dir``."""
    return settings.override("apply", state_dir=str(state_dir))


def inspect(
    paths: Sequence[str | Path],
    settings: Settings,
    client: Any,
    *,
    class_key: str | None = None,
    listener: Listener | None = None,
) -> Inspection:
    """How the files are understood, checked against Teams; nothing planned, nothing written."""
    return Pipeline(settings, client, listener=listener).inspect(list(paths), class_key=class_key, teams=True)


def mappable(inspection: Inspection) -> bool:
    """The Map page offers column choices only when one mapping fits every file (read applies one
    ``mapping=`` to all of them) and the files are wide (a long file's assignments are values, not
    columns: a mapping cannot retarget them)."""
    files = inspection.files
    one_format = len({f.mapping_toml for f in files}) == 1
    return bool(files) and one_format and all(f.layout == "wide" for f in files)


def mapping_from(inspection: Inspection, choices: MappingOf[str, str]) -> Mapping | None:
    """The Map page's choices (column header → assignment, or :data:`IGNORE`) as read's ``Mapping``,
    built on the mapping in effect for the files; None when nothing differs from how they were read."""
    columns = {c.header: c for f in inspection.files for c in f.columns if c.role == "assignment"}
    changed = {h: t for h, t in choices.items() if h in columns and t != columns[h].assignment}
    if not changed:
        return None
    if not mappable(inspection):
        raise UsageError(
            "these files cannot share one column mapping (a long file, or files of different formats)",
            code="web-mapping-unsupported",
            hint="upload one file at a time, or give a mapping file beside the export",
        )
    base = Mapping.model_validate(tomllib.loads(inspection.files[0].mapping_toml))
    ignore = [*base.columns.ignore, *(h for h, t in changed.items() if t == IGNORE)]
    assignments = {**base.columns.assignments, **{h: t for h, t in changed.items() if t != IGNORE}}
    rules = base.columns.model_copy(update={"ignore": ignore, "assignments": assignments})
    return base.model_copy(update={"columns": rules})


def plan(
    paths: Sequence[str | Path],
    settings: Settings,
    client: Any,
    *,
    class_key: str | None = None,
    mapping: Mapping | None = None,
    listener: Listener | None = None,
) -> PlanResult:
    """Read, resolve, plan and evaluate the guards (the preview); nothing written."""
    pipeline = Pipeline(settings, client, listener=listener)
    return pipeline.plan(list(paths), class_key=class_key, mapping=mapping)


def apply(
    plan_: Plan,
    settings: Settings,
    client: Any,
    *,
    approved_digest: str,
    approved_by: str,
    plan_file: Path | None = None,
    listener: Listener | None = None,
) -> RunResult:
    """Apply the approved plan as a nightly run does; refused (exit 4, ``plan-digest-mismatch``) unless
    its rows still give ``approved_digest``; exit 5 when another run holds the lock. Never raises a
    GradesyncError: it is ``RunResult.error``."""
    argv = ["gradesync", "serve", "apply", f"--digest={approved_digest}"]
    return Pipeline(settings, client, listener=listener, argv=argv).apply(
        plan_, approved_digest=approved_digest, approved_by=approved_by, plan_file=plan_file
    )


def save_plan(result: PlanResult, path: Path) -> None:
    write_plan(result.plan, path, digest=result.digest, key_id=result.key_id, columns=result.columns)
    result.columns = None  # written: the plan's encoded columns need not stay in memory


def load_plan(path: Path) -> Plan:
    return read_plan(path)
