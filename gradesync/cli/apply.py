"""``gradesync apply PLAN.json`` and ``gradesync sync INPUT...``: parse options into ``Settings``,
call ``gradesync.pipeline``, print what it returned. The pipeline decides (guards, digest, lock, run
directory, exit code); this module only wires options.

Exit status (the run's verdict, ``gradesync.outcome``): 0 every row is in its desired state; 1 some rows
need attention (failed, rejected, conflicted, a teacher's grade kept); 2 usage, configuration or
unreadable input; 3 authentication; 4 a safety guard or the plan digest refused; 5 another run holds
the lock; 6 some rows carried over (deadline, quota), nothing failed; 7 Graph unreachable;
8 storage failure (disk full, read-only, corrupt journal).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import click

from gradesync.cli.common import (
    event_renderer,
    exit_with,
    graph_client,
    handle_errors,
    print_error,
    print_summary,
    stderr_console,
    stdout_console,
)
from gradesync.config import Settings, load_settings
from gradesync.errors import ExitCode

__all__ = [
    "APPLY_KEYS",
    "INPUT_KEYS",
    "RUN_KEYS",
    "apply_command",
    "guard_options",
    "input_options",
    "settings_from",
    "show_result",
    "sync_command",
    "write_options",
]

# CLI option → [apply] key; unset options (None) leave the settings' value
APPLY_KEYS = (
    "state_dir", "max_changes", "max_decreases", "min_coverage", "max_plan_age", "expect_full",
    "allow_clear", "on_conflict", "verify", "max_in_flight", "read_write_window", "deadline", "max_duration",
    "ignore_doctor",
)  # fmt: skip
RUN_KEYS = ("runs_dir", "keep_runs", "log_format", "log_level", "log_file", "notify")
INPUT_KEYS = ("format", "mapping")


def input_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """How ``plan``, ``sync`` and ``inspect`` read an export ([input] format and mapping)."""
    fn = click.option(
        "--mapping",
        type=click.Path(dir_okay=False),
        help="A mapping TOML (gradesync inspect --write-mapping), or the name of one saved from the web "
        "app [default: [input] mapping, else NAME.mapping.toml beside the file].",
    )(fn)
    return click.option(
        "--format",
        help="The export format: auto (detected from the header), generic, or a preset name "
        "(canvas, powerschool, ...) [default: [input] format, auto].",
    )(fn)


def _flag(name: str, help_text: str) -> Callable[..., Any]:
    return click.option(name, is_flag=True, default=None, help=help_text)


def guard_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The guard and state options ``plan``, ``apply`` and ``sync`` share ([apply] settings)."""
    decorators = [
        click.option("--config", "config_path", type=click.Path(dir_okay=False), help="TOML settings file."),
        click.option("--state-dir", type=click.Path(file_okay=False),
                     help="Journal, lock and memory of what gradesync wrote [default: [apply] state_dir, "
                     ".gradesync/state]."),
        click.option("--max-plan-age", help="Refuse a plan older than this (90m, 24h, 2d; 'off') "
                     "[default: [apply], 24h]; a plan dated in the future is always refused."),
        click.option("--max-changes", help="Refuse to overwrite more than N grades or P% of the grades the "
                     "input touches ('off') [default: [apply], 50%]."),
        click.option("--max-decreases", help="Refuse to lower more than N grades or P% ('off') "
                     "[default: [apply], 20%]."),
        click.option("--min-coverage", help="Refuse when the input names fewer than N students or P% of "
                     "those in the assignments it writes to ('off') [default: [apply], 60%]."),
        _flag("--expect-full", "The input is a full export: --min-coverage applies however few students "
              "it names (else only above 20)."),
        _flag("--allow-clear", "Allow clearing grades (the clear token)."),
        click.option("--quiet", is_flag=True, help="Print only errors and the paths of the files written."),
    ]  # fmt: skip
    for deco in reversed(decorators):
        fn = deco(fn)
    return fn


