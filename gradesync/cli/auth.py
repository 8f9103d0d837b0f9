"""``gradesync auth login | status | logout`` — a thin wrapper over :class:`gradesync.auth.SignIn`.

Nothing here prints a token or a secret: only who signed in, which app, until when, and where the
cache lives.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import click

from gradesync.auth.signin import TOKEN_ENV, SignIn
from gradesync.cli.common import exit_with, handle_errors, stdout_console
from gradesync.config import load_settings
from gradesync.errors import ExitCode

__all__ = [
    "auth_group",
    "login_command",
    "logout_command",
    "status_command",
]

_config_option = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False), help="TOML settings file."
)


def _when(epoch: float) -> str:
    stamp = datetime.fromtimestamp(epoch, tz=UTC).astimezone().isoformat(timespec="seconds")
    minutes = int((epoch - time.time()) // 60)
    return f"{stamp} (in {minutes} min)" if minutes >= 0 else f"{stamp} (expired)"


@click.group("auth")
def auth_group() -> None:
    """Sign in to Microsoft Graph, show the cached sign-in, or forget it."""


@auth_group.command("login")
@_config_option
@click.option("--force", is_flag=True, help="Device code: sign in again even if the cached sign-in works.")
@handle_errors
def login_command(config_path: str | None, force: bool) -> None:
    """Sign in once and cache the result so later runs are silent.

    Device-code mode prints a code to enter at the sign-in page; client-credentials mode checks the
    app's certificate or secret by getting a token. Prints who signed in and until when, never the token.
    Exit status: 0 signed in; 2 configuration problem; 3 sign-in failed.
    """
    settings = load_settings(config_path)
    sign_in = SignIn(settings)
    out = stdout_console()
    info = sign_in.acquire(interactive=True, force=force)
    who = f"as {info.account}" if info.account else "as the application itself"
    fresh = "reused the cached sign-in" if info.source == "cache" else "signed in"
    out.print(f"{fresh} {who} (app {info.client_id}, {sign_in.authority})", markup=False)
    out.print(f"token valid until {_when(info.expires_at)}", markup=False)
    out.print(f"token cache: {sign_in.store.location} [{sign_in.store.kind}]", markup=False)
    if sign_in.env.get(TOKEN_ENV, "").strip():
        out.print(f"note: {TOKEN_ENV} is set, and runs use it instead of this sign-in", markup=False)


@auth_group.command("status")
@_config_option
@handle_errors
def status_command(config_path: str | None) -> None:
    """Show the sign-in mode, cached accounts and token expiry (no network).

    Exit status: 0 a run could get a token; 3 it could not (the reason is printed); 2 bad configuration.
    """
    settings = load_settings(config_path)
    st = SignIn(settings).status()
    out = stdout_console()
    out.print(f"mode: {st.mode}", markup=False)
    if st.authority:
        out.print(f"authority: {st.authority}", markup=False)
    if st.client_id:
        out.print(f"app (client) id: {st.client_id}", markup=False)
    if st.credential:
        out.print(f"credential: {st.credential}", markup=False)
    out.print(f"{TOKEN_ENV}: {'set' if st.env_token else 'not set'}", markup=False)
    out.print(f"token cache: {st.cache_location} [{st.cache_kind}]", markup=False)
    out.print(f"accounts: {', '.join(st.accounts) if st.accounts else 'none'}", markup=False)
    for token in st.tokens:
        out.print(
            f"token for {token.who} ({token.scopes}): valid until {_when(token.expires_at)}", markup=False
        )
    if st.refresh_token:
        out.print("refresh token: cached (later runs sign in silently)", markup=False)
    out.print(f"{'usable' if st.usable else 'not usable'}: {st.reason}", markup=False)
    if not st.usable:
        exit_with(ExitCode.AUTH)


@auth_group.command("logout")
@_config_option
@handle_errors
def logout_command(config_path: str | None) -> None:
    """Forget every cached account and token and delete the token cache."""
    settings = load_settings(config_path)
    sign_in = SignIn(settings)
    names = sign_in.logout()
    out = stdout_console()
    who = ", ".join(names) if names else "no accounts"
    out.print(f"signed out ({who}); removed the token cache {sign_in.store.location}", markup=False)
