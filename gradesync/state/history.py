"""The runs a state keeps, read back: find a run by its id or directory, read its ``run.json``, find
the runs that undid it, and turn the journal's records of its plan into the undo's columns.

A run directory (``state/runs.py``) is named by its run id (``20250131T020000123Z-3f9a1c``) and
holds ``run.json``; ``gradesync undo RUN`` accepts that id (looked up in the runs directory) or the
directory's path. Nothing here writes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from gradesync.errors import InputError, UsageError
from gradesync.models import JOURNAL_COLUMNS
from gradesync.state.journal import OpRecord
from gradesync.state.runs import PLAN_NAME, RUN_JSON, is_run_dir, list_runs

__all__ = ["find_run", "read_run_record", "records_frame", "run_plan_path", "runs_undoing"]


def find_run(ref: str | Path, runs_dir: str | Path) -> Path:
    """The run directory ``ref`` names: a run id in ``runs_dir`` (looked up there first), or a run
    directory's path."""
    given = Path(ref)
    for candidate in (Path(runs_dir) / given.name, given) if given.name == str(ref) else (given,):
        if candidate.is_dir() and is_run_dir(candidate):
            return candidate
    if given.is_dir():
        raise UsageError(
            f"{given} is not a run directory (it has no run.json, or its name is not a run id)",
            code="run-not-found",
            hint="give a run id as listed in the runs directory, or the path of a run directory",
        )
    known = [p.name for p in list_runs(runs_dir)][-5:]
    raise UsageError(
        f"no run {str(ref)!r} in {runs_dir}",
        code="run-not-found",
        hint=("the newest runs there: " + ", ".join(reversed(known)))
        if known
        else "give --runs-dir (or [run] runs_dir) where the run's directory is, or its path",
    )


def read_run_record(run_dir: Path) -> dict[str, Any]:
    """The run's ``run.json``; ``InputError`` (exit 2) when it cannot be read as JSON."""
    path = run_dir / RUN_JSON
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(
            f"cannot read the run's record: {e}", file=str(path), code="run-record-unreadable"
        ) from None
    if not isinstance(record, dict):
        raise InputError(
            "the run's record is not a JSON object", file=str(path), code="run-record-unreadable"
        )
    return record


def run_plan_path(run_dir: Path, record: dict[str, Any]) -> Path:
    """The plan the run applied: the one ``run.json`` names (a sync with ``--report-dir`` keeps it
    there), else ``plan.json`` in the run directory."""
    named = record.get("plan")
    return Path(named) if isinstance(named, str) and named else run_dir / PLAN_NAME


def runs_undoing(runs_dir: str | Path, run_id: str) -> list[str]:
    """The ids of the runs in ``runs_dir`` that undid ``run_id``: their ``run.json`` says ``undo_of``
    it and they put grades back (not a dry run, not one the guards refused)."""
    found = []
    for path in list_runs(runs_dir):
        try:
            record = json.loads((path / RUN_JSON).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue  # an unreadable record of another run does not stop this one
        if not isinstance(record, dict) or record.get("undo_of") != run_id or record.get("dry_run"):
            continue
        counts = record.get("status_counts")
        if isinstance(counts, dict) and int(counts.get("updated") or 0) > 0:
            found.append(path.name)
    return found


def records_frame(records: dict[int, OpRecord]) -> pd.DataFrame:
    """The journal's records of one plan as ``models.JOURNAL_COLUMNS``."""
    ordered = [records[k] for k in sorted(records)]
    values = [(r.row_key, str(r.status), r.outcome_id, r.after_points, r.message or "") for r in ordered]
    return pd.DataFrame(values, columns=list(JOURNAL_COLUMNS)).astype(JOURNAL_COLUMNS)
