"""``gradesync inspect FILE…``: how the files are understood, before anything is planned.

A thin wrapper over ``gradesync.read.inspect.inspect_inputs``: it prints the inspection (or its
JSON), writes the mapping with ``--write-mapping``, and, when a Graph connection is configured
(a token, or a configured sign-in) and ``--offline`` is not given, checks classes and assignments
against Teams for "did you mean". Nothing is written to Teams.
"""

from __future__ import annotations

import json
import os
from contextlib import nullcontext
from pathlib import Path

import click

from gradesync.auth import TOKEN_ENV
from gradesync.cli.common import graph_client, handle_errors, stderr_console, stdout_console
from gradesync.config import Settings, load_settings
from gradesync.read import PRESETS, load_mapping
from gradesync.state.mappings import saved_mapping_path

__all__ = [
    "inspect_command",
]


def _connected(settings: Settings) -> bool:
    """Whether a Graph connection is configured (a token, or a sign-in mode other than 'token')."""
    return bool(os.environ.get(TOKEN_ENV, "").strip()) or settings.auth.mode != "token"


@click.command("inspect")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="TOML settings file.")
@click.option("--class", "class_key", help="The class every row of a wide file belongs to.")
@click.option("--sheet", help="Excel sheet to read (default: the first).")
@click.option(
    "--mapping",
    "mapping_path",
    type=click.Path(dir_okay=False),
    help="A mapping TOML file, or a saved mapping's name.",
)
@click.option(
    "--format",
    "format_name",
    default="auto",
    show_default=True,
    type=click.Choice(["auto", "generic", *PRESETS]),
    help="The export format (auto: detected from the header).",
)
@click.option(
    "--write-mapping", type=click.Path(dir_okay=False), help="Write the mapping TOML here, to edit."
)
@click.option("--offline", is_flag=True, help="Do not check classes and assignments against Teams.")
@click.option("--json", "as_json", is_flag=True, help="Print the inspection as JSON.")
@handle_errors
def inspect_command(
    inputs: tuple[str, ...],
    config_path: str | None,
    class_key: str | None,
    sheet: str | None,
    mapping_path: str | None,
    format_name: str,
    write_mapping: str | None,
    offline: bool,
    as_json: bool,
) -> None:
    """Show how INPUTS are understood: the detected format and header row, each column's role and
    the assignment it maps to, the classes and id formats found, rows ignored and why.

    Exit status: 0 (it only reads); 2 an unreadable file, mapping or configuration.
    """
    from gradesync.pipeline import Pipeline

    settings = load_settings(config_path)
    mapping = None
    if mapping_path:  # a file, or the name of a mapping saved by the web app in the state directory
        mapping = load_mapping(saved_mapping_path(mapping_path, settings.apply.state_dir))
    offline = offline or not _connected(settings)
    with nullcontext() if offline else graph_client(settings) as client:  # offline: Graph is never read
        inspection = Pipeline(settings, client).inspect(  # type: ignore[arg-type]
            list(inputs),
            class_key=class_key,
            sheet=sheet,
            mapping=mapping,
            format=format_name,
            teams=not offline,
        )
    out = stdout_console()
    if as_json:
        click.echo(json.dumps(inspection.asdict(), indent=2, default=str))
    else:
        out.print(inspection.render(), markup=False, end="")
    if write_mapping:
        Path(write_mapping).write_text(inspection.mapping_toml(), encoding="utf-8")
        stderr_console().print(f"mapping: {write_mapping}", markup=False)
