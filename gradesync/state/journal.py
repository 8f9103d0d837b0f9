"""The apply journal: SQLite (WAL) in the run's state directory.

It records, per plan (identified by ``plan_hash``), every write operation's status and every attempt.
The executor commits *before* a batch is sent (status ``sending``) and *after* (the final status),
so a process killed at any instant leaves a journal from which ``--resume`` knows, for each
operation, one of:

* ``pending``  — never sent: send it (after the stale-plan check);
* ``sending``  — maybe sent, fate unknown: re-read the target first, never resend blindly;
* ``updated`` / ``created`` / ``unchanged`` / ``excused`` / ``conflict`` / ``failed`` — final:
  report, do not touch (``failed`` only for a terminal reason: a 4xx other than 401/408/429).

A row carried over (deadline, or a transient failure: 429, 5xx, network, an expired token, a read
that could not be made) stays ``pending`` (never sent) or ``sending`` (maybe sent) with the reason
in ``message``: the report calls it ``carried_over``, and ``--resume`` (or the next sync) finishes it.

Every SQLite or disk failure leaves as a named ``StorageError`` (``storage.py``).

Tables::

    runs(plan_hash PK, plan_created_at, started_at, finished_at, state)   state: running | finished
    ops(plan_hash, row_key, action, status, attempts, outcome_id, after_points, http_status,
        request_id, message, updated_at)                                PK (plan_hash, row_key)
    attempts(id PK, plan_hash, row_key, attempt, at, status, http_status, request_id, message)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from gradesync.models import Operation
from gradesync.outcome import Status
from gradesync.state.storage import guarded, open_db, transaction

__all__ = [
    "FINAL",
    "JOURNAL_NAME",
    "PENDING",
    "SENDING",
    "Journal",
    "OpRecord",
    "Outcome",
]

JOURNAL_NAME = "journal.sqlite"

PENDING = "pending"
SENDING = "sending"
# the journal statuses that are final: a resumed run reports them and never touches them again
FINAL = frozenset(
    {Status.UPDATED, Status.CREATED, Status.UNCHANGED, Status.EXCUSED, Status.CONFLICT, Status.FAILED}
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    plan_hash TEXT PRIMARY KEY,
    plan_created_at TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    state TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ops (
    plan_hash TEXT NOT NULL,
    row_key INTEGER NOT NULL,
    action TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    outcome_id TEXT,
    after_points REAL,
    http_status INTEGER,
    request_id TEXT,
    message TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (plan_hash, row_key)
);
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    plan_hash TEXT NOT NULL,
    row_key INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    at TEXT NOT NULL,
    status TEXT NOT NULL,
    http_status INTEGER,
    request_id TEXT,
    message TEXT
);
"""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(slots=True)
class OpRecord:
    row_key: int
    action: str
    status: str
    attempts: int = 0
    outcome_id: str | None = None
    after_points: float | None = None
    http_status: int | None = None
    request_id: str | None = None
    message: str | None = None

    @property
    def final(self) -> bool:
        return self.status in FINAL


@dataclass(slots=True)
class Outcome:
    """What the executor learnt about one operation (written by ``Journal.finish``)."""

    row_key: int
    status: str
    outcome_id: str | None = None
    after_points: float | None = None
    http_status: int | None = None
    request_id: str | None = None
    message: str | None = None


