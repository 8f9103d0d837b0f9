"""A failing state directory ends in a named StorageError (exit 8), never in "internal error".

Runs as root in CI, where file modes do not stop writes: read-only is SQLite's own read-only state
(``PRAGMA query_only``), disk full is SQLite's ``max_page_count`` (SQLITE_FULL), an unwritable path
is a state dir below a regular file; the errno mapping itself is checked on OSErrors.
"""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from execute_helpers import build_plan, client_for

from gradesync.errors import ExitCode, StorageError, storage_error
from gradesync.execute.apply import ApplyOptions, apply_plan, plan_hash
from gradesync.models import Action, Operation
from gradesync.state.journal import JOURNAL_NAME, Journal
from gradesync.state.memory import Memory, Written

LOOSE = ApplyOptions()


def _ops(n: int) -> list[Operation]:
    return [Operation(k, Action.UPDATE, "c", "a", f"s{k}", f"o{k}", 5.0, 4.0, None) for k in range(n)]


def test_a_corrupt_journal_is_named(emulator: Any, token: str, tmp_path: Path) -> None:
    (tmp_path / JOURNAL_NAME).write_bytes(b"this is not SQLite\x00" * 200)
    with pytest.raises(StorageError) as e:
        Journal.in_dir(tmp_path)
    assert e.value.code == "storage-journal-corrupt"
    assert e.value.exit_code is ExitCode.STORAGE
    assert str(tmp_path / JOURNAL_NAME) in e.value.message
    assert e.value.hint and "move" in e.value.hint


def test_disk_full_while_journalling_is_named(tmp_path: Path) -> None:
    with Journal.in_dir(tmp_path) as journal:
        pages = journal._db.execute("PRAGMA page_count").fetchone()[0]
        journal._db.execute(f"PRAGMA max_page_count = {pages}")  # SQLITE_FULL on the next growth
        with pytest.raises(StorageError) as e:
            journal.start("h", "2026-01-01T00:00:00Z", _ops(2000))
    assert e.value.code == "storage-disk-full"
    assert "free space" in (e.value.hint or "")


def test_disk_full_while_remembering_is_named(tmp_path: Path) -> None:
    with Memory.in_dir(tmp_path) as memory:
        pages = memory._db.execute("PRAGMA page_count").fetchone()[0]
        memory._db.execute(f"PRAGMA max_page_count = {pages}")
        with pytest.raises(StorageError) as e:
            memory.remember(Written(f"s{i}", "c", "a", f"o{i}", 1.0) for i in range(2000))
    assert e.value.code == "storage-disk-full"


def test_a_read_only_journal_is_named(tmp_path: Path) -> None:
    with Journal.in_dir(tmp_path) as journal:
        journal._db.execute("PRAGMA query_only = ON")  # SQLite refuses writes: SQLITE_READONLY
        with pytest.raises(StorageError) as e:
            journal.start("h", "2026-01-01T00:00:00Z", _ops(3))
    assert e.value.code == "storage-read-only"


def test_a_state_dir_below_a_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(StorageError) as e:
        Journal.in_dir(tmp_path / "file" / "state")
    assert e.value.code == "storage-unwritable"
    with pytest.raises(StorageError):
        Memory.in_dir(tmp_path / "file" / "state")


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), "storage-disk-full"),
        (OSError(errno.EROFS, "Read-only file system"), "storage-read-only"),
        (OSError(errno.EACCES, "Permission denied"), "storage-read-only"),
        (OSError(errno.ENOTDIR, "Not a directory"), "storage-unwritable"),
        (sqlite3.OperationalError("database or disk is full"), "storage-disk-full"),
        (sqlite3.DatabaseError("file is not a database"), "storage-journal-corrupt"),
    ],
)
def test_errno_and_sqlite_mapping(exc: BaseException, code: str, tmp_path: Path) -> None:
    assert storage_error(exc, "journal", tmp_path / JOURNAL_NAME).code == code


def test_a_corrupt_memory_is_named_as_the_memory_not_the_journal(tmp_path: Path) -> None:
    """Losing the memory has its own consequence (teacher changes look like ordinary differences
    for a night): the error names it and says so, never "journal"."""
    (tmp_path / "memory.sqlite").write_bytes(b"this is not SQLite\x00" * 200)
    with pytest.raises(StorageError) as e:
        Memory.in_dir(tmp_path)
    assert e.value.code == "storage-memory-corrupt" and e.value.exit_code is ExitCode.STORAGE
    assert "memory" in e.value.message and "journal" not in e.value.message
    assert e.value.hint and "teacher" in e.value.hint


def test_apply_stops_with_the_named_error_when_the_journal_fills(
    emulator: Any, token: str, tmp_path: Path
) -> None:
    """Nothing is sent that the journal did not record as ``sending`` first: a resume re-reads it."""
    plan = build_plan(emulator.state(), updates=30, creates=0, rejects=0)
    emulator.reset_stats()
    with client_for(emulator, token) as client, Journal.in_dir(tmp_path) as journal:
        pages = journal._db.execute("PRAGMA page_count").fetchone()[0]
        journal._db.execute(f"PRAGMA max_page_count = {pages}")
        with pytest.raises(StorageError) as e:
            apply_plan(plan, client, journal=journal, options=LOOSE)
    assert e.value.code == "storage-disk-full"
    applied = emulator.stats()["writes_applied"]
    with Journal.in_dir(tmp_path) as journal:
        statuses = [r.status for r in journal.ops(plan_hash(plan)).values()]
    assert statuses.count("pending") <= len(statuses) - applied  # every applied write was journalled
