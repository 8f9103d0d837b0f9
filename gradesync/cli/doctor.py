"""``gradesync doctor``: a thin command over ``gradesync.doctor`` (which decides).

It runs the checks against the configured Graph, prints the table (or JSON), and records the report
in the state directory, where ``sync`` and ``apply`` look before they start. Exit status: 0 no
critical check failed; 1 a critical check failed; 2 configuration; 3 no token, or Graph refused it;
7 Graph unreachable.
"""

from __future__ import annotations

import json

import click

from gradesync.cli.common import exit_with, handle_errors, stdout_console
from gradesync.errors import ExitCode

__all__ = ["doctor_command"]

RESULT_STYLE = {"pass": "green", "fail": "bold red", "warn": "yellow", "skip": "dim"}


@click.command("doctor")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="TOML settings file.")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False),
    help="Where the report is recorded for sync and apply [default: [apply] state_dir].",
)
@click.option(
    "--write-check",
    nargs=2,
    metavar="CLASS ASSIGNMENT",
    help="Also make one write that changes no grade, to this assignment (a class key as [match] "
    "class_by reads it, and the assignment's name): PATCH a points outcome with its own value.",
)
@click.option(
    "--classes",
    type=click.IntRange(1, 50),
    default=3,
    show_default=True,
    help="How many classes to sample (their assignments, and up to 5 graded assignments' submissions).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@handle_errors
def doctor_command(
    config_path: str | None,
    state_dir: str | None,
    write_check: tuple[str, str] | None,
    classes: int,
    as_json: bool,
) -> None:
    """Check, against the configured tenant, each assumption gradesync makes of Graph (read-only
    unless --write-check), print pass/fail with the evidence, and record it for sync and apply."""
    from rich.table import Table
    from rich.text import Text

    from gradesync.auth import token_provider
    from gradesync.config import load_settings
    from gradesync.doctor import run_doctor
    from gradesync.pipeline import make_client
    from gradesync.state.doctor import write_record

    settings = load_settings(config_path).override("apply", state_dir=state_dir)
    # a check answers in seconds: few retries
    quick = settings.graph.model_copy(update={"max_attempts": 3, "max_retry_seconds": 20.0})
    settings = settings.model_copy(update={"graph": quick})
    token = token_provider(settings)()  # one sign-in; its claims are read, never printed
    with make_client(settings, token=token, max_in_flight=1) as client:
        report = run_doctor(settings, client, lambda: token, write_check=write_check or None, classes=classes)
    where = write_record(settings.apply.state_dir, report.asdict())
    out = stdout_console()
    if as_json:
        out.print_json(json.dumps(report.asdict()))
    else:
        table = Table(title=f"gradesync doctor: {report.graph_base_url}", show_lines=True)
        for column in ("check", "critical", "result", "evidence"):
            table.add_column(column, overflow="fold")
        for c in report.checks:
            style = RESULT_STYLE.get(c.result, "")
            table.add_row(c.name, "yes" if c.critical else "", Text(c.result, style=style), Text(c.evidence))
        out.print(table)
        failed = [c.name for c in report.critical_failures]
        if failed:
            out.print(
                f"critical check(s) failed: {', '.join(failed)}; sync and apply refuse to start until "
                "gradesync doctor passes (or --ignore-doctor)",
                markup=False,
            )
    out.print(f"recorded: {where}", markup=False)
    if report.exit_code is not ExitCode.OK:
        exit_with(report.exit_code)
