"""The command line: a thin wrapper that turns library calls into output and exit codes."""

from __future__ import annotations

import click

from gradesync import __version__


@click.group()
@click.version_option(__version__, prog_name="gradesync")
def cli() -> None:
    """Make Teams Assignments grades match the official gradebook."""


def main() -> None:
    cli()
