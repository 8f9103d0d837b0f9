"""A run's files as a web user may download them: nothing about the server in them.

``run.json`` on the operator's machine records where everything is (the run and state directories,
the lock, the journal, the log), which process ran it and on which host. The web app serves the same
files to every signed-in user, who has no business knowing any of that. These functions give the
public form:

- :func:`public_record` — ``run.json`` with the run's id, command, times, exit code, error, approver,
  digest, verdict and counts; report files by their names only; no paths, pid, host or command line.
- :func:`public_summary` — ``summary.json`` with each input named by its file name, not its path.
- :func:`strip_dirs` — text (``reconciliation.csv``, ``report.html``, a message) with the folders of a
  run's inputs removed, so ``/srv/sis/export/grades.csv`` reads ``grades.csv``. A web run names its
  uploads by their uploaded names from the start (``Pipeline(names=...)``); a nightly run's files name
  what cron was given, and are served through this.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

__all__ = ["input_dirs", "public_record", "public_summary", "strip_dirs"]

_RECORD_KEYS = (
    "run_id",
    "command",
    "kind",
    "gradesync_version",
    "started_at",
    "finished_at",
    "status",
    "exit_code",
    "error",
    "approved_by",
    "digest",
    "guard_verdict",
    "status_counts",
)
_HOLDER = re.compile(r"\s*\(?pid=\d+ host=\S+ started=\S+\)?")


def _name(path: object) -> str:
    text = str(path or "")
    if "\\" in text and "/" not in text:
        return PureWindowsPath(text).name
    return PurePosixPath(text).name


def input_dirs(summary: Mapping[str, Any]) -> list[str]:
    """The folders (with their trailing separator) of a run's inputs, longest first."""
    dirs = set()
    for item in summary.get("inputs") or []:
        path = str((item or {}).get("path", "")) if isinstance(item, dict) else ""
        path = path.split("!", 1)[0]  # a bundle's member: PATH!results.csv
        for sep in ("/", "\\"):
            if sep in path:
                dirs.add(path.rsplit(sep, 1)[0] + sep)
    return sorted(dirs, key=len, reverse=True)


def strip_dirs(text: str, dirs: Iterable[str]) -> str:
    """``text`` with each of ``dirs`` (a folder and its separator) removed, and a lock holder's pid,
    host and start time left out."""
    for d in dirs:
        if d:
            text = text.replace(d, "")
    return _HOLDER.sub("", text)


def _public_error(error: Any, dirs: list[str]) -> Any:
    if not isinstance(error, dict):
        return error
    return {
        k: strip_dirs(v, dirs) if isinstance(v, str) else v
        for k, v in error.items()
        if k in ("code", "message", "hint")
    }


def public_record(record: Mapping[str, Any], dirs: Iterable[str] = ()) -> dict[str, Any]:
    """``run.json`` without server details (see the module's docstring)."""
    hidden = [
        *dirs,
        *(str(record.get(k) or "") + "/" for k in ("run_dir", "report_dir", "state_dir") if record.get(k)),
    ]
    out = {k: record[k] for k in _RECORD_KEYS if k in record}
    if "error" in out:
        out["error"] = _public_error(out["error"], hidden)
    reports = record.get("reports")
    if isinstance(reports, dict):
        out["reports"] = sorted(_name(p) for p in reports.values())
    if record.get("plan"):
        out["plan"] = _name(record["plan"])
    return out


def public_summary(summary: Mapping[str, Any]) -> dict[str, Any]:
    """``summary.json`` with each input named by its file name (a bundle's member after its bundle)."""
    dirs = input_dirs(summary)
    out = dict(summary)
    inputs = []
    for item in summary.get("inputs") or []:
        named = (
            {**item, "path": strip_dirs(str(item.get("path", "")), dirs)} if isinstance(item, dict) else item
        )
        inputs.append(named)
    out["inputs"] = inputs
    out["warnings"] = [strip_dirs(str(w), dirs) for w in summary.get("warnings") or []]
    return out
