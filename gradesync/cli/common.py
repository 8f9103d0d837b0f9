"""What every CLI command shares: error-to-exit-code mapping, the Graph client from the
environment, and output that suits both a terminal (rich) and a log file (plain lines).

Only ``gradesync.cli`` imports this module (nothing below the front end does)."""

from __future__ import annotations

import functools
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click
from rich.console import Console

from gradesync.config import Settings
from gradesync.errors import ExitCode, GradesyncError

__all__ = [
    "F",
    "event_renderer",
    "exit_with",
    "graph_client",
    "handle_errors",
    "print_error",
    "print_summary",
    "progress_reporter",
    "stderr_console",
    "stdout_console",
]

F = TypeVar("F", bound=Callable[..., Any])


def stdout_console() -> Console:
    return Console(highlight=False, soft_wrap=True)


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def handle_errors(fn: F) -> F:
    """Turn a GradesyncError into one clear message on stderr and its documented exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except GradesyncError as e:
            print_error(e)
            sys.exit(int(e.exit_code))
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise  # click's own exits and usage errors keep their codes
        except KeyboardInterrupt:
            stderr_console().print("interrupted", markup=False)
            sys.exit(130)
        except Exception:
            # A bug, not a data problem: keep it apart from exit 1 ("some rows failed") so a
            # scheduler can tell them apart. The traceback never holds the token: it is only
            # ever passed as a callable and a header.
            traceback.print_exc()
            stderr_console().print(
                "internal error: this is a bug in gradesync; please report it with the output above",
                markup=False,
            )
            sys.exit(int(ExitCode.INTERNAL))

    return wrapper  # type: ignore[return-value]


def graph_client(settings: Settings, *, token: str | None = None, **kwargs: Any) -> Any:
    """The GraphClient for ``settings`` (``gradesync.pipeline.make_client``)."""
    from gradesync.pipeline import make_client

    return make_client(settings, token=token, **kwargs)


@contextmanager
def event_renderer(console: Console, *, quiet: bool = False) -> Iterator[Callable[[Any], None]]:
    """A pipeline ``Listener``: progress as rich bars on a terminal (plain lines otherwise), warnings
    as ``warning: …`` lines on ``console`` (always, even ``--quiet``)."""
    with progress_reporter(console, quiet=quiet) as progress:

        def listen(event: Any) -> None:
            if event.kind == "warning":
                console.print(f"warning: {event.message}", markup=False)
            elif event.kind == "progress":
                progress(event.message or event.stage, event.done, event.total)

        yield listen


@contextmanager
def progress_reporter(console: Console, *, quiet: bool = False) -> Iterator[Callable[[str, int, int], None]]:
    """A ``(step, done, total)`` callback: a rich progress bar on a terminal, plain lines otherwise."""
    if quiet:
        yield lambda step, done, total: None
        return
    if console.is_terminal:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        with Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=console
        ) as bar:
            tasks: dict[str, Any] = {}

            def update(step: str, done: int, total: int) -> None:
                if step not in tasks:
                    tasks[step] = bar.add_task(step, total=total or None)
                bar.update(tasks[step], completed=done, total=total or None)

            yield update
        return

    def plain(step: str, done: int, total: int) -> None:
        if done in (0, total):
            console.print(f"{step}: {done}/{total}", markup=False)

    yield plain


def print_error(err: GradesyncError) -> None:
    console = stderr_console()
    console.print(f"error [{err.code}]: {err.message}", markup=False)
    if err.hint:
        console.print(f"  hint: {err.hint}", markup=False)


def print_summary(summary: Any, out: Console) -> None:
    """The run's summary: rich tables on a terminal, readable lines in a log; then the digest and
    the guard verdict (the preview is the apply)."""
    from gradesync.report import render_table

    if out.is_terminal:
        render_table(summary, out)
        if summary.digest:
            out.print(f"plan digest: {summary.digest}", markup=False)
        for reason in summary.guard_verdict or ():
            out.print(f"apply {'would be ' if summary.kind == 'plan' else ''}refused: {reason}", markup=False)
    else:
        for line in str(summary).splitlines():
            out.print(line, markup=False)


def exit_with(code: ExitCode) -> None:
    raise click.exceptions.Exit(int(code))
