"""The one place a failing disk becomes a :class:`~gradesync.errors.StorageError`.

The journal and the memory (both SQLite files in the state directory) open their database and run
every statement through :func:`guarded`, which maps what SQLite or the OS said into one of the
named codes of ``errors.StorageError`` (exit code 8)::

    ENOSPC, EDQUOT, SQLITE_FULL                 storage-disk-full        free space, then --resume
    EROFS, EACCES, EPERM, SQLITE_READONLY       storage-read-only        make the state dir writable
    SQLITE_CORRUPT, SQLITE_NOTADB               storage-journal-corrupt  move the file aside
    anything else (ENOTDIR, SQLITE_CANTOPEN, …) storage-unwritable       check the path

A grade tool that cannot record what it wrote must stop: none of these is retried.
"""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gradesync.errors import StorageError

# SQLite's primary result codes (the low byte of ``sqlite3.Error.sqlite_errorcode``)
SQLITE_PERM, SQLITE_READONLY, SQLITE_IOERR, SQLITE_CORRUPT = 3, 8, 10, 11
SQLITE_FULL, SQLITE_CANTOPEN, SQLITE_NOTADB = 13, 14, 26

_DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})
_READ_ONLY_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})


def _kind(exc: BaseException) -> str:
    """``disk-full`` | ``read-only`` | ``corrupt`` | ``unwritable`` for an OSError or sqlite3.Error."""
    if isinstance(exc, OSError):
        if exc.errno in _DISK_FULL_ERRNOS:
            return "disk-full"
        if exc.errno in _READ_ONLY_ERRNOS:
            return "read-only"
        return "unwritable"
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    text = str(exc).lower()
    if primary == SQLITE_FULL or "database or disk is full" in text:
        return "disk-full"
    if primary in (SQLITE_READONLY, SQLITE_PERM) or "readonly database" in text:
        return "read-only"
    if primary in (SQLITE_CORRUPT, SQLITE_NOTADB) or "not a database" in text or "malformed" in text:
        return "corrupt"
    return "unwritable"


def storage_error(exc: BaseException, path: Path, what: str) -> StorageError:
    """The named StorageError for ``exc`` raised while using ``path`` (``what``: "journal", …)."""
    kind = _kind(exc)
    where = path.parent
    if kind == "disk-full":
        return StorageError(
            f"the disk holding the {what} ({path}) is full: {exc}",
            code="storage-disk-full",
            hint=f"free space on the disk of {where}, then run again with --resume "
            "(nothing unrecorded was sent)",
        )
    if kind == "read-only":
        return StorageError(
            f"the {what} ({path}) cannot be written: the state directory is read-only ({exc})",
            code="storage-read-only",
            hint=f"make {where} writable for this user (or point --state-dir elsewhere), then run again",
        )
    if kind == "corrupt":
        return StorageError(
            f"the {what} ({path}) is not a readable SQLite database: {exc}",
            code="storage-journal-corrupt",
            hint=f"move {path} aside (keep it for diagnosis) and run again: a new {what} is started; "
            "a plan half-applied under the old one is then re-checked against Teams before any write",
        )
    return StorageError(
        f"the {what} ({path}) cannot be created or written: {exc}",
        code="storage-unwritable",
        hint=f"check that {where} is a directory this user can write to (or point --state-dir elsewhere)",
    )


@contextmanager
def guarded(path: Path, what: str) -> Iterator[None]:
    """Run a block of SQLite/file work; a failing disk leaves it as a named StorageError."""
    try:
        yield
    except (sqlite3.Error, OSError) as exc:
        raise storage_error(exc, path, what) from exc


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
