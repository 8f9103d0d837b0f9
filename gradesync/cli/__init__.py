"""The command line: parses arguments, calls ``gradesync.pipeline``, prints. It decides nothing.

Each subcommand lives in its own module and is imported only when it runs (``LazyGroup``), so
``gradesync --help`` imports click and nothing heavy (no pandas, msal, pydantic, uvicorn). Exit codes
are ``gradesync.errors.ExitCode``, decided once by ``gradesync.outcome.judge``.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

import click

from gradesync.version import __version__

__all__ = ["COMMANDS", "LazyGroup", "cli", "main"]

# name → (module, attribute, one-line help shown by --help without importing the module)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "plan": ("gradesync.cli.plan", "plan_command", "Dry-run preview: compare INPUTS with Teams."),
    "apply": ("gradesync.cli.apply", "apply_command", "Apply a reviewed plan exactly."),
    "sync": ("gradesync.cli.apply", "sync_command", "Plan and apply in one go (the nightly form)."),
    "undo": ("gradesync.cli.undo", "undo_command", "Put back what a run changed (preview; --apply)."),
    "tenant": ("gradesync.cli.tenant", "tenant_group", "Sync one tenant of a fleet (tenants/NAME.toml)."),
    "inspect": ("gradesync.cli.inspect", "inspect_command", "Show how an export would be read."),
    "serve": ("gradesync.cli.serve", "serve_command", "Serve the registrars' web app."),
    "auth": ("gradesync.cli.auth", "auth_group", "Sign in to Microsoft Graph, show or forget the sign-in."),
    "config": ("gradesync.cli.configcheck", "config_group", "Inspect the configuration."),
    "doctor": ("gradesync.cli.doctor", "doctor_command", "Check what gradesync assumes of Graph."),
    "demo": ("gradesync.cli.demo", "demo_command", "Sync sample_data/ into the embedded Graph emulator."),
    "emulator": ("gradesync.cli.emulator", "emulator_command", "Serve the local Graph education emulator."),
}  # fmt: skip


def _available(module: str) -> bool:
    """A command whose module is not in this build (another front end) is simply not listed."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


class LazyGroup(click.Group):
    """A click group that imports a command's module only when that command is run (or its own
    ``--help`` is asked for); the group's ``--help`` uses the one-line help in ``COMMANDS``."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name, (module, _, _) in COMMANDS.items() if _available(module))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None or not _available(entry[0]):
            return None
        command = getattr(importlib.import_module(entry[0]), entry[1])
        return command if isinstance(command, click.Command) else None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="gradesync")
def cli() -> None:
    """Make Teams Assignments grades match the official gradebook."""


def main(*args: Any) -> None:
    cli(*args)
