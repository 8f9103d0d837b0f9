"""The read stage's two entry points, ``read_inputs`` and ``inspect_inputs``, as the pipeline calls
them: in a separate process with memory and time limits when ``[input] isolate`` is on, in this
process otherwise; either way a failure of a reader is an ``InputError`` naming the file (exit 2),
never a traceback.

    [input]
    isolate = true               # parse in a child process (the web app turns this on)
    isolate_memory_mb = 4096     # the child's address space (RLIMIT_AS)
    isolate_cpu_seconds = 120    # its CPU time (RLIMIT_CPU); stopped after 3× that + 30 s of wall time

With ``isolate`` on, a file that makes a native reader abort, or that needs more memory or time than
the limits, costs only the child: the process that called (a web server holding another registrar's
apply, say) carries on, and the caller gets an ``InputError`` for that file. The result comes back
pickled (``ReadResult``, ``Inspection``). Without it, the sizes each reader checks before parsing
(``limits``, ``_xlsx_size``) are what protect the process, and a format whose sizes cannot be checked
first (.xls, .xlsb, .ods) is still parsed in a child.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from gradesync.config import Settings
from gradesync.errors import GradesyncError, InputError
from gradesync.read import ReadResult, _cage
from gradesync.read import read_inputs as read_in_process
from gradesync.read.inspect import Inspection, SnapshotLookup
from gradesync.read.inspect import inspect_inputs as inspect_in_process
from gradesync.read.limits import ReadLimits, too_large

__all__ = ["inspect_inputs", "read_inputs"]

log = logging.getLogger("gradesync.read")
T = TypeVar("T")


def read_inputs(paths: Sequence[str | Path], settings: Settings, **options: Any) -> ReadResult:
    """``gradesync.read.read_inputs``, isolated when ``settings.input.isolate`` (same arguments)."""
    return _call(read_in_process, paths, settings, (), options)


def inspect_inputs(
    paths: Sequence[str | Path],
    settings: Settings,
    snapshot_lookup: SnapshotLookup | None = None,
    **options: Any,
) -> Inspection:
    """``gradesync.read.inspect.inspect_inputs``, isolated when ``settings.input.isolate``."""
    return _call(inspect_in_process, paths, settings, (snapshot_lookup,), options)


def _call(
    fn: Callable[..., T],
    paths: Sequence[str | Path],
    settings: Settings,
    extra: tuple[Any, ...],
    options: dict[str, Any],
) -> T:
    files = [str(p) for p in paths]
    args = (list(paths), settings, *extra)
    if settings.input.isolate:
        limits = ReadLimits.from_settings(settings.input).cage
        return _cage.run(fn, args, kwargs=options, limits=limits, files=files)
    _cage.forget_file()
    try:
        return fn(*args, **options)
    except GradesyncError:
        raise
    except MemoryError:
        raise too_large(_blamed(files), "reading it ran out of memory", code="input-reader-limit") from None
    except Exception as e:
        log.debug("reading %s failed", files, exc_info=True)
        raise InputError(
            f"cannot be read: the reader failed ({type(e).__name__}: {e})",
            file=_blamed(files),
            code="input-reader-failed",
            hint="check that this is the gradebook export; open it in Excel and save it again as .xlsx or "
            ".csv, or export it again",
        ) from None


def _blamed(files: list[str]) -> str:
    return _cage.current_file() or ", ".join(files) or "the input"
