"""``gradesync undo RUN``: the preview of putting back what a run changed (``Pipeline.undo``), and
with ``--apply`` its apply (``Pipeline.apply``: the same guards, lock, journal and run directory as
any apply). The pipeline decides; this module prints."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console

from gradesync.cli.apply import guard_options, settings_from, show_result, write_options
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

__all__ = ["undo_command"]

SHOWN_ROWS = 20  # rows that cannot be undone printed before "… and N more (see the report)"
# An undo never overwrites a grade changed since the run, and returns nothing to students.
SKIPPED = ("--on-conflict", "--return")


def _print_refused(preview: Any, out: Console) -> None:
    """The rows that cannot be undone, each with why."""
    rows = preview.plan.rows
    refused = rows[rows["action"] == "reject"]
    for row in refused.head(SHOWN_ROWS).itertuples(index=False):
        who = f"{row.class_key} / {row.assignment_name or row.assignment_key} / {row.student_key}"
        out.print(f"  cannot undo {who}: {row.message}", markup=False)
    if len(refused) > SHOWN_ROWS:
        out.print(f"  … and {len(refused) - SHOWN_ROWS} more (see the report)", markup=False)


def _undo_write_options(fn: Any) -> Any:
    return write_options(fn, skip=SKIPPED)


@click.command("undo")
@click.argument("run_ref", metavar="RUN")
@click.option(
    "--apply",
    "apply_now",
    is_flag=True,
    help="Apply the undo now (the guards, lock and journal of any apply; a new run directory whose "
    "run.json records undo_of). Without it: only the preview.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    help="Write the undo plan to this file, to apply it later with `gradesync apply FILE --digest HEX`.",
)
@guard_options
@_undo_write_options
@handle_errors
def undo_command(run_ref: str, apply_now: bool, out: str | None, config_path: str | None, **kw: Any) -> None:
    """Put back what run RUN changed: RUN is a run id as listed in the runs directory, or a run
    directory's path.

    Every grade the run updated or entered goes back to its value before the run (a grade it entered
    where there was none is cleared: --allow-clear). A grade changed in Teams since the run is left
    as it is (conflict). An excuse, a grade the students have seen and a write the run never
    confirmed cannot be undone: the preview lists them, each with why.

    Exit status, preview: 0 the undo would go on; 1 some grades cannot be undone; 4 apply would refuse
    it (clears without --allow-clear, a guard); 2 no such run, or it cannot be read; 3 authentication;
    7 Graph unreachable; 8 storage. With --apply, as for `gradesync apply` (0, 1, 3, 4, 5, 6, 7, 8).
    """
    from gradesync.pipeline import Pipeline
    from gradesync.plan.undo import describe_undo

    settings = settings_from(config_path, kw)
    out_console = stdout_console()
    with (
        graph_client(settings) as client,
        event_renderer(stderr_console(), quiet=kw["quiet"]) as listener,
    ):
        pipeline = Pipeline(settings, client, listener=listener)
        preview = pipeline.undo(run_ref, report_dir=None if apply_now else kw["report_dir"], out=out)
        if not kw["quiet"]:  # the warnings about the run itself were printed as they came
            for line in describe_undo(preview.plan.rows, preview.plan.undo_of):
                out_console.print(line, markup=False)
            _print_refused(preview, out_console)
        if not apply_now:
            if not kw["quiet"]:
                print_summary(preview.summary, out_console)
            for name, path in preview.report_paths.items():
                out_console.print(f"{name}: {path}", markup=False)
            if preview.exit_code is not ExitCode.OK:
                exit_with(preview.exit_code)
            return
        result = pipeline.apply(
            preview.plan,
            approved_digest=preview.digest[:12],
            report_dir=kw["report_dir"],
            dry_run=kw["dry_run"],
        )
    show_result(result, quiet=kw["quiet"])
