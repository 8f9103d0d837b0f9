"""The command line: a thin wrapper that turns library calls into output and exit codes.

The CLI decides nothing: planning is ``gradesync.pipeline``, applying is ``gradesync.execute``,
reports are ``gradesync.report``. Exit codes are ``gradesync.errors.ExitCode``.
"""

from __future__ import annotations

from pathlib import Path

import click

from gradesync import __version__
from gradesync.cli.apply import DEFAULT_STATE_DIR, apply_command, sync_command
from gradesync.cli.auth import auth_group
from gradesync.cli.common import (
    exit_with,
    graph_client,
    handle_errors,
    progress_reporter,
    stderr_console,
    stdout_console,
)
from gradesync.cli.configcheck import config_group
from gradesync.cli.demo import demo_command
from gradesync.cli.emulator import emulator_command
from gradesync.cli.serve import serve_command  # its heavy imports (uvicorn, the app) are lazy
from gradesync.config import load_settings
from gradesync.errors import ExitCode


@click.group()
@click.version_option(__version__, prog_name="gradesync")
def cli() -> None:
    """Make Teams Assignments grades match the official gradebook."""


@cli.command("plan")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="TOML settings file.")
@click.option(
    "--out",
    "out",
    default="plan.json",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="Where to write the plan file.",
)
@click.option(
    "--report-dir",
    default="reports",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where to write plan.csv, summary.json and report.html.",
)
@click.option("--class", "class_key", help="The class every row of a wide file belongs to.")
@click.option("--sheet", help="Excel sheet to read (default: the first).")
@click.option("--strict", is_flag=True, help="Refuse the whole plan when any row is rejected.")
@click.option(
    "--state-dir",
    default=DEFAULT_STATE_DIR,
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where apply keeps its state; the plan reads what gradesync last wrote (teacher overrides).",
)
@click.option("--quiet", is_flag=True, help="Print only errors and the paths of the files written.")
@handle_errors
def plan_command(
    inputs: tuple[str, ...],
    config_path: str | None,
    out: str,
    report_dir: str,
    class_key: str | None,
    sheet: str | None,
    strict: bool,
    quiet: bool,
    state_dir: str = DEFAULT_STATE_DIR,
) -> None:
    """Dry-run preview: read INPUTS, compare with Teams and write a plan nobody has applied yet.

    Exit status: 0 every row is planned; 1 some rows are rejected (or --strict refused the plan);
    2 unreadable input or configuration; 3 no token or Graph refused it.
    """
    from gradesync.pipeline import make_plan
    from gradesync.plan import plan_is_refused
    from gradesync.plan.planfile import write_plan
    from gradesync.report import RunSummary, render_table, write_reports

    settings = load_settings(config_path).strict(strict)
    out_console, err_console = stdout_console(), stderr_console()
    with graph_client(settings) as client, progress_reporter(err_console, quiet=quiet) as progress:
        plan = make_plan(
            inputs,
            settings,
            client,
            class_key=class_key,
            sheet=sheet,
            progress=progress,
            state_dir=state_dir,
        )
        graph_stats = client.stats.asdict()
    for warning in plan.warnings:
        err_console.print(f"warning: {warning}", markup=False)
    refused = plan_is_refused(plan)
    summary = RunSummary.from_rows(
        plan.rows,
        kind="plan",
        inputs=plan.inputs,
        graph_base_url=plan.graph_base_url,
        created_at=plan.created_at,
        graph_stats=graph_stats,
        strict_refused=refused,
        dry_run=True,
    )
    paths = write_reports(plan.rows, summary, Path(report_dir), roster_gaps=plan.roster_gaps, kind="plan")
    if not refused:
        write_plan(plan, Path(out))
    if not quiet:
        render_table(summary, out_console)
        if refused:
            out_console.print(
                "plan refused: --strict and some rows are rejected; no plan file written", markup=False
            )
    if not refused:  # --quiet (as for apply and sync): errors and the paths of what was written
        out_console.print(f"plan: {out}", markup=False)
    for name, path in paths.items():
        out_console.print(f"{name}: {path}", markup=False)
    if refused or summary.has_problems:
        exit_with(ExitCode.ROWS_NOT_DONE)


cli.add_command(emulator_command, name="emulator")
cli.add_command(apply_command, name="apply")
cli.add_command(sync_command, name="sync")
cli.add_command(auth_group, name="auth")
cli.add_command(demo_command, name="demo")
cli.add_command(config_group, name="config")
cli.add_command(serve_command, name="serve")


def main() -> None:
    cli()
