"""Unattended runs: one directory per ``sync``/``apply`` run, its ``run.json``, retention and ``--notify``.

A run directory is ``<runs-dir>/<UTC timestamp>-<short id>/`` (``20250131T020000Z-3f9a1c``) holding::

    run.json          start/end, command line (secrets redacted), exit code, paths, gradesync version
    gradesync.log     the log (text or JSON lines), unless --log-file points elsewhere
    plan.json         the plan that was applied (sync: the plan it made; apply: a copy of PLAN.json)
    reconciliation.csv, summary.json, report.html   the reports, unless --report-dir is given

With an explicit ``--report-dir`` the reports (and sync's plan.json) go **only** there, as before
run directories existed; ``run.json`` records where. The journal stays in the state directory
(``--resume`` finds it by the plan's hash); ``run.json`` records its path.

:func:`unattended_run` is what ``gradesync.pipeline`` wraps an apply or a sync in (driven by
``Settings``, never by command-line dicts): it takes the lock first (a refused run, exit 5, creates
no run directory — so a scheduler retrying every minute cannot push real runs out of the kept
history), then creates the run directory and the log, and at the end writes ``run.json`` — the exit
code, the error (code, message, hint) and only this run's files, as the pipeline's
:class:`RunOutcome` says —, prunes old run directories (never the current one, never anything that
is not a run directory), runs the notify command and releases the lock.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import secrets
import shlex
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gradesync.config import Settings
from gradesync.errors import ExitCode, GradesyncError, StorageError, storage_error
from gradesync.logs import SECRET_ENV, Redactor, setup_logging
from gradesync.state.journal import JOURNAL_NAME
from gradesync.state.lock import LOCK_NAME, RunLock
from gradesync.version import __version__

__all__ = [
    "DEFAULT_KEEP_RUNS",
    "FALLBACK_RUNS_PREFIX",
    "LOG_NAME",
    "NOTIFY_TIMEOUT_SECONDS",
    "PLAN_NAME",
    "RUNS_NAME",
    "RUN_DIR_PATTERN",
    "RUN_JSON",
    "NotifyResult",
    "Run",
    "RunOptions",
    "RunOutcome",
    "create_run_dir",
    "default_runs_dir",
    "exit_code_of",
    "fallback_runs_dir",
    "is_run_dir",
    "list_runs",
    "log",
    "notify",
    "prune_runs",
    "record_failure",
    "redact_argv",
    "shell_quote",
    "unattended_run",
]

log = logging.getLogger("gradesync.run")

RUN_JSON = "run.json"
LOG_NAME = "gradesync.log"
PLAN_NAME = "plan.json"
RUNS_NAME = "runs"
DEFAULT_KEEP_RUNS = 30
NOTIFY_TIMEOUT_SECONDS = 60.0
RUN_DIR_PATTERN = re.compile(r"^\d{8}T\d{6}(\d{3})?Z-[0-9a-f]{6}$")  # milliseconds since 0.1


def _utc(dt: datetime | None = None) -> str:
    return (dt or datetime.now(UTC)).isoformat(timespec="seconds").replace("+00:00", "Z")


def default_runs_dir(state_dir: str | Path) -> Path:
    """``runs`` beside the state directory: ``.gradesync/state`` → ``.gradesync/runs``."""
    return Path(state_dir).parent / RUNS_NAME


def create_run_dir(runs_dir: str | Path, *, now: datetime | None = None) -> tuple[Path, str]:
    """Create ``runs_dir/<UTC timestamp>-<short id>`` (0700-ish: it holds student data) and return it
    with its run id (the directory's name)."""
    root = Path(runs_dir)
    root.mkdir(parents=True, exist_ok=True)
    moment = now or datetime.now(UTC)
    # Milliseconds keep names in time order for runs started within the same second (pruning and
    # "the newest run" go by name).
    stamp = moment.strftime("%Y%m%dT%H%M%S") + f"{moment.microsecond // 1000:03d}Z"
    for _ in range(10):
        run_id = f"{stamp}-{secrets.token_hex(3)}"
        path = root / run_id
        try:
            path.mkdir(mode=0o750)
        except FileExistsError:
            continue
        return path, run_id
    raise GradesyncError(f"could not create a run directory in {root}", code="run-dir-failed")


def is_run_dir(path: Path) -> bool:
    """A directory (not a symlink) named like a run and holding a ``run.json``: only these are pruned."""
    return (
        RUN_DIR_PATTERN.match(path.name) is not None
        and path.is_dir()
        and not path.is_symlink()
        and (path / RUN_JSON).is_file()
    )


def list_runs(runs_dir: str | Path) -> list[Path]:
    """The run directories in ``runs_dir``, oldest first (names sort by time)."""
    root = Path(runs_dir)
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if is_run_dir(p)), key=lambda p: p.name)


