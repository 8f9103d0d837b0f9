"""``gradesync tenant sync TENANT.toml``: one tenant of a fleet, as an orchestrator's task runs it.

Everything comes from the tenant file (``gradesync.tenants``): its sign-in and credential reference,
its exports, its state and runs directories, its window's end as the deadline. The secret is taken
from the variable the file names, and a token or secret inherited from the orchestrator's own
environment is dropped first, so one tenant's run can never sign in with another's credential.
Exit status as for ``gradesync sync`` (the README's exit-code table).
"""

from __future__ import annotations

import os

import click

from gradesync.cli.common import event_renderer, graph_client, handle_errors, stderr_console

__all__ = ["tenant_group"]


@click.group("tenant")
def tenant_group() -> None:
    """Run one tenant of a fleet (tenants/<name>.toml)."""


@tenant_group.command("sync")
@click.argument("tenant_file", metavar="TENANT.toml", type=click.Path(dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Check and report everything, write nothing.")
@click.option("--quiet", is_flag=True, help="Print only errors and the paths of the files written.")
@handle_errors
def tenant_sync_command(tenant_file: str, dry_run: bool, quiet: bool) -> None:
    """Sync one tenant as its file says (gradesync sync with the tenant's settings). Exit status
    as for sync: 0 done, 1 rows need attention, 2 configuration, 3 sign-in, 4 a guard refused,
    5 locked, 6 carried over, 7 Graph unreachable, 8 storage."""
    from gradesync.cli.apply import show_result
    from gradesync.pipeline import Pipeline
    from gradesync.tenants import SECRET_ENV, TOKEN_ENV, load_tenant

    tenant = load_tenant(tenant_file)
    secrets = tenant.secret_environment(os.environ)
    for name in (SECRET_ENV, TOKEN_ENV):
        os.environ.pop(name, None)
    os.environ.update(secrets)
    settings = tenant.settings()
    with (
        graph_client(settings) as client,
        event_renderer(stderr_console(), quiet=quiet) as listener,
    ):
        result = Pipeline(settings, client, listener=listener).sync(
            [str(p) for p in tenant.inputs],
            class_key=None,
            sheet=None,
            report_dir=None,
            dry_run=dry_run,
            publish=False,
        )
    show_result(result, quiet=quiet)
