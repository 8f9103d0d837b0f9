"""``gradesync config check``: a thin command over ``gradesync.configcheck`` (which decides).

Exit status: 0 usable; 1 Graph answered with an error; 2 configuration error; 3 no token, sign-in
failed, or Graph refused the token; 7 Graph could not be reached.
"""

from __future__ import annotations

import click

from gradesync.cli.common import exit_with, handle_errors, stdout_console
from gradesync.errors import ExitCode


@click.group("config")
def config_group() -> None:
    """Inspect the configuration."""


@config_group.command("check")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="TOML settings file.")
@click.option("--no-graph", is_flag=True, help="Do not try the Graph read.")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False),
    help="The state directory a sync would use [default: [apply] state_dir].",
)
@click.option("--runs-dir", type=click.Path(file_okay=False), help="The runs directory a sync would use.")
@handle_errors
def check_command(
    config_path: str | None, no_graph: bool, state_dir: str | None, runs_dir: str | None
) -> None:
    """Validate the configuration, show every setting and its source, try one Graph read, and say
    what a sync would do. Exit status: 0 usable; 1 Graph answered with an error; 2 configuration
    error; 3 sign-in or permission failure; 7 Graph unreachable."""
    from gradesync.config import load_settings_with_sources
    from gradesync.configcheck import run_check

    console = stdout_console()
    loaded = load_settings_with_sources(config_path)
    code = run_check(
        loaded,
        graph=not no_graph,
        state_dir=state_dir or loaded.settings.apply.state_dir,
        runs_dir=runs_dir,
        say=lambda line: console.print(line, markup=False),
    )
    if code:
        exit_with(ExitCode(code))
