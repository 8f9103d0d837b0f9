"""One run at a time per state directory: ``fcntl.flock`` on ``STATE_DIR/lock``.

The kernel releases a flock when its holder dies (even by SIGKILL), so a stale lock never needs
cleaning up: the file may remain, but the next run acquires it. The holder writes its pid, host and
start time into the file so a refused run can name it.
"""

from __future__ import annotations

import fcntl
import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from gradesync.errors import LockError

LOCK_NAME = "lock"


class RunLock:
    def __init__(self, state_dir: str | Path) -> None:
        self.path = Path(state_dir) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd)
            os.close(fd)
            raise LockError(
                f"another gradesync run holds the lock {self.path} ({holder or 'holder unknown'})",
                code="locked",
                hint="wait for it to finish; a lock of a process that died is released automatically",
            ) from None
        started = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        info = f"pid={os.getpid()} host={socket.gethostname()} started={started}\n".encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, info, 0)
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def _read(fd: int) -> str:
    try:
        return os.pread(fd, 400, 0).decode("utf-8", "replace").strip()
    except OSError:
        return ""
