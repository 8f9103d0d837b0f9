"""``gradesync inspect FILE…``: how the files are understood, before anything is planned.

A thin wrapper over ``gradesync.read.inspect.inspect_inputs``: it prints the inspection (or its
JSON), writes the mapping with ``--write-mapping``, and, when a Graph connection is configured
(a token, or a configured sign-in) and ``--offline`` is not given, checks classes and assignments
against Teams for "did you mean". Nothing is written to Teams.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from gradesync.auth import TOKEN_ENV
from gradesync.cli.common import graph_client, handle_errors, stderr_console, stdout_console
from gradesync.config import Settings, load_settings
from gradesync.read import PRESETS, load_mapping, read_inputs
from gradesync.read.inspect import SnapshotLookup, inspect_inputs, lookup_from_snapshot


def _teams_lookup(paths: list[str], settings: Settings, **kw: object) -> SnapshotLookup | None:
    """What Teams holds for the classes the files touch; None when no connection is configured."""
    from gradesync.resolve import resolve

    if not os.environ.get(TOKEN_ENV, "").strip() and settings.auth.mode == "token":
        return None
    try:
        read = read_inputs(paths, settings, **kw)  # type: ignore[arg-type]
    except Exception:
        return None
    with graph_client(settings) as client:
        return lookup_from_snapshot(resolve(read.frame, settings, client))


@click.command("inspect")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="TOML settings file.")
@click.option("--class", "class_key", help="The class every row of a wide file belongs to.")
@click.option("--sheet", help="Excel sheet to read (default: the first).")
@click.option("--mapping", "mapping_path", type=click.Path(dir_okay=False), help="A mapping TOML file.")
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
    settings = load_settings(config_path)
    mapping = load_mapping(mapping_path) if mapping_path else None
    kw = {"class_key": class_key, "sheet": sheet, "mapping": mapping, "format": format_name}
    lookup = None if offline else _teams_lookup(list(inputs), settings, **kw)
    inspection = inspect_inputs(list(inputs), settings, lookup, **kw)  # type: ignore[arg-type]
    out = stdout_console()
    if as_json:
        click.echo(json.dumps(inspection.asdict(), indent=2, default=str))
    else:
        out.print(inspection.render(), markup=False, end="")
    if write_mapping:
        Path(write_mapping).write_text(inspection.mapping_toml(), encoding="utf-8")
        stderr_console().print(f"mapping: {write_mapping}", markup=False)
