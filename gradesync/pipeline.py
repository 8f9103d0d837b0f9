"""The pipeline object: read → resolve → plan, in order. Each stage is its own module."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from gradesync.config import Settings
from gradesync.graph import GraphClient
from gradesync.models import Plan
from gradesync.plan import build_plan
from gradesync.read import read_inputs
from gradesync.resolve import Progress, resolve


def utc_now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def make_plan(
    paths: Sequence[str | Path],
    settings: Settings,
    client: GraphClient,
    *,
    class_key: str | None = None,
    sheet: str | None = None,
    progress: Progress | None = None,
    created_at: str | None = None,
    state_dir: str | Path | None = None,
) -> Plan:
    """Read the inputs, resolve them against Graph and plan; read warnings travel in ``plan.warnings``.

    ``state_dir``: where the state database (``memory.sqlite``) remembers what gradesync last wrote;
    its values for the snapshot's submissions drive three-way sync (``teacher_override``). ``None``, or
    no database yet: every difference is an ordinary change.
    """
    from gradesync.state.memory import load_memory

    read = read_inputs(list(paths), settings, class_key=class_key, sheet=sheet)
    snapshot = resolve(read.frame, settings, client, progress=progress)
    memory = load_memory(state_dir, snapshot.submissions["submission_id"].tolist())
    plan = build_plan(
        read.frame,
        snapshot,
        settings,
        created_at=created_at or utc_now(),
        graph_base_url=settings.graph.base_url,
        inputs=read.inputs,
        memory=memory,
    )
    plan.warnings = list(read.warnings)
    return plan
