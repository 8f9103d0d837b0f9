"""Run one parse in a separate process with memory and CPU-time limits: a crash there is an error here.

A native reader that meets a hostile file can abort the whole process (a Rust allocation failure is
SIGABRT, not an exception), and a hostile file can ask for more memory or time than the machine has.
``run`` calls a function in a child process whose address space (``RLIMIT_AS``) and CPU time
(``RLIMIT_CPU``) are limited, and waits for it at most ``CageLimits.wall``. The result comes
back pickled; a ``GradesyncError`` raised there is raised here; a limit, a signal or a crash becomes an
``InputError`` naming the file being read (the child says which file it opens, ``note_file``).

The child is forked from a small server process started once (multiprocessing's ``forkserver``, with
the read stage already imported), never from the caller: forking a process that runs threads (a web
server, the Graph client's pool) is unsafe. On systems without ``fork`` (Windows) it is spawned, and
the memory and CPU limits are not set (``resource`` is POSIX); a crash is still contained.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, TypeVar

from gradesync.errors import GradesyncError, InputError

__all__ = ["CageLimits", "current_file", "forget_file", "inside", "note_file", "run"]

log = logging.getLogger("gradesync.read")
T = TypeVar("T")
MB = 1024 * 1024

#: Modules the fork server imports once, so each child starts with them loaded (about 0.05 s per
#: parse instead of the second it takes to import pandas).
PRELOAD = ["gradesync.read", "gradesync.read.inspect", "python_calamine"]
_STDERR_TAIL = 4096


@dataclass(frozen=True, slots=True)
class CageLimits:
    """The child's limits: its address space and CPU seconds, and how long the parent waits for it."""

    memory_bytes: int = 4096 * MB
    cpu_seconds: int = 120
    #: None: three times the CPU budget and 30 s more, as a loaded machine (two cores, several
    #: parses) gives a child a fraction of a core; this stops a child blocked without using CPU
    #: (reading from a pipe that never ends).
    wall_seconds: float | None = None

    @property
    def wall(self) -> float:
        return self.wall_seconds if self.wall_seconds is not None else 3.0 * self.cpu_seconds + 30.0


# ------------------------------------------------------------------ the child's side
class _Process:
    """This process's part: the pipe to the parent (in a caged child), the multiprocessing context
    (in a parent, made once)."""

    channel: Connection | None = None
    context: Any = None


_local = threading.local()  # the file this thread is reading


def inside() -> bool:
    """True in a caged child (a nested parse runs directly: it is caged already)."""
    return _Process.channel is not None


def note_file(name: str) -> None:
    """Say which file is being read, so a failure can be blamed on it: to the parent from a child,
    to ``current_file`` in this thread otherwise."""
    _local.file = name
    if _Process.channel is not None:
        _Process.channel.send(("file", name))


def current_file() -> str | None:
    """The file this thread last began to read (``note_file``), or None."""
    return getattr(_local, "file", None)


def forget_file() -> None:
    _local.file = None


def _child(conn: Connection, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
           limits: CageLimits, stderr_path: str) -> None:  # fmt: skip
    _redirect_stderr(stderr_path)
    _set_limits(limits)
    _Process.channel = conn
    try:
        payload: tuple[str, Any] = ("ok", fn(*args, **kwargs))
    except GradesyncError as e:
        payload = ("error", (type(e), e.args, dict(e.__dict__)))
    except MemoryError:
        payload = ("memory", None)
    except BaseException as e:
        payload = ("crash", f"{type(e).__name__}: {e}")
    try:
        conn.send(payload)
    except MemoryError:
        conn.send(("memory", None))  # pickling the result needed more than was left
    conn.close()


def _redirect_stderr(path: str) -> None:
    """A native reader's panic message and backtrace go to a file the parent reads, not to the user."""
    os.environ["RUST_BACKTRACE"] = "0"
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    os.dup2(fd, 2)
    os.close(fd)


def _set_limits(limits: CageLimits) -> None:
    try:
        import resource
    except ImportError:  # Windows: no limits, the crash is still contained
        return
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    # The soft limit sends SIGXCPU; the hard one, a second later, SIGKILL.
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 1))


# ------------------------------------------------------------------ the parent's side
def _get_context() -> Any:
    if _Process.context is None:
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
        if "forkserver" in methods:
            context.set_forkserver_preload(PRELOAD)
        _Process.context = context
    return _Process.context


