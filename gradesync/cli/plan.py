"""``gradesync plan INPUT...``: the dry-run preview (``Pipeline.plan``), printed."""

from __future__ import annotations

from typing import Any

import click

from gradesync.cli.apply import guard_options, input_options, settings_from
from gradesync.cli.common import (
    event_renderer,
    exit_with,
    graph_client,
    handle_errors,
    print_summary,
    stderr_console,
    stdout_console,
)
from gradesync.errors import ExitCode

__all__ = [
    "plan_command",
]


@click.command("plan")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(dir_okay=False))
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
@input_options
@guard_options
@handle_errors
def plan_command(
    inputs: tuple[str, ...],
    out: str,
    report_dir: str,
    class_key: str | None,
    sheet: str | None,
    strict: bool,
    config_path: str | None,
    **kw: Any,
) -> None:
    """Dry-run preview: read INPUTS, compare with Teams and write a plan nobody has applied yet.

    The preview is the apply: the guards are evaluated with the same limits, and the summary says
    whether apply would refuse the plan and why; the plan digest it shows is what apply checks.

    Exit status: 0 every row is planned and apply would go on; 1 some rows are rejected (or --strict
    refused the plan); 4 apply would refuse the plan (a guard); 2 unreadable input or configuration;
    3 no token or Graph refused it; 7 Graph unreachable; 8 the reports could not be written.
    """
    from gradesync.pipeline import Pipeline

    settings = settings_from(config_path, kw, strict=strict)
    out_console = stdout_console()
    with (
        graph_client(settings) as client,
        event_renderer(stderr_console(), quiet=kw["quiet"]) as listener,
    ):
        result = Pipeline(settings, client, listener=listener).plan(
            inputs, class_key=class_key, sheet=sheet, report_dir=report_dir, out=out
        )
    if not kw["quiet"]:
        print_summary(result.summary, out_console)
        if result.refused:
            out_console.print(
                "plan refused: --strict and some rows are rejected; no plan file written", markup=False
            )
    for name, path in result.report_paths.items():
        out_console.print(f"{name}: {path}", markup=False)
    if result.exit_code is not ExitCode.OK:
        exit_with(result.exit_code)
