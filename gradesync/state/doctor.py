"""What the last ``gradesync doctor`` found, kept in the state directory: ``<state-dir>/doctor.json``.

``gradesync doctor`` checks, against the configured tenant, each assumption gradesync makes of Graph
(``gradesync.doctor``) and records its result here. ``sync`` and ``apply`` read it before they start:
when a check marked critical failed last time against the same Graph, they refuse to run
(``doctor-check-failed``, exit 4) until a doctor run passes or ``--ignore-doctor`` says otherwise. A
state directory with no record (doctor never run) refuses nothing.

The file is written whole to a temporary name and renamed (a crash leaves the old record or the
new one, never half of one); a record that cannot be read is reported, not trusted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gradesync.errors import storage_error

__all__ = ["DOCTOR_NAME", "critical_failures", "read_record", "write_record"]

DOCTOR_NAME = "doctor.json"


def write_record(state_dir: str | Path, record: dict[str, Any]) -> Path:
    """Write ``record`` (``gradesync.doctor.DoctorReport.asdict()``) as the state directory's last."""
    directory = Path(state_dir)
    target = directory / DOCTOR_NAME
    try:
        directory.mkdir(parents=True, exist_ok=True)
        temporary = target.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        temporary.replace(target)
    except OSError as e:
        raise storage_error(e, "state directory (doctor record)", target) from e
    return target


def read_record(state_dir: str | Path) -> dict[str, Any] | None:
    """The last record, or None when doctor was never run here (or the record is unreadable:
    then ``{"unreadable": "<why>"}``, so a caller can say so instead of trusting it)."""
    path = Path(state_dir) / DOCTOR_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as e:
        return {"unreadable": f"{path}: {e.strerror or e}"}
    try:
        record = json.loads(text)
    except ValueError as e:
        return {"unreadable": f"{path}: not JSON ({e})"}
    return record if isinstance(record, dict) else {"unreadable": f"{path}: not a doctor record"}


def critical_failures(state_dir: str | Path, graph_base_url: str) -> list[dict[str, Any]]:
    """The critical checks that failed in the last doctor run against ``graph_base_url`` ([] when
    none failed, doctor never ran here, or it ran against another Graph)."""
    record = read_record(state_dir)
    if not record or "unreadable" in record:
        return []
    if str(record.get("graph_base_url", "")).rstrip("/") != graph_base_url.rstrip("/"):
        return []
    checks = record.get("checks")
    if not isinstance(checks, list):
        return []
    return [c for c in checks if isinstance(c, dict) and c.get("critical") and c.get("result") == "fail"]
