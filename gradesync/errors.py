"""Every error gradesync raises, each with a stable kebab-case ``code``.

The tree::

    GradesyncError                      code, message, hint; exit_code decides the process exit status
    ├── UsageError          (exit 2)    bad command line or configuration
    │   └── ConfigError     (exit 2)
    ├── InputError          (exit 2)    an input file cannot be read at all; names file, row, column
    ├── AuthError           (exit 3)    401/403 from Graph or no token; names the missing permission
    │   └── GraphAuthError              a 401/403 from Graph, with Graph's error fields
    ├── GuardError          (exit 4)    a safety guard refused to apply a plan
    ├── LockError           (exit 5)    another run holds the lock
    ├── NetworkError        (exit 7)    Graph cannot be reached at all (DNS, TLS, connection refused)
    ├── StorageError        (exit 8)    the state or report directory failed us (disk full, read-only,
    │                                   a corrupt journal); the code names which, the hint what to do
    └── GraphError          (exit 1)    Graph answered with an error
        ├── TransientGraphError         429, 5xx, timeouts, dropped connections: retry
        └── TerminalGraphError          other 4xx: final for that request

``Transient`` vs ``Terminal`` is part of the type: retry code acts on the type alone.
Messages never carry secrets: tokens are never formatted into an error.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    OK = 0
    ROWS_NOT_DONE = 1  # some rows failed, were rejected or conflicted
    USAGE = 2  # usage, configuration or unreadable input
    AUTH = 3  # authentication or permission failure
    GUARD = 4  # a safety guard refused
    LOCKED = 5  # another run holds the lock
    CARRIED_OVER = 6  # nothing failed, but some rows were not sent (deadline, quota): the next run sends them
    NETWORK = 7  # Graph could not be reached (DNS, TLS, connection refused, proxy): an environment failure
    STORAGE = 8  # the disk failed us: state dir full or read-only, a corrupt journal, reports not writable
    INTERNAL = 70  # a bug in gradesync (EX_SOFTWARE): neither the data nor the setup is at fault


class GradesyncError(Exception):
    """Base class. ``code`` is machine-readable, ``message`` says what happened, ``hint`` what to do."""

    code: str = "gradesync-error"
    exit_code: ExitCode = ExitCode.USAGE

    def __init__(self, message: str, *, code: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.hint = hint

    def __str__(self) -> str:
        text = f"[{self.code}] {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "hint": self.hint}


class UsageError(GradesyncError):
    code = "usage"
    exit_code = ExitCode.USAGE


class ConfigError(UsageError):
    code = "config-invalid"


class InputError(GradesyncError):
    """An input that cannot be read. Always names the file, and the row and column where known."""

    code = "input-unreadable"
    exit_code = ExitCode.USAGE

    def __init__(
        self,
        message: str,
        *,
        file: str,
        row: int | None = None,
        column: str | None = None,
        code: str | None = None,
        hint: str | None = None,
    ) -> None:
        where = file
        if row is not None:
            where += f", row {row}"
        if column is not None:
            where += f", column {column!r}"
        super().__init__(f"{where}: {message}", code=code, hint=hint)
        self.file, self.row, self.column = file, row, column


class AuthError(GradesyncError):
    code = "auth-failed"
    exit_code = ExitCode.AUTH


class GuardError(GradesyncError):
    code = "guard-refused"
    exit_code = ExitCode.GUARD


class LockError(GradesyncError):
    code = "locked"
    exit_code = ExitCode.LOCKED


class NetworkError(GradesyncError):
    """Graph could not be reached at all: nothing was learnt from Graph, and nothing is the data's fault."""

    code = "graph-unreachable"
    exit_code = ExitCode.NETWORK


class StorageError(GradesyncError):
    """The state dir, run dir or report dir failed: ``storage-disk-full``, ``storage-read-only``,
    ``storage-journal-corrupt``, ``storage-unwritable``; the hint says what to do."""

    code = "storage-failed"
    exit_code = ExitCode.STORAGE


class _GraphDetails(GradesyncError):
    """What Graph said about a failed request: the fields the contract says to report per row."""

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        graph_code: str | None = None,
        inner_code: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        code: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, code=code, hint=hint)
        self.status = status
        self.graph_code = graph_code
        self.inner_code = inner_code
        self.request_id = request_id
        self.retry_after = retry_after

    def as_dict(self) -> dict[str, Any]:
        return {
            **super().as_dict(),
            "status": self.status,
            "graph_code": self.graph_code,
            "inner_code": self.inner_code,
            "request_id": self.request_id,
        }


class GraphError(_GraphDetails):
    """Graph answered with an error. Carries what the contract says to report per failed row."""

    code = "graph-error"
    exit_code = ExitCode.ROWS_NOT_DONE


class GraphAuthError(_GraphDetails, AuthError):
    """A 401/403 from Graph: an :class:`AuthError` (exit 3) that also carries Graph's error fields."""

    code = AuthError.code
    exit_code = ExitCode.AUTH


class TransientGraphError(GraphError):
    code = "graph-transient"
    retryable = True


class TerminalGraphError(GraphError):
    code = "graph-terminal"


# --- storage failures: the one place an OSError / sqlite3 error becomes a StorageError ------------
_DISK_FULL_ERRNOS = frozenset({28, 122})  # ENOSPC, EDQUOT
_READ_ONLY_ERRNOS = frozenset({30, 13, 1})  # EROFS, EACCES, EPERM

STORAGE_HINTS = {
    "storage-disk-full": "free space on that disk (or point --state-dir / --runs-dir / --report-dir at "
    "another one), then run again; --resume finishes an interrupted apply",
    "storage-read-only": "the directory is read-only or not ours: fix its mount or permissions (the "
    "account running gradesync must be able to write it), or choose another directory",
    "storage-journal-corrupt": "move the damaged journal.sqlite aside (keep it for the record), then make "
    "a fresh plan: without a journal, an interrupted plan cannot be resumed safely",
    "storage-unwritable": "the path cannot be written (a file where a directory should be, a missing "
    "mount, a name too long): check the path given, or choose another directory",
}


def storage_error(exc: BaseException, what: str, path: object = None) -> StorageError:
    """A :class:`StorageError` naming ``what`` failed (``"report directory"``, ``"journal"``) and the
    documented code and hint for ``exc`` (an ``OSError`` or a ``sqlite3`` error)."""
    errno = getattr(exc, "errno", None)
    text = str(getattr(exc, "strerror", None) or exc or type(exc).__name__)
    lowered = text.lower()
    if errno in _DISK_FULL_ERRNOS or "disk is full" in lowered or "no space" in lowered:
        code = "storage-disk-full"
    elif errno in _READ_ONLY_ERRNOS or "readonly" in lowered or "read-only" in lowered:
        code = "storage-read-only"
    elif type(exc).__module__ == "sqlite3" and ("malformed" in lowered or "not a database" in lowered):
        code = "storage-journal-corrupt"
    else:
        code = "storage-unwritable"
    where = f" {path}" if path is not None else ""
    return StorageError(f"cannot write the {what}{where}: {text}", code=code, hint=STORAGE_HINTS[code])


class GraphUnreachableError(NetworkError, TransientGraphError):
    """No connection to Graph could be made (DNS, connection refused, TLS, proxy): transient while the
    client retries; once its retries are exhausted it surfaces as a :class:`NetworkError` (exit 7)."""

    code = "graph-unreachable"
    exit_code = ExitCode.NETWORK