def prune_runs(runs_dir: str | Path, keep: int, *, current: Path | None = None) -> list[Path]:
    """Delete the oldest run directories beyond the newest ``keep`` (``current`` always stays and
    counts as one of them). Returns what was deleted; a directory that cannot be deleted is logged."""
    keep = max(keep, 1)
    runs = list_runs(runs_dir)
    current_resolved = current.resolve() if current is not None else None
    others = [p for p in runs if p.resolve() != current_resolved]
    room = keep - (1 if current_resolved is not None else 0)
    doomed = others[: max(len(others) - room, 0)]
    deleted = []
    for path in doomed:
        try:
            shutil.rmtree(path)
        except OSError as e:
            log.warning("could not delete old run directory %s: %s", path, e.strerror or e)
            continue
        deleted.append(path)
    return deleted


def redact_argv(argv: Sequence[str], redactor: Redactor) -> list[str]:
    return [redactor(arg) for arg in argv]


@dataclass
class NotifyResult:
    command: str
    exit_code: int | None  # None: it did not finish (timeout) or could not start
    timed_out: bool = False
    error: str | None = None


def notify(
    command: str,
    *,
    summary_path: Path | None,
    run_dir: Path,
    exit_code: int,
    timeout: float = NOTIFY_TIMEOUT_SECONDS,
    environ: dict[str, str] | None = None,
) -> NotifyResult:
    """Run ``command`` through the shell with the summary path appended as its last argument and
    ``GRADESYNC_SUMMARY``, ``GRADESYNC_RUN_DIR``, ``GRADESYNC_EXIT_CODE`` in its environment.

    Gradesync's own secrets (``GRADESYNC_ACCESS_TOKEN``, ``GRADESYNC_CLIENT_SECRET``,
    ``GRADESYNC_CERTIFICATE_PASSWORD``) are removed from its environment: a mail hook needs none.
    Its failure or a timeout (then the hook and every process it started are stopped) is logged as a
    warning and changes nothing else. The shell is ``/bin/sh`` on Linux and macOS, ``cmd.exe`` on
    Windows. Its output goes to the log (DEBUG), not to ours."""
    env = dict(os.environ if environ is None else environ)
    for name in SECRET_ENV:
        env.pop(name, None)
    summary = str(summary_path) if summary_path is not None else ""
    env.update(GRADESYNC_SUMMARY=summary, GRADESYNC_RUN_DIR=str(run_dir), GRADESYNC_EXIT_CODE=str(exit_code))
    full = f"{command} {shell_quote(summary)}"
    try:
        proc = subprocess.Popen(  # noqa: S602 — running the operator's shell command is the point
            full,
            shell=True,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            creationflags=_NEW_GROUP_FLAGS,
            start_new_session=_NEW_SESSION,
        )
    except OSError as e:
        log.warning("notify command could not start: %s", e.strerror or e)
        return NotifyResult(command, None, error=str(e))
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        proc.communicate()
        log.warning("notify command did not finish within %.0f s; it was stopped", timeout)
        return NotifyResult(command, None, timed_out=True)
    text = output.decode("utf-8", "replace").strip()
    if text:
        log.debug("notify command output: %s", text[-2000:])
    if proc.returncode != 0:
        log.warning("notify command failed with exit status %s: %s", proc.returncode, text[-500:])
    else:
        log.info("notify command ran", extra={"notify_exit_code": 0})
    return NotifyResult(command, proc.returncode)


# The hook runs in a process group of its own, so a Ctrl-C at the operator's console stops gradesync
# (which then records the run) rather than the hook.
if sys.platform == "win32":
    _NEW_GROUP_FLAGS, _NEW_SESSION = subprocess.CREATE_NEW_PROCESS_GROUP, False
