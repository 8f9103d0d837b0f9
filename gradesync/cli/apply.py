"""``gradesync apply PLAN.json`` and ``gradesync sync INPUT...``: thin click wrappers over
``gradesync.execute.apply_plan`` (the library decides; this only wires options, lock, journal,
reports and the exit code).

Exit status: 0 every row is in its desired state; 1 some rows failed, were rejected or conflicted;
2 usage, configuration or unreadable input; 3 authentication or permission failure; 4 a safety
guard refused; 5 another run holds the lock.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from gradesync.cli.common import (
    exit_with,
    graph_client,
    handle_errors,
    progress_reporter,
    stderr_console,
    stdout_console,
)
from gradesync.config import Settings, load_settings
from gradesync.errors import ExitCode, UsageError
from gradesync.guards import (
    DEFAULT_MAX_CHANGES,
    DEFAULT_MAX_DECREASES,
    DEFAULT_MAX_PLAN_AGE,
    DEFAULT_MIN_COVERAGE,
    Limit,
    parse_duration,
)
from gradesync.state.runs import run_options, unattended_run

DEFAULT_STATE_DIR = ".gradesync/state"
DEFAULT_MAX_IN_FLIGHT = 4  # measured: benchmarks/apply_bench.py (limits off, 50 ms latency)
_OFF = ("off", "none", "no")


def _limit(text: str, option: str) -> Limit | None:
    return None if text.strip().lower() in _OFF else Limit.parse(text, option)


def _options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The options apply and sync share."""
    decorators = [
        click.option("--config", "config_path", type=click.Path(dir_okay=False), help="TOML settings file."),
        click.option(
            "--report-dir",
            default=None,
            type=click.Path(file_okay=False),
            help="Where to write reconciliation.csv, summary.json and report.html "
            "[default: the run's directory, see --runs-dir].",
        ),
        click.option(
            "--state-dir",
            default=DEFAULT_STATE_DIR,
            show_default=True,
            type=click.Path(file_okay=False),
            help="Where the journal and the lock live (keep it between runs).",
        ),
        click.option(
            "--resume", is_flag=True, help="Finish an interrupted run of this plan (never re-sends blindly)."
        ),
        click.option(
            "--on-conflict",
            type=click.Choice(["skip", "overwrite"]),
            default="skip",
            show_default=True,
            help="A grade changed in Teams since the plan: skip it (report a conflict) or overwrite it.",
        ),
        click.option(
            "--max-plan-age",
            default=DEFAULT_MAX_PLAN_AGE,
            show_default=True,
            help="Refuse a plan older than this (90m, 24h, 2d; 'off').",
        ),
        click.option(
            "--max-changes",
            default=DEFAULT_MAX_CHANGES,
            show_default=True,
            help="Refuse to overwrite more than N grades or P% of the grades the input touches ('off').",
        ),
        click.option(
            "--max-decreases",
            default=DEFAULT_MAX_DECREASES,
            show_default=True,
            help="Refuse to lower more than N grades or P% of the grades the input touches ('off').",
        ),
        click.option(
            "--min-coverage",
            default=DEFAULT_MIN_COVERAGE,
            show_default=True,
            help="Refuse when the input names fewer than N students or P% of those in the assignments "
            "it writes to ('off' for delta exports).",
        ),
        click.option(
            "--verify",
            type=click.Choice(["all", "uncertain"]),
            default="all",
            show_default=True,
            help="Read back every touched assignment after writing, or only those with an unconfirmed write.",
        ),
        click.option("--allow-clear", is_flag=True, help="Allow clearing grades (the clear token)."),
        click.option("--dry-run", is_flag=True, help="Check and report everything, write nothing."),
        click.option(
            "--return",
            "publish",
            is_flag=True,
            help="Publish: return the submissions whose grades this run wrote, so students see them "
            "(only for the assignments [publish] assignments allows).",
        ),
        click.option(
            "--max-in-flight",
            default=DEFAULT_MAX_IN_FLIGHT,
            show_default=True,
            type=click.IntRange(1, 16),
            help="$batch requests in flight at once.",
        ),
        click.option("--quiet", is_flag=True, help="Print only errors and the report paths."),
    ]
    for deco in reversed(decorators):
        fn = deco(fn)
    return fn