class Journal:
    """One SQLite file per state directory; many plans may share it (keyed by plan hash)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._db = open_db(self.path, "journal", _SCHEMA)

    @classmethod
    def in_dir(cls, state_dir: str | Path) -> Journal:
        return cls(Path(state_dir) / JOURNAL_NAME)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return transaction(self._db, self.path, "journal")

    def _read(self, sql: str, params: tuple[object, ...]) -> list[tuple[object, ...]]:
        with guarded(self.path, "journal"):
            return self._db.execute(sql, params).fetchall()

    # --- runs ---------------------------------------------------------------------------------
    def run_state(self, plan_hash: str) -> dict[str, str | None] | None:
        found = self._read(
            "SELECT plan_created_at, started_at, finished_at, state FROM runs WHERE plan_hash = ?",
            (plan_hash,),
        )
        if not found:
            return None
        row = [None if v is None else str(v) for v in found[0]]
        return {"plan_created_at": row[0], "started_at": row[1], "finished_at": row[2], "state": row[3]}

    def start(self, plan_hash: str, plan_created_at: str, operations: Iterable[Operation]) -> None:
        """Record the run and every operation as ``pending`` (existing records are kept: resume)."""
        now = _now()
        with self._tx() as db:
            db.execute(
                "INSERT INTO runs(plan_hash, plan_created_at, started_at, state) VALUES (?, ?, ?, 'running') "
                "ON CONFLICT(plan_hash) DO UPDATE SET state = 'running', finished_at = NULL",
                (plan_hash, plan_created_at, now),
            )
            db.executemany(
                "INSERT OR IGNORE INTO ops(plan_hash, row_key, action, status, updated_at) "
                "VALUES (?, ?, ?, ?, ?)",
                [(plan_hash, op.row_key, op.action.value, PENDING, now) for op in operations],
            )

    def finish_run(self, plan_hash: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE runs SET state = 'finished', finished_at = ? WHERE plan_hash = ?", (_now(), plan_hash)
            )

    # --- operations ---------------------------------------------------------------------------
    def ops(self, plan_hash: str) -> dict[int, OpRecord]:
        found = self._read(
            "SELECT row_key, action, status, attempts, outcome_id, after_points, http_status, request_id, "
            "message FROM ops WHERE plan_hash = ?",
            (plan_hash,),
        )
        return {int(r[0]): OpRecord(*r) for r in found}  # type: ignore[arg-type, call-overload]

    def mark_sending(self, plan_hash: str, row_keys: Iterable[int]) -> None:
        """Committed before the batch leaves: from now on the ops' fate is unknown until recorded."""
        with self._tx() as db:
            _mark_sending(db, plan_hash, list(row_keys), _now())

    def record(self, plan_hash: str, outcomes: Iterable[Outcome], *, sending: Iterable[int] = ()) -> None:
        """Record what happened (final or back to ``pending``/``sending`` for another round); with
        ``sending``, those operations are then marked as :meth:`mark_sending` does — in the same
        transaction (one commit: both are durable before the next batch leaves)."""
        now = _now()
        with self._tx() as db:
            _record(db, plan_hash, list(outcomes), now)
            keys = list(sending)
            if keys:
                _mark_sending(db, plan_hash, keys, now)

    def attempts(self, plan_hash: str, row_key: int) -> list[dict[str, object]]:
        found = self._read(
            "SELECT attempt, at, status, http_status, request_id, message FROM attempts "
            "WHERE plan_hash = ? AND row_key = ? ORDER BY id",
            (plan_hash, row_key),
        )
        names = ("attempt", "at", "status", "http_status", "request_id", "message")
        return [dict(zip(names, r, strict=True)) for r in found]


def _mark_sending(db: sqlite3.Connection, plan_hash: str, keys: list[int], now: str) -> None:
    db.executemany(
        "UPDATE ops SET status = 'sending', attempts = attempts + 1, updated_at = ? "
        "WHERE plan_hash = ? AND row_key = ?",
        [(now, plan_hash, k) for k in keys],
    )
    db.executemany(
        "INSERT INTO attempts(plan_hash, row_key, attempt, at, status) "
        "SELECT plan_hash, row_key, attempts, ?, 'sending' FROM ops "
        "WHERE plan_hash = ? AND row_key = ?",
        [(now, plan_hash, k) for k in keys],
    )


def _record(db: sqlite3.Connection, plan_hash: str, rows: list[Outcome], now: str) -> None:
    db.executemany(
        "UPDATE ops SET status = ?, outcome_id = COALESCE(?, outcome_id), after_points = ?, "
        "http_status = ?, request_id = ?, message = ?, updated_at = ? "
        "WHERE plan_hash = ? AND row_key = ?",
        [
            (
                o.status,
                o.outcome_id,
                o.after_points,
                o.http_status,
                o.request_id,
                o.message,
                now,
                plan_hash,
                o.row_key,
            )
            for o in rows
        ],
    )
    db.executemany(
        "INSERT INTO attempts(plan_hash, row_key, attempt, at, status, http_status, request_id, "
        "message) SELECT plan_hash, row_key, attempts, ?, ?, ?, ?, ? FROM ops "
        "WHERE plan_hash = ? AND row_key = ?",
        [(now, o.status, o.http_status, o.request_id, o.message, plan_hash, o.row_key) for o in rows],
    )
