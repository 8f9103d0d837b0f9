"""SQLite files in the state directory (the journal, the memory): opened and used so that a failing
disk always leaves as a named :class:`~gradesync.errors.StorageError` (``errors.storage_error``
says which: disk full, read-only, corrupt, unwritable).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gradesync.errors import storage_error

__all__ = ["guarded", "open_db", "transaction"]


@contextmanager
def guarded(path: Path, what: str) -> Iterator[None]:
    """Run a block of SQLite/file work; a failing disk leaves it as a named StorageError."""
    try:
        yield
    except (sqlite3.Error, OSError) as exc:
        raise storage_error(exc, what, path) from exc


@contextmanager
def transaction(db: sqlite3.Connection, path: Path, what: str) -> Iterator[sqlite3.Connection]:
    """One write transaction (``BEGIN IMMEDIATE``: the writer's lock taken at once), committed when
    the block ends, rolled back on any failure; a failing disk leaves it as a named StorageError."""
    with guarded(path, what):
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")


def open_db(path: Path, what: str, schema: str) -> sqlite3.Connection:
    """Open (creating) a WAL SQLite database with ``schema``; every failure is a StorageError."""
    with guarded(path, what):
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, isolation_level=None, timeout=30.0)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")  # a committed status survives a power cut too
            db.executescript(schema)
        except BaseException:
            db.close()
            raise
        return db
