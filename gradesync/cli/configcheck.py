"""``gradesync config check``: a thin command over ``gradesync.configcheck`` (which decides).

Exit status: 0 usable; 1 Graph answered with an error; 2 configuration error; 3 no token, sign-in
failed, or Graph refused the token; 7 Graph could not be reached.
"""

from __future__ import annotations

from collections.abc import Callable

import click

from gradesync.cli.common import exit_with, handle_errors, stdout_console
from gradesync.errors import ExitCode

__all__ = [
    "check_command",
    "config_group",
]


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
@click.option(
    "--tenants",
    "tenants_dir",
    type=click.Path(file_okay=False),
    help="Validate a fleet's directory of tenant files (NAME.toml) instead; no Graph read.",
)
@handle_errors
def check_command(
    config_path: str | None,
    no_graph: bool,
    state_dir: str | None,
    runs_dir: str | None,
    tenants_dir: str | None,
) -> None:
    """Validate the configuration, show every setting and its source, try one Graph read, and say
    what a sync would do. Exit status: 0 usable; 1 Graph answered with an error; 2 configuration
    error; 3 sign-in or permission failure; 7 Graph unreachable. With --tenants: 0 every tenant
    file is usable, 2 one is not."""
    from gradesync.config import load_settings_with_sources
    from gradesync.configcheck import run_check

    console = stdout_console()
    if tenants_dir is not None:
        _check_tenants(tenants_dir, say=lambda line: console.print(line, markup=False))
        return
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


def _check_tenants(directory: str, *, say: Callable[[str], None]) -> None:
    """Each tenant file: what its sync would use, what is missing here, or why it is unusable."""
    import os

    from gradesync.tenants import check_tenants

    checks = check_tenants(directory, os.environ)
    if not checks:
        say(f"{directory}: no tenant files (NAME.toml)")
        exit_with(ExitCode.USAGE)
    for check in checks:
        tenant = check.tenant
        if tenant is None or not check.ok:
            say(f"{check.file.name}: UNUSABLE")
        else:
            window = tenant.window
            say(
                f"{tenant.name}: tenant {tenant.spec.tenant_id}, sign-in with "
                f"{tenant.spec.credentials.describe()}; {len(tenant.inputs)} input(s); "
                f"state {tenant.state_dir}; runs {tenant.runs_dir}"
                + (f"; window {window[0]}-{window[1]} (sending stops at {window[1]})" if window else "")
            )
        for problem in check.problems:
            say(f"  error: {problem}")
        for warning in check.warnings:
            say(f"  warning: {warning}")
    bad = sum(not c.ok for c in checks)
    say(f"{len(checks)} tenant(s), {bad} unusable")
    if bad:
        exit_with(ExitCode.USAGE)