def write_options(fn: Callable[..., Any], *, skip: Collection[str] = ()) -> Callable[..., Any]:
    """The options only ``apply`` and ``sync`` have (writing, unattended runs); ``skip``: the options
    (by name) a command leaves out."""
    decorators = [
        ("--report-dir", click.option("--report-dir", type=click.Path(file_okay=False),
                     help="Where to write reconciliation.csv, summary.json and report.html "
                     "[default: the run's directory, see --runs-dir].")),
        ("--on-conflict", click.option("--on-conflict", type=click.Choice(["skip", "overwrite"]),
                     help="A grade changed in Teams since it was read: skip it (report a conflict) or "
                     "overwrite it [default: [apply], skip].")),
        ("--verify", click.option("--verify", type=click.Choice(["all", "uncertain"]),
                     help="Read back every touched assignment after writing, or only those with an "
                     "unconfirmed write [default: [apply], uncertain].")),
        ("--read-write-window", click.option("--read-write-window", help="No grade lands on a read older "
                     "than this (5s; 60s on a quota-starved night; 0s: read before every envelope) "
                     "[default: [apply], 5s].")),
        ("--deadline", click.option("--deadline", metavar="HH:MM", help="Stop sending before this local "
                     "time; the rest is carried over (exit 6) to the next run.")),
        ("--max-duration", click.option("--max-duration", help="Stop sending after this long (2h); the rest "
                     "is carried over.")),
        ("--dry-run", click.option("--dry-run", is_flag=True, help="Check and report everything, write "
                     "nothing.")),
        ("--return", click.option("--return", "publish", is_flag=True,
                     help="Publish: return the submissions whose grades this run wrote, so students see "
                     "them (only for the assignments [publish] assignments allows).")),
        ("--max-in-flight", click.option("--max-in-flight", type=click.IntRange(1, 16),
                     help="$batch requests in flight at once [default: [apply], 4].")),
        ("--ignore-doctor", _flag("--ignore-doctor", "Start even though the last `gradesync doctor` run "
                     "found a critical check failing [default: [apply] ignore_doctor, false].")),
        ("--runs-dir", click.option("--runs-dir", type=click.Path(file_okay=False),
                     help="Where each run's directory is created [default: 'runs' beside --state-dir].")),
        ("--keep-runs", click.option("--keep-runs", type=click.IntRange(1),
                     help="Keep the newest N run directories, delete older ones [default: [run], 30].")),
        ("--log-format", click.option("--log-format", type=click.Choice(["text", "json"]),
                     help="The log file's format; json: one object per line [default: text].")),
        ("--log-file", click.option("--log-file", type=click.Path(dir_okay=False, allow_dash=True),
                     help="Where the log goes; '-' for stderr [default: RUN_DIR/gradesync.log].")),
        ("--log-level", click.option("--log-level",
                     type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
                     help="The least severe level logged [default: INFO].")),
        ("--notify", click.option("--notify", metavar="CMD",
                     help="A shell command run when the run ends, with the summary path as its last "
                     "argument (and GRADESYNC_SUMMARY, GRADESYNC_RUN_DIR, GRADESYNC_EXIT_CODE set).")),
    ]  # fmt: skip
    for name, deco in reversed(decorators):
        if name not in skip:
            fn = deco(fn)
    return fn


def settings_from(config_path: str | None, kw: dict[str, Any], *, strict: bool = False) -> Settings:
    """``--config`` (or the default file) with the command line's overrides applied."""
    settings = load_settings(config_path).strict(strict)
    settings = settings.override("apply", **{k: kw.get(k) for k in APPLY_KEYS})
    settings = settings.override("input", **{k: kw.get(k) for k in INPUT_KEYS})
    if kw.get("log_level"):
        kw["log_level"] = str(kw["log_level"]).upper()
    return settings.override("run", **{k: kw.get(k) for k in RUN_KEYS})


def show_result(result: Any, *, quiet: bool) -> None:
    """Print a RunResult (errors, summary, paths, run directory) and exit with its code."""
    out, err = stdout_console(), stderr_console()
    for note in result.notes:
        if note.startswith("sync refused"):
            err.print(note, markup=False)
    if result.error is not None:
        print_error(result.error)
    if result.summary is not None and not quiet:
        print_summary(result.summary, out)
        if result.dry_run:
            out.print("dry run: nothing was written", markup=False)
    for name, path in result.report_paths.items():
        out.print(f"{name}: {path}", markup=False)
    if result.run_dir is not None:
        out.print(f"run: {result.run_dir}", markup=False)
    if result.exit_code is not ExitCode.OK:
        exit_with(result.exit_code)


@click.command("apply")
@click.argument("plan_path", metavar="PLAN.json", type=click.Path(dir_okay=False))
@click.option(
    "--digest",
    "approved_digest",
    metavar="HEX",
    help="The plan digest you reviewed (12 hex digits, shown by plan): refuse any other.",
)
@click.option(
    "--resume", is_flag=True, help="Finish an interrupted run of this plan (never re-sends blindly)."
)
@guard_options
@write_options
@handle_errors
def apply_command(plan_path: str, approved_digest: str | None, config_path: str | None, **kw: Any) -> None:
    """Apply a reviewed plan exactly: digest, guards, stale-plan check, journalled $batch writes,
    reconciliation.

    Exit status: 0 every row is in its desired state; 1 some rows need attention; 2 usage,
    configuration or unreadable input; 3 authentication; 4 a safety guard or the plan digest refused;
    5 another run holds the lock; 6 rows carried over; 7 Graph unreachable; 8 storage failure.
    """
    from gradesync.pipeline import Pipeline
    from gradesync.plan.planfile import read_plan

    settings = settings_from(config_path, kw)
    plan = read_plan(Path(plan_path))
    with (
        graph_client(settings) as client,
        event_renderer(stderr_console(), quiet=kw["quiet"]) as listener,
    ):
        result = Pipeline(settings, client, listener=listener).apply(
            plan,
            approved_digest=approved_digest,
            report_dir=kw["report_dir"],
            dry_run=kw["dry_run"],
            resume=kw["resume"],
            publish=kw["publish"],
            plan_file=Path(plan_path),
        )
    show_result(result, quiet=kw["quiet"])


@click.command("sync")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--class", "class_key", help="The class every row of a wide file belongs to.")
@click.option("--sheet", help="Excel sheet to read (default: the first).")
@click.option("--strict", is_flag=True, help="Refuse the whole sync when any row is rejected.")
@input_options
@guard_options
@write_options
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
    from gradesync.pipeline import Pipeline

    settings = settings_from(config_path, kw, strict=strict)
    with (
        graph_client(settings) as client,
        event_renderer(stderr_console(), quiet=kw["quiet"]) as listener,
    ):
        result = Pipeline(settings, client, listener=listener).sync(
            inputs,
            class_key=class_key,
            sheet=sheet,
            report_dir=kw["report_dir"],
            dry_run=kw["dry_run"],
            publish=kw["publish"],
        )
    show_result(result, quiet=kw["quiet"])
