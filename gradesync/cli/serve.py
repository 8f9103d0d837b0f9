"""``gradesync serve``: the registrars' web app (``gradesync.web``) on uvicorn.

Safe by default: it binds 127.0.0.1; bound to any other address it refuses to start unless Entra ID
sign-in is configured (``--signin-*`` options or their ``GRADESYNC_WEB_*`` variables). ``--demo``
starts the embedded Graph emulator with the sample tenant (as ``gradesync demo`` does) and points the
app at it, with the sample's guards lifted as ``gradesync demo`` lifts them.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from gradesync.cli.common import graph_client, handle_errors, stdout_console
from gradesync.config import load_settings
from gradesync.errors import UsageError
from gradesync.samples import sample_dir

__all__ = [
    "SAMPLE_DIR",
    "is_loopback",
    "serve_command",
]

SAMPLE_DIR = sample_dir()  # inside an installed wheel, or the checkout's sample_data/


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _secret(value: str | None, file: str | None) -> str | None:
    if file:
        return Path(file).read_text(encoding="utf-8").strip()
    return value


@contextlib.contextmanager
def _demo_emulator() -> Iterator[Any]:
    from graph_emulator import EmulatorServer, ThrottleConfig, load_tenant

    token = "demo-" + secrets.token_hex(8)  # a throwaway token for the emulator only
    with EmulatorServer(
        load_tenant(SAMPLE_DIR / "tenant.json"), token=token, throttle=ThrottleConfig.graph()
    ) as server:
        yield server, token


def _sign_in(
    host: str,
    port: int,
    public_url: str | None,
    *,
    tenant: str | None,
    client_id: str | None,
    secret_file: str | None,
    group: str | None,
    approver_group: str | None,
    authority_host: str,
) -> Any:
    """Entra ID sign-in from the options (None when none is configured); refuses a bind beyond
    loopback without it: anyone who reaches the app could write grades."""
    from gradesync.web.auth import SignIn

    signin = None
    if tenant or client_id or group:
        secret = _secret(os.environ.get("GRADESYNC_WEB_CLIENT_SECRET"), secret_file)
        if not (tenant and client_id and group and secret):
            raise UsageError(
                "sign-in needs --signin-tenant, --signin-client-id, --signin-group and a client secret "
                "(--signin-secret-file or GRADESYNC_WEB_CLIENT_SECRET)",
                code="web-signin-incomplete",
            )
        base = (public_url or f"http://{host}:{port}").rstrip("/")
        signin = SignIn(
            tenant_id=tenant,
            client_id=client_id,
            client_secret=secret,
            group=group,
            approver_group=approver_group,
            authority_host=authority_host,
            redirect_uri=f"{base}/auth/callback",
        )
    if not is_loopback(host) and signin is None:
        raise UsageError(
            f"refusing to serve on {host} without sign-in: anyone who reaches it could write grades",
            code="web-signin-required",
            hint="bind 127.0.0.1 (the default), or configure Entra ID sign-in (--signin-tenant, "
            "--signin-client-id, --signin-group, --signin-secret-file)",
        )
    return signin


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535))
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="TOML settings file.")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False),
    help="The same state directory as the nightly run: one lock, one journal, one history "
    "[default: [apply] state_dir, .gradesync/state; --demo: a temporary one].",
)
@click.option("--demo", is_flag=True, help="Start the embedded Graph emulator with the sample tenant.")
@click.option("--max-changes", help="As for apply [default: [apply], 50%].")
@click.option("--max-decreases", help="As for apply [default: [apply], 20%].")
@click.option("--min-coverage", help="As for apply [default: [apply], 60%].")
@click.option("--max-upload-mb", default=25, show_default=True, type=click.IntRange(1, 1024))
@click.option("--upload-retention-hours", default=24.0, show_default=True, type=click.FloatRange(0.01))
@click.option("--signin-tenant", envvar="GRADESYNC_WEB_TENANT", help="Entra tenant id for sign-in.")
@click.option("--signin-client-id", envvar="GRADESYNC_WEB_CLIENT_ID", help="The web app's client id.")
@click.option(
    "--signin-secret-file",
    envvar="GRADESYNC_WEB_CLIENT_SECRET_FILE",
    type=click.Path(dir_okay=False, exists=True),
    help="A file holding the web app's client secret.",
)
@click.option("--signin-group", envvar="GRADESYNC_WEB_GROUP", help="Object id of the group that may sign in.")
@click.option("--approver-group", envvar="GRADESYNC_WEB_APPROVER_GROUP", help="Object id of the approvers.")
@click.option(
    "--signin-authority-host",
    envvar="GRADESYNC_WEB_AUTHORITY_HOST",
    default="https://login.microsoftonline.com",
    show_default=True,
)
@click.option("--public-url", help="The URL browsers reach the app at (for the sign-in redirect).")
@handle_errors
def serve_command(
    host: str,
    port: int,
    config_path: str | None,
    state_dir: str | None,
    demo: bool,
    max_changes: str | None,
    max_decreases: str | None,
    min_coverage: str | None,
    max_upload_mb: int,
    upload_retention_hours: float,
    signin_tenant: str | None,
    signin_client_id: str | None,
    signin_secret_file: str | None,
    signin_group: str | None,
    approver_group: str | None,
    signin_authority_host: str,
    public_url: str | None,
) -> None:
    """Serve the registrars' web app: upload, map, preview, approve, apply, download."""
    import uvicorn

    from gradesync.web.app import WebConfig, create_app

    signin = _sign_in(
        host,
        port,
        public_url,
        tenant=signin_tenant,
        client_id=signin_client_id,
        secret_file=signin_secret_file,
        group=signin_group,
        approver_group=approver_group,
        authority_host=signin_authority_host,
    )
    if demo:  # the sample is a first load that changes most grades on purpose (see gradesync demo)
        max_changes, max_decreases = "100%", "100%"
    console = stdout_console()
    with contextlib.ExitStack() as stack:
        # the guard limits the web apply uses are [apply] settings, as for a nightly run
        settings = load_settings(config_path).override(
            "apply", max_changes=max_changes, max_decreases=max_decreases, min_coverage=min_coverage
        )
        token: str | None = None
        if demo:
            server, token = stack.enter_context(_demo_emulator())
            settings = settings.model_copy(
                update={"graph": settings.graph.model_copy(update={"base_url": server.base_url})}
            )
            if state_dir is None:
                state_dir = str(Path(stack.enter_context(tempfile.TemporaryDirectory())) / "state")
            console.print(f"demo: Graph emulator at {server.base_url} with the sample tenant", markup=False)
        state_dir = state_dir or settings.apply.state_dir

        def client_factory() -> Any:
            return graph_client(settings, token=token)

        config = WebConfig(
            settings=settings,
            client_factory=client_factory,
            state_dir=Path(state_dir),
            signin=signin,
            max_upload_bytes=max_upload_mb * 1024 * 1024,
            retention_seconds=upload_retention_hours * 3600,
            https=bool(public_url and public_url.startswith("https://")),
        )
        app = create_app(config)
        console.print(f"gradesync web app on http://{host}:{port}/ (state {state_dir})", markup=False)
        uvicorn.run(app, host=host, port=port, log_level="warning")
