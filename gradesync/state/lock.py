"""One run at a time per state directory: an operating-system lock on ``STATE_DIR/lock``.

The lock is ``filelock``'s: ``flock`` on Linux and macOS, ``LockFileEx`` on Windows. Either way the
operating system releases it when its holder dies (even killed outright), so a stale lock never
needs cleaning up: the file may remain, but the next run acquires it.

The holder writes its pid, host and start time into ``STATE_DIR/lock.holder`` so a refused run can
name it. That is a file of its own because Windows' lock is mandatory: while one process holds a
byte range of ``lock``, no other process may read it.
"""

from __future__ import annotations

import contextlib
import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

import filelock

from gradesync.errors import LockError

__all__ = ["HOLDER_NAME", "LOCK_NAME", "RunLock"]

LOCK_NAME = "lock"
HOLDER_NAME = "lock.holder"


class RunLock:
    """``with RunLock(state_dir): ...`` — refused at once (``LockError``, exit 5) while another
    process, or another ``RunLock`` in this one, holds the same state directory."""

    def __init__(self, state_dir: str | Path) -> None:
        self.path = Path(state_dir) / LOCK_NAME
        self.holder_path = Path(state_dir) / HOLDER_NAME
        # thread_local=False: the lock is held by this RunLock, whichever thread asks about it
        self._lock = filelock.FileLock(self.path, timeout=0, thread_local=False)

    def acquire(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire(timeout=0)
        except filelock.Timeout:
            holder = _read(self.holder_path)
            raise LockError(
                f"another gradesync run holds the lock {self.path} ({holder or 'holder unknown'})",
                code="locked",
                hint="wait for it to finish; a lock of a process that died is released automatically",
            ) from None
        try:
            _write_holder(self.holder_path)
        except BaseException:
            self._lock.release()
            raise
        return self

    def release(self) -> None:
        if not self._lock.is_locked:
            return
        try:
            with contextlib.suppress(OSError):  # the next holder overwrites it anyway
                self.holder_path.unlink(missing_ok=True)
        finally:
            self._lock.release()

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def _write_holder(path: Path) -> None:
    """Replace the holder file in one step, so a refused run never reads half of it."""
    started = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write(f"pid={os.getpid()} host={socket.gethostname()} started={started}\n")
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[:400].strip()
    except OSError:
        return ""
