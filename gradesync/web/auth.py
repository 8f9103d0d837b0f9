"""Sign-in for the web app: Microsoft Entra ID, MSAL's authorization-code flow with PKCE.

``/auth/login`` starts ``ConfidentialClientApplication.initiate_auth_code_flow`` (MSAL adds PKCE,
``state`` and ``nonce``); the flow is kept **server-side** under a random key in the session, never
in the cookie. ``/auth/callback`` completes it with ``acquire_token_by_auth_code_flow``; only the ID
token's claims are kept (name, object id, ``groups``): the access token it returns is discarded, and
Graph is called with the app's own credentials from configuration, never a token a browser sees.

Access needs membership of ``group`` (an object id in the ``groups`` claim); approving a plan needs
``approver_group`` when one is set (a narrower group), else the same ``group``.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gradesync.errors import AuthError

__all__ = [
    "Authenticator",
    "SignIn",
    "msal_app",
]


@dataclass(frozen=True, slots=True)
class SignIn:
    tenant_id: str
    client_id: str
    client_secret: str  # from a file or the environment; never shown
    group: str  # object id of the group whose members may use the app
    approver_group: str | None = None  # object id of the group whose members may approve
    authority_host: str = "https://login.microsoftonline.com"
    redirect_uri: str = "http://127.0.0.1:8765/auth/callback"

    def __repr__(self) -> str:  # the secret never reaches a log or a traceback
        return f"SignIn(tenant_id={self.tenant_id!r}, client_id={self.client_id!r}, group={self.group!r})"

    @property
    def authority(self) -> str:
        return f"{self.authority_host.rstrip('/')}/{self.tenant_id}"


def msal_app(config: SignIn, **kwargs: Any) -> Any:
    """MSAL's confidential client for the web app; instance discovery only for Entra's own hosts
    (a national cloud or a test authority is taken as configured, as gradesync.auth does)."""
    import msal
    from msal.authority import WELL_KNOWN_AUTHORITY_HOSTS

    host = config.authority_host.rstrip("/").removeprefix("https://")
    return msal.ConfidentialClientApplication(
        config.client_id,
        client_credential=config.client_secret,
        authority=config.authority,
        instance_discovery=None if host in WELL_KNOWN_AUTHORITY_HOSTS else False,
        **kwargs,
    )


class Authenticator:
    """Holds the pending flows server-side and turns a completed flow into a session user.

    MSAL's recommended ``response_mode="form_post"`` has the authority POST the code to
    ``/auth/callback``; a SameSite=Lax session cookie is not sent with that cross-site POST, so the
    flow is found by its ``state`` there, redeemed, and the result parked under the flow's key. The
    browser is then sent (303) to ``/auth/finish``, a same-site GET that carries the session cookie:
    only the session that started the flow collects the user (no login CSRF)."""

    def __init__(self, config: SignIn, app_factory: Callable[[SignIn], Any] = msal_app) -> None:
        self.config = config
        self._factory = app_factory
        self._app: Any = None
        self._flows: dict[str, dict[str, Any]] = {}  # flow key → MSAL's flow (with the PKCE verifier)
        self._by_state: dict[str, str] = {}  # OAuth state → flow key
        self._done: dict[str, dict[str, Any] | AuthError] = {}  # flow key → user or refusal
        self._lock = threading.Lock()

    @property
    def app(self) -> Any:
        if self._app is None:
            self._app = self._factory(self.config)
        return self._app

    def begin(self) -> tuple[str, str]:
        """(flow key for the session, the URL to send the browser to)."""
        flow = self.app.initiate_auth_code_flow(
            scopes=[], redirect_uri=self.config.redirect_uri, response_mode="form_post"
        )
        key = secrets.token_urlsafe(24)
        with self._lock:
            self._flows[key] = flow
            self._by_state[str(flow["state"])] = key
        return key, str(flow["auth_uri"])

    def redeem(self, params: dict[str, str]) -> None:
        """The authority's POST to the callback: redeem the code; the outcome waits for ``finish``."""
        with self._lock:
            key = self._by_state.pop(str(params.get("state") or ""), None)
            flow = self._flows.pop(key or "", None)
        if key is None or flow is None:
            return
        try:
            outcome: dict[str, Any] | AuthError = self._user(
                self.app.acquire_token_by_auth_code_flow(flow, params)
            )
        except AuthError as e:
            outcome = e
        except ValueError as e:  # MSAL: state or nonce mismatch
            outcome = AuthError(f"sign-in refused: {e}"[:300], code="web-signin-refused")
        with self._lock:
            self._done[key] = outcome

    def finish(self, key: str | None) -> dict[str, Any]:
        """The session user for the flow this session started; AuthError when refused or unknown."""
        with self._lock:
            outcome = self._done.pop(key or "", None)
            if outcome is None:  # never redeemed: forget the flow too
                flow = self._flows.pop(key or "", None)
                if flow is not None:
                    self._by_state.pop(str(flow.get("state")), None)
        if outcome is None:
            raise AuthError("the sign-in expired or was started elsewhere", code="web-signin-flow")
        if isinstance(outcome, AuthError):
            raise outcome
        return outcome

    def _user(self, result: dict[str, Any]) -> dict[str, Any]:
        if "error" in result:
            raise AuthError(
                f"sign-in refused: {result.get('error')}: {str(result.get('error_description', ''))[:200]}",
                code="web-signin-refused",
            )
        claims = result.get("id_token_claims") or {}
        groups = {str(g) for g in claims.get("groups") or []}
        if self.config.group not in groups:
            raise AuthError(
                "you are signed in, but not a member of the group that may use gradesync",
                code="web-signin-not-member",
                hint="ask an administrator to add you to the gradesync registrars' group",
            )
        approver = (self.config.approver_group or self.config.group) in groups
        return {  # the access token in ``result`` is dropped here: Graph uses the app's own credentials
            "name": str(claims.get("name") or claims.get("preferred_username") or "signed-in user"),
            "username": str(claims.get("preferred_username") or ""),
            "oid": str(claims.get("oid") or ""),
            "approver": approver,
        }