def _apply_options(kw: dict[str, Any]) -> Any:
    from gradesync.execute.apply import ApplyOptions

    age = kw["max_plan_age"]
    return ApplyOptions(
        on_conflict=kw["on_conflict"],
        max_changes=_limit(kw["max_changes"], "--max-changes"),
        max_decreases=_limit(kw["max_decreases"], "--max-decreases"),
        min_coverage=_limit(kw["min_coverage"], "--min-coverage"),
        allow_clear=kw["allow_clear"],
        max_plan_age=None if age.strip().lower() in _OFF else parse_duration(age),
        dry_run=kw["dry_run"],
        resume=kw["resume"],
        verify=kw["verify"],
        publish=bool(kw.get("publish")),
    )


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _run(plan: Any, settings: Settings, client: Any, kw: dict[str, Any], progress: Any) -> None:
    """Apply, write the reports, print the summary; exits with the documented code."""
    from gradesync.execute.apply import apply_plan
    from gradesync.report import RunSummary, render_table, write_reports
    from gradesync.state.journal import Journal
    from gradesync.state.memory import Memory

    options = _apply_options(kw)
    if options.publish:
        options = dataclasses.replace(options, publish_assignments=tuple(settings.publish.assignments))
        if not options.publish_assignments:
            stderr_console().print(
                "warning: --return, but [publish] assignments is empty: nothing will be returned",
                markup=False,
            )
    with (
        Journal.in_dir(kw["state_dir"]) as journal,
        Memory.in_dir(kw["state_dir"], graph_base_url=plan.graph_base_url) as memory,
    ):
        result = apply_plan(plan, client, journal=journal, options=options, progress=progress, memory=memory)
    stats = result.graph_stats
    summary = RunSummary.from_rows(
        result.rows,
        kind="reconciliation",
        inputs=plan.inputs,
        graph_base_url=plan.graph_base_url,
        created_at=_now(),
        graph_stats=stats,
        elapsed_seconds=result.elapsed_seconds,
        retries=int(stats.get("retries", 0)),
        throttled=int(stats.get("throttled", 0)),
        dry_run=result.dry_run,
    )
    paths = write_reports(
        result.rows, summary, Path(kw["report_dir"]), roster_gaps=plan.roster_gaps, kind="reconciliation"
    )
    out, err = stdout_console(), stderr_console()
    for note in result.notes:
        err.print(f"warning: {note}", markup=False)
    if not kw["quiet"]:
        if out.is_terminal:
            render_table(summary, out)
        else:
            for line in str(summary).splitlines():
                out.print(line, markup=False)
        if result.dry_run:
            out.print("dry run: nothing was written", markup=False)
    for name, path in paths.items():
        out.print(f"{name}: {path}", markup=False)
    if result.exit_code is not ExitCode.OK:
        exit_with(result.exit_code)


def _say(line: str) -> None:
    stdout_console().print(line, markup=False)


def _check_graph(plan: Any, settings: Settings) -> None:
    planned, configured = plan.graph_base_url.rstrip("/"), settings.graph.base_url.rstrip("/")
    if planned and planned != configured:
        raise UsageError(
            f"the plan was made against {planned}, but Graph is configured as {configured}",
            code="plan-graph-mismatch",
            hint="set GRADESYNC_GRAPH_URL (or graph.base_url) to the Graph the plan was made against",
        )


@click.command("apply")
@click.argument("plan_path", metavar="PLAN.json", type=click.Path(dir_okay=False))
@_options
@run_options
@handle_errors
def apply_command(plan_path: str, config_path: str | None, **kw: Any) -> None:
    """Apply a reviewed plan exactly: guards, stale-plan check, journalled $batch writes, reconciliation.

    Exit status: 0 every row is in its desired state; 1 some rows failed, were rejected or
    conflicted; 2 usage, configuration or unreadable input; 3 authentication; 4 a safety guard
    refused; 5 another run holds the lock.
    """
    from gradesync.plan.planfile import read_plan

    settings = load_settings(config_path)
    plan = read_plan(Path(plan_path))
    _check_graph(plan, settings)
    _apply_options(kw)  # option errors are usage errors, before any run starts
    with (
        unattended_run("apply", kw, settings, out=_say) as run,
        graph_client(settings, max_in_flight=kw["max_in_flight"]) as client,
        progress_reporter(stderr_console(), quiet=kw["quiet"]) as progress,
    ):
        run.keep_plan_copy(Path(plan_path))
        _run(plan, settings, client, kw, run.progress(progress))


@click.command("sync")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--class", "class_key", help="The class every row of a wide file belongs to.")
@click.option("--sheet", help="Excel sheet to read (default: the first).")
@click.option("--strict", is_flag=True, help="Refuse the whole sync when any row is rejected.")
@_options
@run_options
@handle_errors
def sync_command(
    inputs: tuple[str, ...],
    class_key: str | None,
    sheet: str | None,
    strict: bool,
    config_path: str | None,
    **kw: Any,
) -> None:
    """Plan and apply in one go (the nightly form): read INPUTS, compare with Teams, write the changes.

    The plan is saved as plan.json in the run's directory (or REPORT_DIR) first, so an interrupted
    sync can be finished with ``gradesync apply RUN_DIR/plan.json --resume``. Exit status as for
    ``apply``.
    """
    from gradesync.pipeline import make_plan
    from gradesync.plan import plan_is_refused
    from gradesync.plan.planfile import write_plan

    settings = load_settings(config_path).strict(strict)
    err = stderr_console()
    _apply_options(kw)  # option errors are usage errors, before any run starts
    with (
        unattended_run("sync", kw, settings, out=_say) as run,
        graph_client(settings, max_in_flight=kw["max_in_flight"]) as client,
        progress_reporter(err, quiet=kw["quiet"]) as reporter,
    ):
        progress = run.progress(reporter)
        plan = make_plan(
            inputs,
            settings,
            client,
            class_key=class_key,
            sheet=sheet,
            progress=progress,
            state_dir=kw["state_dir"],  # three-way sync: what gradesync last wrote
        )
        run.log_plan(plan)
        for warning in plan.warnings:
            err.print(f"warning: {warning}", markup=False)
        if plan_is_refused(plan):
            err.print("sync refused: --strict and some rows are rejected; nothing was written", markup=False)
            exit_with(ExitCode.ROWS_NOT_DONE)
        report_dir = Path(kw["report_dir"])
        report_dir.mkdir(parents=True, exist_ok=True)
        write_plan(plan, report_dir / "plan.json")
        _run(plan, settings, client, kw, progress)
