"""The web app's durable state: ``STATE_DIR/web/web.sqlite``, beside the journal.

A restart of ``gradesync serve`` must lose nothing a registrar did: an upload (its files stay in
``STATE_DIR/web/uploads/<id>/``) with the choices made on its Map page and the preview it led to,
every apply started from the web with its progress, and the tenant's class list read for the class
chooser (with the moment it was read, so a page can say how old it is). Each is one JSON record,
written by the web app and read back as it wrote it:

    uploads (id, owner, created, record)      an upload and its choices
    jobs    (id, created, record)              an apply (or a resume, an undo) started from the web
    events  (job_id, seq, event)               a job's progress events, in order
    catalog (name, fetched_at, data)           the tenant's classes, as read

SQLite in WAL mode with full sync, one connection shared by the server's threads behind a lock;
every failure of the disk is a named ``StorageError`` (``state.storage.guarded``).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gradesync.state.storage import guarded

__all__ = ["WEB_DB_NAME", "WebStore"]

WEB_DB_NAME = "web.sqlite"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS uploads (
    id TEXT PRIMARY KEY, owner TEXT NOT NULL, created REAL NOT NULL, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, created REAL NOT NULL, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    job_id TEXT NOT NULL, seq INTEGER NOT NULL, event TEXT NOT NULL, PRIMARY KEY (job_id, seq));
CREATE TABLE IF NOT EXISTS catalog (name TEXT PRIMARY KEY, fetched_at REAL NOT NULL, data TEXT NOT NULL);
"""


class WebStore:
    """The web app's records in one SQLite file (thread-safe)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        with guarded(self.path, "web app's database"):
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            db = sqlite3.connect(self.path, isolation_level=None, timeout=30.0, check_same_thread=False)
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")
                db.executescript(_SCHEMA)
            except BaseException:
                db.close()
                raise
        self.path.chmod(0o600)
        self._db = db

    @contextmanager
    def _use(self) -> Iterator[sqlite3.Connection]:
        with self._lock, guarded(self.path, "web app's database"):
            yield self._db

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- uploads ---------------------------------------------------------------------------------
    def save_upload(self, upload_id: str, owner: str, created: float, record: dict[str, Any]) -> None:
        with self._use() as db:
            db.execute(
                "INSERT INTO uploads (id, owner, created, record) VALUES (?, ?, ?, ?) ON CONFLICT(id) "
                "DO UPDATE SET owner = excluded.owner, created = excluded.created, record = excluded.record",
                (upload_id, owner, created, json.dumps(record)),
            )

    def upload(self, upload_id: str) -> tuple[str, float, dict[str, Any]] | None:
        """``(owner, created, record)``, or None."""
        with self._use() as db:
            row = db.execute(
                "SELECT owner, created, record FROM uploads WHERE id = ?", (upload_id,)
            ).fetchone()
        return None if row is None else (str(row[0]), float(row[1]), json.loads(row[2]))

    def uploads_before(self, moment: float) -> list[str]:
        with self._use() as db:
            return [r[0] for r in db.execute("SELECT id FROM uploads WHERE created < ?", (moment,))]

    def delete_upload(self, upload_id: str) -> None:
        with self._use() as db:
            db.execute("DELETE FROM uploads WHERE id = ?", (upload_id,))

    # --- jobs and their events -------------------------------------------------------------------
    def save_job(self, job_id: str, created: float, record: dict[str, Any]) -> None:
        with self._use() as db:
            db.execute(
                "INSERT INTO jobs (id, created, record) VALUES (?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET record = excluded.record",
                (job_id, created, json.dumps(record)),
            )

    def job(self, job_id: str) -> tuple[float, dict[str, Any]] | None:
        with self._use() as db:
            row = db.execute("SELECT created, record FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else (float(row[0]), json.loads(row[1]))

    def jobs(self) -> list[tuple[str, float, dict[str, Any]]]:
        """Every job, oldest first."""
        with self._use() as db:
            rows = db.execute("SELECT id, created, record FROM jobs ORDER BY created").fetchall()
        return [(str(r[0]), float(r[1]), json.loads(r[2])) for r in rows]

    def delete_jobs_before(self, moment: float) -> None:
        with self._use() as db:
            old = [r[0] for r in db.execute("SELECT id FROM jobs WHERE created < ?", (moment,))]
            db.executemany("DELETE FROM events WHERE job_id = ?", [(j,) for j in old])
            db.executemany("DELETE FROM jobs WHERE id = ?", [(j,) for j in old])

    def add_event(self, job_id: str, seq: int, event: dict[str, Any]) -> None:
        with self._use() as db:
            db.execute(
                "INSERT OR REPLACE INTO events (job_id, seq, event) VALUES (?, ?, ?)",
                (job_id, seq, json.dumps(event)),
            )

    def events(self, job_id: str) -> list[dict[str, Any]]:
        with self._use() as db:
            rows = db.execute("SELECT event FROM events WHERE job_id = ? ORDER BY seq", (job_id,)).fetchall()
        return [json.loads(r[0]) for r in rows]

    # --- the class catalog -----------------------------------------------------------------------
    def save_catalog(self, name: str, fetched_at: float, data: Any) -> None:
        with self._use() as db:
            db.execute(
                "INSERT OR REPLACE INTO catalog (name, fetched_at, data) VALUES (?, ?, ?)",
                (name, fetched_at, json.dumps(data)),
            )

    def catalog(self, name: str) -> tuple[float, Any] | None:
        with self._use() as db:
            row = db.execute("SELECT fetched_at, data FROM catalog WHERE name = ?", (name,)).fetchone()
        return None if row is None else (float(row[0]), json.loads(row[1]))