else:
    _NEW_GROUP_FLAGS, _NEW_SESSION = 0, True


def shell_quote(text: str, *, windows: bool = sys.platform == "win32") -> str:
    """``text`` as one argument of a shell command line: cmd.exe's rules on Windows (double quotes;
    ``'...'`` would reach the hook with its quotes), the POSIX shell's elsewhere."""
    if windows:
        return subprocess.list2cmdline([text]) if text else '""'
    return shlex.quote(text)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Stop the shell and everything it started (a hook's own children, too): psutil walks the
    process tree the same way on Windows, Linux and macOS."""
    import psutil

    try:
        tree = psutil.Process(proc.pid)
        doomed = [*tree.children(recursive=True), tree]
    except psutil.Error:
        doomed = []
    for p in doomed:
        with contextlib.suppress(psutil.Error):
            p.kill()
    with contextlib.suppress(OSError):
        proc.kill()


def exit_code_of(exc: BaseException | None) -> int:
    """The process exit status an exception leaving a command will become (see
    ``gradesync.cli.common.handle_errors``); click's exits carry an ``exit_code`` of their own."""
    if exc is None:
        return int(ExitCode.OK)
    if isinstance(exc, GradesyncError):
        return int(exc.exit_code)
    if isinstance(exc, SystemExit):
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    if isinstance(exc, KeyboardInterrupt):
        return 130
    own = getattr(exc, "exit_code", None)  # click.exceptions.Exit, click.ClickException
    if isinstance(own, int):
        return own
    return int(ExitCode.INTERNAL)


@dataclass
class RunOptions:
    """Where an unattended run keeps its files: ``[run]`` and ``[apply] state_dir`` settings (the
    command line overrides them in ``Settings`` before they get here)."""

    state_dir: Path
    runs_dir: Path
    keep_runs: int
    log_format: str
    log_level: str
    log_file: str | None  # None: the run directory's gradesync.log; "-": stderr
    notify: str | None
    report_dir: Path | None  # None: the run directory

    @classmethod
    def from_settings(cls, settings: Settings, *, report_dir: str | Path | None = None) -> RunOptions:
        run = settings.run
        state_dir = Path(settings.apply.state_dir)
        return cls(
            state_dir=state_dir,
            runs_dir=Path(run.runs_dir) if run.runs_dir else default_runs_dir(state_dir),
            keep_runs=run.keep_runs,
            log_format=run.log_format,
            log_level=run.log_level.upper(),
            log_file=run.log_file,
            notify=run.notify,
            report_dir=Path(report_dir) if report_dir else None,
        )


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """What the pipeline says a run came to: ``run.json`` records exactly this (never a file of
    another run)."""

    exit_code: int
    error: dict[str, Any] | None = None  # code, message, hint
    reports: dict[str, Path] = field(default_factory=dict)  # this run's report files
    plan: Path | None = None  # the plan this run applied (or made)
    status_counts: dict[str, int] | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. digest, approved_by, guard_verdict
    summary: dict[str, Any] | None = None  # the run summary (``RunSummary.asdict()``), logged at the end


@dataclass
class Run:
    """The current run: where its files go, and what it came to (``outcome``, set by the pipeline)."""

    command: str
    run_id: str
    run_dir: Path
    report_dir: Path
    options: RunOptions
    redactor: Redactor
    started_at: str
    log_path: Path | None
    plan_path: Path | None = None
    record: dict[str, Any] = field(default_factory=dict)
    outcome: RunOutcome | None = None

    @property
    def journal_path(self) -> Path:
        return self.options.state_dir / JOURNAL_NAME

    def keep_plan_copy(self, plan_file: Path) -> Path:
        """``apply``: keep a copy of the applied plan in the run directory."""
        target = self.run_dir / PLAN_NAME
        if plan_file.resolve() != target.resolve():
            shutil.copyfile(plan_file, target)
        self.plan_path = target
        return target

    def write_record(self, **updates: Any) -> None:
        self.record.update(updates)
        path = self.run_dir / RUN_JSON
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(self.redactor(json.dumps(self.record, indent=2, default=str)) + "\n", encoding="utf-8")
        tmp.replace(path)


def _start(command: str, options: RunOptions, argv: Sequence[str] | None) -> tuple[Run, Any]:
    """Create the run directory and the log, and write the first ``run.json``."""
    redactor = Redactor.from_environment()
    try:
        run_dir, run_id = create_run_dir(options.runs_dir)
    except OSError as e:
        raise storage_error(e, "runs directory", options.runs_dir) from None
    report_dir = options.report_dir or run_dir
    log_path: Path | None = None
    if options.log_file != "-":
        log_path = Path(options.log_file) if options.log_file else run_dir / LOG_NAME
    try:
        logs = setup_logging(
            level=options.log_level,
            fmt=options.log_format,
            file=log_path if log_path is not None else "-",
            run_id=run_id,
            redactor=redactor,
        )
    except OSError as e:
        raise storage_error(e, "log file", log_path) from None
    run = Run(command, run_id, run_dir, report_dir, options, redactor, _utc(), log_path)
    run.write_record(
        run_id=run_id,
        command=command,
        argv=redact_argv(list(argv if argv is not None else sys.argv), redactor),
        gradesync_version=__version__,
        host=socket.gethostname(),
        pid=os.getpid(),
        started_at=run.started_at,
        finished_at=None,
        status="running",
        exit_code=None,
        error=None,
        run_dir=str(run_dir),
        report_dir=str(report_dir),
        log_file=str(log_path) if log_path else "stderr",
        state_dir=str(options.state_dir),
        journal=str(run.journal_path),
        lock=str(options.state_dir / LOCK_NAME),
    )
    log.info(
        "%s started: gradesync %s, run %s",
        command,
        __version__,
        run_id,
        extra={"run_dir": str(run_dir), "report_dir": str(report_dir), "state_dir": str(options.state_dir)},
    )
    return run, logs


@contextmanager
def unattended_run(
    command: str,
    options: RunOptions,
    *,
    argv: Sequence[str] | None = None,
    out: Callable[[str], None] | None = None,
) -> Iterator[Run]:
    """Lock, run directory, log, ``run.json``, retention and notify around one ``sync``/``apply``.

    The body sets ``run.outcome`` (the pipeline's result); an exception leaving the body is recorded
    as the run's error instead. ``out`` prints a line for the operator (the run directory's path)."""
    try:
        lock = RunLock(options.state_dir).acquire()
    except OSError as e:
        raise record_failure(
            command, options, argv, storage_error(e, "state directory", options.state_dir)
        ) from None
    try:
        try:
            run, logs = _start(command, options, argv)
        except StorageError as e:
            raise record_failure(command, options, argv, e) from None
        exc: BaseException | None = None
        try:
            yield run
        except BaseException as e:
            exc = e
            raise
        finally:
            outcome = run.outcome if exc is None and run.outcome is not None else _outcome_of(exc)
            summary_path = _finish(run, outcome, exc)
            if out is not None:
                out(f"run: {run.run_dir}")
            try:
                if options.notify:
                    notify(
                        options.notify,
                        summary_path=summary_path,
                        run_dir=run.run_dir,
                        exit_code=outcome.exit_code,
                    )
            finally:
                logs.close()
    finally:
        lock.release()


FALLBACK_RUNS_PREFIX = "gradesync-runs-"


def fallback_runs_dir() -> Path:
    """Where a run whose runs directory cannot be written leaves its ``run.json``: a folder of this
    user's own in the system's temporary directory (``/tmp/gradesync-runs-<uid>``), made 0700 and used
    only if it is a real folder of this user (never a link another user planted)."""
    uid = os.getuid() if hasattr(os, "getuid") else None
    owner = str(uid) if uid is not None else re.sub(r"[^\w.-]", "_", os.environ.get("USERNAME", "user"))
    path = Path(tempfile.gettempdir()) / f"{FALLBACK_RUNS_PREFIX}{owner}"
    path.mkdir(mode=0o700, exist_ok=True)
    st = path.lstat()
    if not stat.S_ISDIR(st.st_mode) or (uid is not None and st.st_uid != uid):
        raise PermissionError(errno.EPERM, "not a folder of this user", str(path))
    return path


def record_failure(
    command: str, options: RunOptions, argv: Sequence[str] | None, error: StorageError
) -> StorageError:
    """A run that could not start (its state directory, runs directory or log cannot be written) still
    leaves a ``run.json`` with the error: in the runs directory if that can be written, else in
    :func:`fallback_runs_dir`. Returns ``error`` with ``run_dir`` set to where the record went (None
    if nowhere could be written; the error still reaches stderr through the caller)."""
    redactor = Redactor.from_environment()
    now = _utc()
    record = {
        "command": command,
        "argv": redact_argv(list(argv if argv is not None else sys.argv), redactor),
        "gradesync_version": __version__,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started_at": now,
        "finished_at": now,
        "status": "failed",
        "exit_code": int(error.exit_code),
        "error": error.as_dict(),
        "state_dir": str(options.state_dir),
        "runs_dir": str(options.runs_dir),
        "summary": None,
        "reports": {},
    }
    error.run_dir = None  # type: ignore[attr-defined]
    for root in (options.runs_dir, None):
        try:
            run_dir, run_id = create_run_dir(root if root is not None else fallback_runs_dir())
            text = redactor(json.dumps({"run_id": run_id, "run_dir": str(run_dir), **record}, indent=2))
            (run_dir / RUN_JSON).write_text(text + "\n", encoding="utf-8")
        except OSError:
            continue
        error.run_dir = run_dir  # type: ignore[attr-defined]
        log.info("%s could not start [%s]: %s (recorded in %s)", command, error.code, error.message, run_dir)
        break
    return error


def _outcome_of(exc: BaseException | None) -> RunOutcome:
    """The outcome of a run whose body raised (or ended without saying)."""
    code = exit_code_of(exc)
    if isinstance(exc, GradesyncError):
        return RunOutcome(code, exc.as_dict())
    if exc is None:
        return RunOutcome(code)
    error: dict[str, str | None]
    if code == ExitCode.INTERNAL:
        error = {
            "code": "internal-error",
            "message": f"{type(exc).__name__}: {exc}",
            "hint": "a bug in gradesync",
        }
    else:
        error = {"code": "interrupted", "message": type(exc).__name__, "hint": None}
    return RunOutcome(code, error)


def _finish(run: Run, outcome: RunOutcome, exc: BaseException | None) -> Path | None:
    """Log the outcome, write the final ``run.json`` and prune; never raises (the run's own exit wins)."""
    reports = {name: Path(p) for name, p in outcome.reports.items()}
    summary_path = reports.get("summary.json")
    try:
        if outcome.error:
            log.error(
                "%s [%s]: %s",
                run.command,
                outcome.error.get("code"),
                outcome.error.get("message"),
                extra={"error_code": outcome.error.get("code")},
                exc_info=exc if outcome.exit_code == ExitCode.INTERNAL else None,
            )
        if outcome.summary is not None:
            _log_summary(outcome.summary)
        plan_file = outcome.plan or run.plan_path
        run.write_record(
            finished_at=_utc(),
            status="failed" if outcome.error else "finished",  # ran to its end; the verdict is exit_code
            exit_code=outcome.exit_code,
            error=outcome.error,
            summary=str(summary_path) if summary_path is not None else None,
            plan=str(plan_file) if plan_file is not None else None,
            reports={name: str(p) for name, p in sorted(reports.items())},
            status_counts=outcome.status_counts,
            **outcome.extra,
        )
        log.info(
            "%s finished: exit code %d",
            run.command,
            outcome.exit_code,
            extra={"exit_code": outcome.exit_code},
        )
        deleted = prune_runs(run.options.runs_dir, run.options.keep_runs, current=run.run_dir)
        if deleted:
            log.info(
                "deleted %d old run directories (keeping %d)",
                len(deleted),
                run.options.keep_runs,
                extra={"deleted": [p.name for p in deleted]},
            )
    except Exception:  # bookkeeping must never hide the run's own outcome
        log.exception("could not finish the run's records")
    return summary_path


def _log_summary(summary: dict[str, Any]) -> None:
    counts = summary.get("status_counts") or {}
    log.info(
        "reconciliation: %s",
        ", ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "no rows",
        extra={"status_counts": counts},
    )
    stats = summary.get("graph_requests") or {}
    if stats:
        log.info(
            "graph: %s requests, %s batches, %s retries, %s throttled",
            stats.get("graph_requests", stats.get("total", "?")),
            stats.get("batches", "?"),
            stats.get("retries", summary.get("retries", "?")),
            stats.get("throttled", summary.get("throttled", "?")),
            extra={"graph_stats": stats},
        )
