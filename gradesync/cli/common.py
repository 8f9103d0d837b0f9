"""What every CLI command shares: error-to-exit-code mapping, the Graph client from the
environment, and output that suits both a terminal (rich) and a log file (plain lines)."""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click
from rich.console import Console

from gradesync.config import Settings
from gradesync.errors import AuthError, ExitCode, GradesyncError

F = TypeVar("F", bound=Callable[..., Any])

TOKEN_ENV = "GRADESYNC_ACCESS_TOKEN"  # noqa: S105 (the variable's name, not a secret)


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
            err = stderr_console()
            err.print(f"error [{e.code}]: {e.message}", markup=False)
            if e.hint:
                err.print(f"  hint: {e.hint}", markup=False)
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


def access_token(environ: dict[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    token = env.get(TOKEN_ENV, "").strip()
    if not token:
        raise AuthError(
            f"no access token: set {TOKEN_ENV}",
            code="auth-no-token",
            hint=f"for the local emulator: export {TOKEN_ENV}=dev (the emulator's --token)",
        )
    return token


def graph_client(settings: Settings, *, token: str | None = None, **kwargs: Any) -> Any:
    """The GraphClient for ``settings``; the token is ``token`` if given, else ``gradesync.auth``'s provider
    (``GRADESYNC_ACCESS_TOKEN``, then the configured MSAL sign-in)."""
    from gradesync.auth import token_provider
    from gradesync.graph import GraphClient, RetryPolicy
    from gradesync.logs import logging_transport, redacting

    fixed = (lambda force_refresh=False: token) if token is not None else None
    provider = redacting(fixed or token_provider(settings))
    if "transport" not in kwargs and "http" not in kwargs:  # requests are logged (never their headers)
        kwargs["transport"] = logging_transport(kwargs.get("max_in_flight", 4))
    policy = RetryPolicy(
        max_attempts=settings.graph.max_attempts, max_total_seconds=settings.graph.max_retry_seconds
    )
    return GraphClient(
        settings.graph.base_url,
        provider,
        policy=policy,
        timeout=settings.graph.timeout_seconds,
        **kwargs,
    )


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


def exit_with(code: ExitCode) -> None:
    raise click.exceptions.Exit(int(code))
