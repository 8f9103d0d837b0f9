"""The state database of three-way sync: what gradesync last wrote to each points outcome, and
which submissions it excused.

SQLite (WAL) in the state directory, next to the journal: ``<state-dir>/memory.sqlite``. One row
per submission gradesync has written a grade to, and one per submission it excused::

    written(submission_id PK, class_id, assignment_id, outcome_id, points, written_at, graph_base_url)
    excused(submission_id PK, excused_at)

Excusing is asynchronous in Graph: for a while after it, a read may still show the submission's
old status. The plan uses ``excused_at`` so that such an excuse is never sent a second time.

``points`` NULL means gradesync cleared the grade. The executor calls :meth:`Memory.remember` for
every successful write (update, create, clear) — just before the journal records it as final, so a
run killed in between never leaves a written grade unremembered — and for grades found already
agreeing with the gradebook (the new common base). At plan time :meth:`Memory.frame` hands the
remembered values of the submissions the snapshot holds to the pure planner
(``models.MEMORY_COLUMNS``): a grade in Teams that differs from the remembered one was changed by
a teacher since (``teacher_override``).

The planner never sees this module: I/O stays here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from gradesync.models import MEMORY_COLUMNS, empty_frame
from gradesync.state.storage import guarded, open_db, transaction

__all__ = [
    "MEMORY_NAME",
    "Memory",
    "Written",
    "load_memory",
]

MEMORY_NAME = "memory.sqlite"
_CHUNK = 900  # SQLite's default limit of host parameters is 999

_SCHEMA = """
CREATE TABLE IF NOT EXISTS written (
    submission_id TEXT PRIMARY KEY,
    class_id TEXT,
    assignment_id TEXT,
    outcome_id TEXT,
    points REAL,
    written_at TEXT NOT NULL,
    graph_base_url TEXT
);
CREATE TABLE IF NOT EXISTS excused (
    submission_id TEXT PRIMARY KEY,
    excused_at TEXT NOT NULL
);
"""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Written:
    """One grade gradesync wrote (or found agreeing with the gradebook)."""

    submission_id: str
    class_id: str | None
    assignment_id: str | None
    outcome_id: str | None
    points: float | None  # None: cleared


class Memory:
    """``<state-dir>/memory.sqlite``; safe to share between plans and runs (keyed by submission)."""

    def __init__(self, path: str | Path, *, graph_base_url: str = "") -> None:
        self.path = Path(path)
        self.graph_base_url = graph_base_url
        self._db = open_db(self.path, "memory", _SCHEMA)

    @classmethod
    def in_dir(cls, state_dir: str | Path, *, graph_base_url: str = "") -> Memory:
        return cls(Path(state_dir) / MEMORY_NAME, graph_base_url=graph_base_url)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def remember(self, items: Iterable[Written], *, at: str | None = None) -> int:
        """Record ``items`` as the last value gradesync wrote (one transaction); returns how many."""
        when = at or _now()
        rows = [
            (
                w.submission_id,
                w.class_id,
                w.assignment_id,
                w.outcome_id,
                None if w.points is None or math.isnan(w.points) else float(w.points),
                when,
                self.graph_base_url,
            )
            for w in items
        ]
        if not rows:
            return 0
        with transaction(self._db, self.path, "memory") as db:
            db.executemany(
                "INSERT INTO written(submission_id, class_id, assignment_id, outcome_id, points, written_at, "
                "graph_base_url) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(submission_id) DO UPDATE SET "
                "class_id = excluded.class_id, assignment_id = excluded.assignment_id, "
                "outcome_id = COALESCE(excluded.outcome_id, outcome_id), points = excluded.points, "
                "written_at = excluded.written_at, graph_base_url = excluded.graph_base_url",
                rows,
            )
        return len(rows)

    def remember_excused(self, submission_ids: Iterable[str], *, at: str | None = None) -> int:
        """Record that gradesync excused ``submission_ids`` (one transaction); returns how many."""
        when = at or _now()
        rows = [(str(sid), when) for sid in submission_ids]
        if not rows:
            return 0
        with transaction(self._db, self.path, "memory") as db:
            db.executemany(
                "INSERT INTO excused(submission_id, excused_at) VALUES (?, ?) "
                "ON CONFLICT(submission_id) DO UPDATE SET excused_at = excluded.excused_at",
                rows,
            )
        return len(rows)

    def _select(self, sql: str, ids: list[str]) -> list[tuple[object, ...]]:
        """``sql`` (with ``{marks}`` for the ids' placeholders) over ``ids``, chunk by chunk."""
        found: list[tuple[object, ...]] = []
        for i in range(0, len(ids), _CHUNK):
            chunk = ids[i : i + _CHUNK]
            with guarded(self.path, "memory"):
                found += self._db.execute(sql.format(marks=",".join("?" * len(chunk))), chunk).fetchall()
        return found

    def frame(self, submission_ids: Iterable[str | None]) -> pd.DataFrame:
        """The remembered values of ``submission_ids`` (``MEMORY_COLUMNS``; unknown ids are absent)."""
        ids = sorted({str(s) for s in submission_ids if isinstance(s, str) and s})
        written = self._select(
            "SELECT submission_id, points, written_at FROM written WHERE submission_id IN ({marks})", ids
        )
        excused: dict[object, object] = {}
        if ids and self._any_excused():
            sql = "SELECT submission_id, excused_at FROM excused WHERE submission_id IN ({marks})"
            excused = dict(self._select(sql, ids))  # type: ignore[arg-type]
        if not written and not excused:
            return empty_frame(MEMORY_COLUMNS)
        seen = {w[0] for w in written}
        only_excused = [sid for sid in excused if sid not in seen]
        rows = [*written, *((sid, None, None) for sid in only_excused)]
        return pd.DataFrame(
            {
                "submission_id": pd.Series([r[0] for r in rows], dtype=object),
                "last_written_points": pd.Series(
                    [math.nan if r[1] is None else r[1] for r in rows], dtype="float64"
                ),
                "last_written_at": pd.Series([r[2] for r in rows], dtype=object),
                "excused_at": pd.Series([excused.get(r[0]) for r in rows], dtype=object),
            }
        )

    def _any_excused(self) -> bool:
        """Whether any excuse is remembered (most state directories have none: no second query)."""
        with guarded(self.path, "memory"):
            return self._db.execute("SELECT 1 FROM excused LIMIT 1").fetchone() is not None

    def get(self, submission_id: str) -> dict[str, object] | None:
        """One remembered row (for tests and diagnostics)."""
        row = self._db.execute(
            "SELECT submission_id, class_id, assignment_id, outcome_id, points, written_at FROM written "
            "WHERE submission_id = ?",
            (submission_id,),
        ).fetchone()
        if row is None:
            return None
        names = ("submission_id", "class_id", "assignment_id", "outcome_id", "points", "written_at")
        return dict(zip(names, row, strict=True))


def load_memory(state_dir: str | Path | None, submission_ids: Iterable[str | None]) -> pd.DataFrame | None:
    """What the state directory remembers for ``submission_ids``; ``None`` when there is no state dir
    or no memory file yet (a first run: nothing is created by merely planning)."""
    if state_dir is None:
        return None
    path = Path(state_dir) / MEMORY_NAME
    if not path.exists():
        return None
    with Memory(path) as memory:
        return memory.frame(submission_ids)
