"""The apply journal: SQLite (WAL) in the run's state directory.

It records, per plan (identified by ``plan_hash``), every write operation's status and every attempt.
The executor commits *before* a batch is sent (status ``sending``) and *after* (the final status),
so a process killed at any instant leaves a journal from which ``--resume`` knows, for each
operation, one of:

* ``pending``  — never sent: send it (after the stale-plan check);
* ``sending``  — maybe sent, fate unknown: re-read the target first, never resend blindly;
* ``updated`` / ``created`` / ``unchanged`` / ``conflict`` / ``failed`` — final: report, do not touch.

Tables::

    runs(plan_hash PK, plan_created_at, started_at, finished_at, state)   state: running | finished
    ops(plan_hash, row_key, action, status, attempts, outcome_id, after_points, http_status,
        request_id, message, updated_at)                                PK (plan_hash, row_key)
    attempts(id PK, plan_hash, row_key, attempt, at, status, http_status, request_id, message)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from gradesync.models import Operation

JOURNAL_NAME = "journal.sqlite"

PENDING = "pending"
SENDING = "sending"
FINAL = frozenset({"updated", "created", "unchanged", "conflict", "failed"})

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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a committed status survives a power cut too
        self._db.executescript(_SCHEMA)

    @classmethod
    def in_dir(cls, state_dir: str | Path) -> Journal:
        return cls(Path(state_dir) / JOURNAL_NAME)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # --- runs ---------------------------------------------------------------------------------
    def run_state(self, plan_hash: str) -> dict[str, str | None] | None:
        row = self._db.execute(
            "SELECT plan_created_at, started_at, finished_at, state FROM runs WHERE plan_hash = ?",
            (plan_hash,),
        ).fetchone()
        if row is None:
            return None
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
        cur = self._db.execute(
            "SELECT row_key, action, status, attempts, outcome_id, after_points, http_status, request_id, "
            "message FROM ops WHERE plan_hash = ?",
            (plan_hash,),
        )
        return {r[0]: OpRecord(*r) for r in cur.fetchall()}

    def mark_sending(self, plan_hash: str, row_keys: Iterable[int]) -> None:
        """Committed before the batch leaves: from now on the ops' fate is unknown until recorded."""
        now = _now()
        keys = list(row_keys)
        with self._tx() as db:
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

    def record(self, plan_hash: str, outcomes: Iterable[Outcome]) -> None:
        """Record what happened (final or back to ``pending``/``sending`` for another round)."""
        now = _now()
        rows = list(outcomes)
        with self._tx() as db:
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

    def attempts(self, plan_hash: str, row_key: int) -> list[dict[str, object]]:
        cur = self._db.execute(
            "SELECT attempt, at, status, http_status, request_id, message FROM attempts "
            "WHERE plan_hash = ? AND row_key = ? ORDER BY id",
            (plan_hash, row_key),
        )
        names = ("attempt", "at", "status", "http_status", "request_id", "message")
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
