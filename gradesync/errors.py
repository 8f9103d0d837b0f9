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
    │                                   a corrupt journal or memory); the code names which, the hint
    │                                   what to do
    └── GraphError          (exit 1)    Graph answered with an error
        ├── TransientGraphError         429, 5xx, timeouts, dropped connections: retry
        └── TerminalGraphError          other 4xx: final for that request

``Transient`` vs ``Terminal`` is part of the type: retry code acts on the type alone.
Messages never carry secrets: tokens are never formatted into an error.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

__all__ = [
    "AuthError",
    "ConfigError",
    "ExitCode",
    "GradesyncError",
    "GraphAuthError",
    "GraphError",
    "GraphUnreachableError",
    "GuardError",
    "InputError",
    "LockError",
    "NetworkError",
    "StorageError",
    "TerminalGraphError",
    "TransientGraphError",
    "UsageError",
    "storage_error",
]


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
    """The state dir, run dir or report dir failed (made by :func:`storage_error`, which names the
    codes); the hint says what to do."""

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
# SQLite's primary result codes (the low byte of ``sqlite3.Error.sqlite_errorcode``)
_SQLITE_PERM, _SQLITE_READONLY, _SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_NOTADB = 3, 8, 11, 13, 26
_DISK_FULL_ERRNOS = frozenset({28, 122})  # ENOSPC, EDQUOT
_READ_ONLY_ERRNOS = frozenset({30, 13, 1})  # EROFS, EACCES, EPERM


def _storage_kind(exc: BaseException) -> str:
    """``disk-full`` | ``read-only`` | ``corrupt`` | ``unwritable`` for an OSError or sqlite3 error."""
    errno = getattr(exc, "errno", None)
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    text = str(getattr(exc, "strerror", None) or exc).lower()
    if errno in _DISK_FULL_ERRNOS or primary == _SQLITE_FULL or "disk is full" in text or "no space" in text:
        return "disk-full"
    if errno in _READ_ONLY_ERRNOS or primary in (_SQLITE_READONLY, _SQLITE_PERM):
        return "read-only"
    if "readonly database" in text or "read-only" in text:
        return "read-only"
    if primary in (_SQLITE_CORRUPT, _SQLITE_NOTADB) or "not a database" in text or "malformed" in text:
        return "corrupt"
    return "unwritable"


def storage_error(exc: BaseException, what: str, path: object = None) -> StorageError:
    """The :class:`StorageError` for ``exc`` (an ``OSError`` or a ``sqlite3`` error) raised while
    using ``what`` (``"journal"``, ``"memory"``, ``"report directory"``, …) at ``path``.

    Codes: ``storage-disk-full``, ``storage-read-only``, ``storage-journal-corrupt`` (the journal,
    or a state database not named), ``storage-memory-corrupt`` (the three-way sync memory),
    ``storage-unwritable`` (anything else: a file where a directory should be, a missing mount).
    None of them is retried: a grade tool that cannot record what it wrote must stop."""
    kind = _storage_kind(exc)
    reason = str(getattr(exc, "strerror", None) or exc or type(exc).__name__)
    where = f"the {what}" + (f" ({path})" if path is not None else "")
    folder = f"the directory of {path}" if path is not None else "that directory"
    if kind == "disk-full":
        return StorageError(
            f"the disk holding {where} is full: {reason}",
            code="storage-disk-full",
            hint=f"free space on the disk of {folder} (or point --state-dir / --runs-dir / --report-dir at "
            "another one), then run again; --resume finishes an interrupted apply (nothing unrecorded "
            "was sent)",
        )
    if kind == "read-only":
        return StorageError(
            f"{where} cannot be written: read-only or not ours ({reason})",
            code="storage-read-only",
            hint=f"make {folder} writable for the account running gradesync (fix its mount or "
            "permissions), or choose another directory",
        )
    if kind == "corrupt" and "memory" in what:
        return StorageError(
            f"{where} is not a readable SQLite database: {reason}",
            code="storage-memory-corrupt",
            hint="move memory.sqlite aside (keep it for diagnosis) and run again: a new memory is "
            "started, and until gradesync writes a grade again it cannot tell a teacher's change in "
            "Teams from an ordinary difference, so review that first night's plan "
            "([policy] teacher_override)",
        )
    if kind == "corrupt":
        return StorageError(
            f"{where} is not a readable SQLite database: {reason}",
            code="storage-journal-corrupt",
            hint="move the damaged journal.sqlite aside (keep it for diagnosis) and run again: a new "
            "journal is started, and a plan half-applied under the old one is re-checked against "
            "Teams before any write",
        )
    return StorageError(
        f"{where} cannot be created or written: {reason}",
        code="storage-unwritable",
        hint="the path cannot be written (a file where a directory should be, a missing mount, a "
        "name too long): check the path given, or choose another directory",
    )


class GraphUnreachableError(NetworkError, TransientGraphError):
    """No connection to Graph could be made (DNS, connection refused, TLS, proxy): transient while the
    client retries; once its retries are exhausted it surfaces as a :class:`NetworkError` (exit 7)."""

    code = "graph-unreachable"
    exit_code = ExitCode.NETWORK