def run(fn: Callable[..., T], args: tuple[Any, ...], *, limits: CageLimits, files: Sequence[str],
        kwargs: dict[str, Any] | None = None) -> T:  # fmt: skip
    """``fn(*args, **kwargs)`` in a caged child (directly when already inside one). ``files`` are the
    inputs being read, named in the error when the child fails before saying which file it opened."""
    if inside():
        return fn(*args, **(kwargs or {}))
    ctx = _get_context()
    try:
        fd, stderr_path = tempfile.mkstemp(prefix="gradesync-read-", suffix=".log")
        os.close(fd)
    except OSError:  # no temporary folder to write to: the reader's messages are dropped
        stderr_path = os.devnull
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(send, fn, args, kwargs or {}, limits, stderr_path), daemon=False)
    current = files[0] if len(files) == 1 else None
    try:
        proc.start()
        send.close()
        kind, value, current = _wait(proc, receive, limits, current)
    finally:
        receive.close()
        if proc.is_alive():
            proc.kill()
        proc.join()
        tail = _read_tail(stderr_path)
    if kind == "ok":
        return value  # type: ignore[no-any-return]
    if kind == "error":
        raise _thaw(value)
    raise _failure(kind, value, proc.exitcode, tail, limits, current, files)


def _wait(
    proc: Any, receive: Connection, limits: CageLimits, current: str | None
) -> tuple[str, Any, str | None]:
    """Messages until the result: ("ok" | "error" | "memory" | "crash" | "died" | "timeout", value, file)."""
    deadline = time.monotonic() + limits.wall
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return "timeout", None, current
        ready = wait([receive, proc.sentinel], timeout=left)
        if receive in ready or receive.poll():
            try:
                kind, value = receive.recv()
            except (EOFError, OSError):
                return "died", None, current
            if kind == "file":
                current = value
                continue
            return kind, value, current
        if proc.sentinel in ready:
            return "died", None, current


def _read_tail(path: str) -> str:
    if path == os.devnull:
        return ""
    file = Path(path)
    try:
        with file.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(f.tell() - _STDERR_TAIL, 0))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    finally:
        with contextlib.suppress(OSError):
            file.unlink()


def _thaw(frozen: tuple[type[GradesyncError], tuple[Any, ...], dict[str, Any]]) -> GradesyncError:
    """A GradesyncError rebuilt from its class, args and attributes (its keyword-only constructor
    arguments cannot be pickled the usual way)."""
    cls, args, attrs = frozen
    err = cls.__new__(cls)
    Exception.__init__(err, *args)
    err.__dict__.update(attrs)
    return err


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def _failure(kind: str, detail: Any, exitcode: int | None, tail: str, limits: CageLimits,
             current: str | None, files: Sequence[str]) -> InputError:  # fmt: skip
    """The InputError for a child that did not return: which file, and which limit or signal."""
    name = current or ", ".join(files) or "the input"
    if tail.strip():
        log.debug("the reader's process said: %s", tail.strip()[-1000:])
    memory_mb, cpu = limits.memory_bytes // MB, limits.cpu_seconds
    sig = -exitcode if exitcode is not None and exitcode < 0 else None
    out_of_memory = kind == "memory" or "memory allocation" in tail or "MemoryError" in tail
    if out_of_memory:
        why = f"reading it needed more than {memory_mb:,} MB of memory ([input] isolate_memory_mb)"
        code = "input-reader-limit"
    elif sig == getattr(signal, "SIGXCPU", None) and kind == "died":
        why = f"reading it used more than {cpu:,} s of CPU time ([input] isolate_cpu_seconds)"
        code = "input-reader-limit"
    elif kind == "timeout":
        why = f"reading it took longer than {limits.wall:,.0f} s and was stopped"
        code = "input-reader-limit"
    elif kind == "crash":
        why = f"the reader failed on it ({detail})"
        code = "input-reader-failed"
    else:
        why = f"the reader crashed on it ({_signal_name(sig) if sig else f'exit {exitcode}'})"
        code = "input-reader-failed"
    return InputError(
        f"cannot be read: {why}; nothing else was affected",
        file=name,
        code=code,
        hint="check that this is the gradebook export; open it in Excel and save it again as .xlsx or "
        ".csv, or export it again"
        + (" (or raise the limit named above)" if code == "input-reader-limit" else ""),
    )
