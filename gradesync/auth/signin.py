"""Sign-in to Microsoft Graph through MSAL, and the token provider the Graph client calls.

Order of precedence for a token:

1. ``GRADESYNC_ACCESS_TOKEN`` — used as is (tests, the emulator, bring-your-own-token);
2. ``[auth] mode``:

   * ``client_credentials`` — the app signs in as itself (unattended runs): a certificate
     (``certificate_path``, preferred) or a client secret (``GRADESYNC_CLIENT_SECRET`` or
     ``client_secret_file``); scope ``{graph}/.default``;
   * ``device_code`` — a person signs in once with ``gradesync auth login``; the token cache lets later
     runs sign in silently (refresh token); scopes ``EduAssignments.ReadWrite EduRoster.ReadBasic``;
   * ``token`` — nothing but the environment variable.

MSAL's ``error``/``error_description`` become an :class:`~gradesync.errors.AuthError` (exit 3) with a
hint. No secret, token or certificate is ever put into a message, a log line or a ``repr``: messages
from the identity provider are also scrubbed of the values this process knows to be secret.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from gradesync.auth.cache import TokenStore, open_token_store
from gradesync.config import Settings
from gradesync.errors import AuthError, ConfigError

__all__ = [
    "APPLICATION_PERMISSIONS",
    "CERT_PASSWORD_ENV",
    "DELEGATED_PERMISSIONS",
    "RENEW_MARGIN_SECONDS",
    "SECRET_ENV",
    "TOKEN_ENV",
    "AuthStatus",
    "CachedToken",
    "SignIn",
    "StaticTokenProvider",
    "TokenInfo",
    "TokenProvider",
    "graph_resource",
    "log",
    "scopes_for",
    "token_provider",
]

log = logging.getLogger(__name__)

TOKEN_ENV = "GRADESYNC_ACCESS_TOKEN"  # noqa: S105 (variable names, not secrets)
SECRET_ENV = "GRADESYNC_CLIENT_SECRET"  # noqa: S105
CERT_PASSWORD_ENV = "GRADESYNC_CERTIFICATE_PASSWORD"  # noqa: S105

#: Delegated permissions a person's token needs (resource prefix added from ``graph.base_url``).
DELEGATED_PERMISSIONS = ("EduAssignments.ReadWrite", "EduRoster.ReadBasic")
#: Application permissions an admin grants the app registration (requested through ``/.default``).
APPLICATION_PERMISSIONS = ("EduAssignments.ReadWrite.All", "EduRoster.Read.All")
#: A memoised token is renewed this many seconds before it expires.
RENEW_MARGIN_SECONDS = 120

_PRIVATE_KEY_PEM = re.compile(
    r"-----BEGIN (?P<kind>(?:RSA |EC |ENCRYPTED )?)PRIVATE KEY-----.+?-----END (?P=kind)PRIVATE KEY-----",
    re.DOTALL,
)


def graph_resource(settings: Settings) -> str:
    """``https://graph.microsoft.com`` (or the national cloud's host) from ``graph.base_url``."""
    parts = urlsplit(settings.graph.base_url)
    return f"{parts.scheme}://{parts.netloc}"


def scopes_for(settings: Settings) -> list[str]:
    if settings.auth.scopes:
        return list(settings.auth.scopes)
    resource = graph_resource(settings)
    if settings.auth.mode == "client_credentials":
        return [f"{resource}/.default"]
    return [f"{resource}/{name}" for name in DELEGATED_PERMISSIONS]


@dataclass(frozen=True)
class TokenInfo:
    """A token MSAL gave us. ``repr`` never shows the token."""

    access_token: str = field(repr=False)
    expires_at: float  # epoch seconds (for display; renewal counts expires_in on a monotonic clock)
    source: str  # "cache" or "identity_provider"
    account: str | None = None  # the person's username (device code); None for the app itself
    client_id: str | None = None
    expires_in: float = 0.0  # seconds the token was still valid for when MSAL handed it out


@dataclass(frozen=True)
class CachedToken:
    who: str
    scopes: str
    expires_at: float


@dataclass
class AuthStatus:
    """What ``gradesync auth status`` shows; computed from the configuration and cache, no network."""

    mode: str
    authority: str | None
    client_id: str | None
    env_token: bool
    cache_location: str
    cache_kind: str
    accounts: list[str] = field(default_factory=list)
    tokens: list[CachedToken] = field(default_factory=list)
    refresh_token: bool = False
    credential: str | None = None
    usable: bool = False
    reason: str = ""


class _Credential:
    """The app's credential for MSAL. Deliberately opaque: ``repr``/``str`` name only its source."""

    __slots__ = ("_value", "kind", "source")

    def __init__(self, kind: str, source: str, value: Any) -> None:
        self.kind = kind
        self.source = source
        self._value = value

    def for_msal(self) -> Any:
        return self._value

    def secrets(self) -> list[str]:
        v = self._value
        if isinstance(v, str):
            return [v]
        return [s for k in ("private_key", "passphrase") if isinstance(s := v.get(k), str)]

    def __repr__(self) -> str:
        return f"<{self.kind} credential from {self.source}>"

    __str__ = __repr__


class SignIn:
    """Everything MSAL-shaped: builds the app lazily (it contacts the authority), acquires, reports."""

    def __init__(
        self,
        settings: Settings,
        environ: Mapping[str, str] | None = None,
        *,
        http_client: Any = None,
        prompt: TextIO | None = None,
    ) -> None:
        self.settings = settings
        self.auth = settings.auth
        self.env = os.environ if environ is None else environ
        self.scopes = scopes_for(settings)
        self._http_client = http_client
        self._prompt = prompt
        self._store: TokenStore | None = None
        self._app: Any = None
        self._credential: _Credential | None = None
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"SignIn(mode={self.auth.mode!r}, client_id={self.auth.client_id!r})"

    # ---------------------------------------------------------------- configuration

    @property
    def authority(self) -> str | None:
        if not self.auth.tenant_id:
            return None
        return f"{self.auth.authority_host}/{self.auth.tenant_id}"

    def _require_ids(self) -> tuple[str, str]:
        missing = [
            f"[auth] {key} (or {var})"
            for key, var in (("tenant_id", "GRADESYNC_TENANT_ID"), ("client_id", "GRADESYNC_CLIENT_ID"))
            if not getattr(self.auth, key)
        ]
        if missing:
            raise ConfigError(
                f"sign-in mode {self.auth.mode!r} needs " + " and ".join(missing),
                code="config-auth-missing",
                hint="tenant_id is the directory (tenant) ID or domain (contoso.onmicrosoft.com) and "
                "client_id the application (client) ID, both on the app registration's Overview page "
                "in the Microsoft Entra admin center",
            )
        return self.auth.tenant_id, self.auth.client_id  # type: ignore[return-value]

    @property
    def store(self) -> TokenStore:
        if self._store is None:
            self._store = open_token_store(self.auth.cache_path, self.auth.cache_encryption)
        return self._store

    def credential(self) -> _Credential:
        """The app's certificate (preferred) or secret, read from the file or environment named in config."""
        if self._credential is None:
            self._credential = self._load_credential()
        return self._credential

    def _load_credential(self) -> _Credential:
        auth = self.auth
        if auth.certificate_path:
            return _certificate_credential(
                Path(auth.certificate_path).expanduser(),
                auth.certificate_thumbprint,
                self.env.get(CERT_PASSWORD_ENV) or None,
            )
        if secret := self.env.get(SECRET_ENV, "").strip():
            return _Credential("secret", SECRET_ENV, secret)
        if auth.client_secret_file:
            path = Path(auth.client_secret_file).expanduser()
            try:
                secret = path.read_text(encoding="utf-8").strip()
            except OSError as e:
                raise ConfigError(
                    f"[auth] client_secret_file {path} cannot be read: {e.strerror or type(e).__name__}",
                    code="config-auth-secret-file",
                    hint="check the path and that this account may read the file",
                ) from None
            if not secret:
                raise ConfigError(
                    f"[auth] client_secret_file {path} is empty", code="config-auth-secret-file"
                )
            if os.name == "posix" and path.stat().st_mode & 0o077:
                log.warning("client secret file %s is readable by other accounts; chmod 600 it", path)
            return _Credential("secret", f"file {path}", secret)
        raise ConfigError(
            "sign-in mode 'client_credentials' needs a certificate or a client secret; none is configured",
            code="config-auth-credential-missing",
            hint=f"set [auth] certificate_path (preferred), or the environment variable {SECRET_ENV}, "
            "or [auth] client_secret_file",
        )

    def _known_secrets(self) -> list[str]:
        found = [v for v in (self.env.get(TOKEN_ENV, "").strip(), self.env.get(SECRET_ENV, "").strip()) if v]
        if self._credential is not None:
            found += self._credential.secrets()
        return found

    # ---------------------------------------------------------------- MSAL

    def _build_app(self) -> Any:
        import msal
        from msal.authority import WELL_KNOWN_AUTHORITY_HOSTS

        tenant_id, client_id = self._require_ids()
        authority = f"{self.auth.authority_host}/{tenant_id}"
        host = urlsplit(self.auth.authority_host).hostname or ""
        options: dict[str, Any] = {
            "authority": authority,
            "token_cache": self.store.cache,
            # Microsoft's instance discovery only knows Microsoft's hosts; others are the operator's choice.
            "instance_discovery": None if host in WELL_KNOWN_AUTHORITY_HOSTS else False,
        }
        if self._http_client is not None:
            options["http_client"] = self._http_client
        with self._translate(f"contacting the authority {authority}"):
            if self.auth.mode == "client_credentials":
                return msal.ConfidentialClientApplication(
                    client_id, client_credential=self.credential().for_msal(), **options
                )
            return msal.PublicClientApplication(client_id, **options)

    @property
    def app(self) -> Any:
        if self._app is None:
            self._app = self._build_app()
        return self._app

    def acquire(self, *, interactive: bool = False, force: bool = False, refresh: bool = False) -> TokenInfo:
        """A token for ``self.scopes``: from the cache when it can, else from the identity provider.

        Device code needs ``interactive`` (someone to type the code); otherwise a missing or expired
        sign-in is an AuthError telling the operator to run ``gradesync auth login``. ``force``
        (``auth login --force``) signs a person in again; ``refresh`` skips the cached *access*
        token (Graph rejected it) and gets a new one — silently, from the refresh token or the
        app's credential.
        """
        mode = self.auth.mode
        if mode == "token":
            raise AuthError(
                f"no access token: {TOKEN_ENV} is not set and [auth] mode is 'token'",
                code="auth-no-token",
                hint=f'set [auth] mode = "client_credentials" (unattended) or "device_code" (a person), '
                f"or export {TOKEN_ENV} (for the local emulator: {TOKEN_ENV}=dev, the emulator's --token)",
            )
        with self._lock:
            try:
                if mode == "client_credentials":
                    info = self._acquire_for_client(refresh=refresh)
                else:
                    info = self._acquire_delegated(interactive=interactive, force=force, refresh=refresh)
            finally:
                if self._store is not None:
                    self._store.flush()
        return info

    def _acquire_for_client(self, *, refresh: bool = False) -> TokenInfo:
        app = self.app
        with self._translate("signing in as the application"):
            if refresh:
                # acquire_token_for_client refuses force_refresh (MSAL Python: "Historically, this
                # method does not support force_refresh"; AzureAD/microsoft-authentication-library-
                # for-python#650): forget the app's cached tokens so the next call asks Entra.
                app.remove_tokens_for_client()
            result = app.acquire_token_for_client(scopes=self.scopes)  # looks in the cache first
        return self._token_info(result, account=None)

    def _acquire_delegated(self, *, interactive: bool, force: bool, refresh: bool = False) -> TokenInfo:
        app = self.app
        silent_error: dict[str, Any] | None = None
        if not force:
            with self._translate("reusing the cached sign-in"):
                for account in app.get_accounts():
                    result = app.acquire_token_silent_with_error(
                        self.scopes, account=account, force_refresh=refresh
                    )
                    if result and "access_token" in result:
                        return self._token_info(result, account=account.get("username"))
                    silent_error = result or silent_error
        if not interactive:
            said = ""
            if silent_error:
                said = f" (the cached sign-in no longer works: {self._summarise(silent_error)})"
            raise AuthError(
                f"nobody is signed in for device-code mode{said}",
                code="auth-sign-in-needed",
                hint="run `gradesync auth login` once at a terminal as the teacher or admin account; "
                f"later runs reuse the token cache at {self.store.location}",
            )
        with self._translate("starting the device-code sign-in"):
            flow = app.initiate_device_flow(scopes=self.scopes)
        if "user_code" not in flow:
            raise self._auth_error(flow, "the identity provider refused to start a device-code sign-in")
        print(flow["message"], file=self._prompt or sys.stderr, flush=True)
        with self._translate("waiting for the device-code sign-in"):
            result = app.acquire_token_by_device_flow(flow)
        info = self._token_info(result, account=None)
        accounts = app.get_accounts()
        signed_in = next((a for a in accounts if a.get("home_account_id") == _home_id(result)), None)
        for other in accounts:  # one person per cache: the new sign-in replaces earlier ones
            if signed_in is not None and other is not signed_in:
                app.remove_account(other)
        return TokenInfo(
            info.access_token,
            info.expires_at,
            info.source,
            account=(signed_in or {}).get("username") or _username(result),
            client_id=info.client_id,
            expires_in=info.expires_in,
        )

    def _token_info(self, result: dict[str, Any] | None, *, account: str | None) -> TokenInfo:
        if not result or "access_token" not in result:
            raise self._auth_error(result or {}, "sign-in failed")
        expires_in = float(result.get("expires_in", 0))
        return TokenInfo(
            access_token=result["access_token"],
            expires_at=time.time() + expires_in,
            expires_in=expires_in,
            source=str(result.get("token_source", "identity_provider")),
            account=account,
            client_id=self.auth.client_id,
        )

    # ---------------------------------------------------------------- status / logout

    def status(self) -> AuthStatus:
        """Accounts, token lifetimes and whether a run could get a token — without contacting anyone."""
        import msal

        auth = self.auth
        st = AuthStatus(
            mode=auth.mode,
            authority=self.authority,
            client_id=auth.client_id,
            env_token=bool(self.env.get(TOKEN_ENV, "").strip()),
            cache_location=str(self.store.location),
            cache_kind=self.store.kind,
        )
        cache = self.store.cache
        ct = msal.TokenCache.CredentialType
        query = {"client_id": auth.client_id} if auth.client_id else None
        users = {a.get("home_account_id"): a.get("username", "?") for a in cache.search(ct.ACCOUNT)}
        st.accounts = sorted(set(users.values()))
        now = time.time()
        for at in cache.search(ct.ACCESS_TOKEN, query=query):
            who = users.get(at.get("home_account_id"), "the application")
            st.tokens.append(CachedToken(who, at.get("target", ""), float(at.get("expires_on", now))))
        st.refresh_token = any(True for _ in cache.search(ct.REFRESH_TOKEN, query=query))
        valid_token = any(t.expires_at > now + RENEW_MARGIN_SECONDS for t in st.tokens)
        if st.env_token:
            st.usable, st.reason = True, f"{TOKEN_ENV} is set; runs use it as is"
        elif auth.mode == "token":
            st.reason = f"{TOKEN_ENV} is not set and [auth] mode is 'token'"
        elif not (auth.tenant_id and auth.client_id):
            st.reason = "[auth] tenant_id and client_id are required for this mode"
        elif auth.mode == "client_credentials":
            try:
                st.credential = repr(self.credential())
                st.usable, st.reason = True, "the app signs in by itself with its credential"
            except ConfigError as e:
                st.reason = e.message
        elif st.refresh_token or valid_token:
            st.usable = True
            st.reason = "a cached sign-in lets runs get tokens silently"
        else:
            st.reason = "nobody is signed in: run `gradesync auth login`"
        return st

    def logout(self) -> list[str]:
        """Forget every cached account and token and delete the cache; returns the usernames removed."""
        import msal

        store = self.store
        names = sorted(
            {a.get("username", "?") for a in store.cache.search(msal.TokenCache.CredentialType.ACCOUNT)}
        )
        store.clear()
        self._app = None
        return names

    # ---------------------------------------------------------------- errors

    def _scrub(self, text: str) -> str:
        for secret in self._known_secrets():
            if len(secret) >= 4:
                text = text.replace(secret, "***")
        return text

    def _summarise(self, result: dict[str, Any]) -> str:
        error = str(result.get("error", "error"))
        description = str(result.get("error_description", "")).strip()
        lines = [ln.strip() for ln in description.splitlines() if ln.strip()]
        first = lines[0] if lines else ""
        trace = [ln for ln in lines[1:] if ln.startswith(("Trace ID", "Correlation ID"))]
        text = f"{error}: {first}" if first else error
        if trace:
            text += f" ({'; '.join(trace)})"
        return self._scrub(text)

    def _auth_error(self, result: dict[str, Any], what: str) -> AuthError:
        summary = self._summarise(result) if result else "no answer"
        code, hint = _hint_for(result, self.auth.mode, self.store.location)
        return AuthError(f"{what}: {summary}", code=code, hint=hint)

    @contextlib.contextmanager
    def _translate(self, doing: str) -> Iterator[None]:
        """MSAL raises ValueError (bad authority, bad key) and requests' errors: make them AuthErrors."""
        import requests

        try:
            yield
        except (AuthError, ConfigError):
            raise
        except requests.exceptions.RequestException as e:
            raise AuthError(
                f"{doing}: cannot reach {self.auth.authority_host} ({type(e).__name__})",
                code="auth-unreachable",
                hint="check the network, a proxy (HTTPS_PROXY) or a TLS-inspecting firewall "
                "(REQUESTS_CA_BUNDLE), and [auth] authority_host",
            ) from None
        except ValueError as e:
            raise AuthError(
                f"{doing}: {self._scrub(str(e).splitlines()[0] if str(e) else type(e).__name__)}",
                code="auth-config-rejected",
                hint="check [auth] tenant_id and authority_host (national clouds use their own host, "
                "e.g. https://login.microsoftonline.us), and the certificate file",
            ) from None


def _certificate_credential(path: Path, thumbprint: str | None, passphrase: str | None) -> _Credential:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    if path.suffix.lower() in {".pfx", ".p12"}:
        if not path.is_file():
            raise _cert_error(path, "not found")
        value: dict[str, Any] = {"private_key_pfx_path": str(path)}
        if passphrase:
            value["passphrase"] = passphrase
        return _Credential("certificate", f"certificate {path}", value)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise _cert_error(
            path, f"cannot be read ({getattr(e, 'strerror', None) or type(e).__name__})"
        ) from None
    key = _PRIVATE_KEY_PEM.search(text)
    if key is None:
        raise _cert_error(path, "holds no PEM private key")
    value = {"private_key": key.group(0)}
    if passphrase:
        value["passphrase"] = passphrase
    certs = []
    with contextlib.suppress(ValueError):
        certs = x509.load_pem_x509_certificates(text.encode())
    wanted = re.sub(r"[^0-9a-f]", "", thumbprint.lower()) if thumbprint else None
    if certs:
        cert = certs[0]
        sha1, sha256 = cert.fingerprint(hashes.SHA1()).hex(), cert.fingerprint(hashes.SHA256()).hex()  # noqa: S303
        if wanted and wanted not in (sha1, sha256):
            raise ConfigError(
                f"[auth] certificate_thumbprint does not match the certificate in {path} "
                f"(its SHA-1 thumbprint is {sha1.upper()})",
                code="config-auth-certificate",
                hint="remove certificate_thumbprint (it is read from the certificate) or fix it",
            )
        # MSAL computes the SHA-256 thumbprint from the certificate and signs with PS256.
        value["public_certificate"] = "".join(c.public_bytes(encoding=_pem()).decode() for c in certs)
        return _Credential("certificate", f"certificate {path} (SHA-1 thumbprint {sha1.upper()})", value)
    if not wanted:
        raise _cert_error(
            path, "holds a private key but no certificate, and [auth] certificate_thumbprint is not set"
        )
    value["thumbprint"] = wanted
    return _Credential("certificate", f"certificate {path} (thumbprint {wanted.upper()})", value)


def _pem() -> Any:
    from cryptography.hazmat.primitives.serialization import Encoding

    return Encoding.PEM


def _cert_error(path: Path, problem: str) -> ConfigError:
    return ConfigError(
        f"[auth] certificate_path {path} {problem}",
        code="config-auth-certificate",
        hint="give a PEM file with the private key and its certificate (or a .pfx with "
        f"{CERT_PASSWORD_ENV} for its password); upload the certificate (.cer/.pem, public part only) "
        "to the app registration under Certificates & secrets",
    )


def _home_id(result: dict[str, Any]) -> str | None:
    import base64
    import json

    info = result.get("client_info")
    if not isinstance(info, str):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(info + "=" * (-len(info) % 4)))
    except ValueError:
        return None
    return f"{data.get('uid')}.{data.get('utid')}"


def _username(result: dict[str, Any]) -> str | None:
    claims = result.get("id_token_claims") or {}
    return claims.get("preferred_username") or claims.get("upn") or claims.get("email")


def _hint_for(result: dict[str, Any], mode: str, cache_location: Path) -> tuple[str, str]:
    """(code, hint) for an MSAL error answer. AADSTS numbers are Entra ID's documented error codes."""
    error = str(result.get("error", ""))
    text = str(result.get("error_description", ""))
    codes = set(re.findall(r"AADSTS(\d+)", text)) | {str(c) for c in result.get("error_codes", []) or []}
    perms = (
        "application permissions " + " and ".join(APPLICATION_PERMISSIONS)
        if mode == "client_credentials"
        else "delegated permissions " + " and ".join(DELEGATED_PERMISSIONS)
    )
    if codes & {"7000215", "7000222"}:
        return "auth-bad-secret", (
            "the client secret is wrong or expired: create a new one under the app registration's "
            f"Certificates & secrets and update {SECRET_ENV} or the client_secret_file"
        )
    if codes & {"700027", "700024", "7000274"}:
        return "auth-bad-certificate", (
            "the certificate was not accepted: upload its public part to the app registration "
            "(Certificates & secrets), check it has not expired, and that certificate_path is its key"
        )
    if codes & {"700016"} or error == "unauthorized_client":
        return "auth-unknown-app", (
            "the application (client) ID is not known in this tenant: check [auth] client_id and "
            "tenant_id, and that the app is registered (or consented to) in the school's tenant"
        )
    if codes & {"90002", "900023", "90072"}:
        return "auth-unknown-tenant", "check [auth] tenant_id (directory ID or domain) and authority_host"
    if codes & {"65001", "65004"} or error == "consent_required":
        return "auth-consent-needed", (
            f"an administrator must grant consent to the {perms} (Entra admin center → App registrations "
            "→ API permissions → Grant admin consent)"
        )
    if codes & {"7000218"}:
        return "auth-public-client-disabled", (
            "device code needs the app registration's Authentication → 'Allow public client flows' = Yes"
        )
    if error == "invalid_scope" or codes & {"70011"}:
        return "auth-invalid-scope", (
            f"the app registration needs {perms}; check [auth] scopes (app-only uses only '/.default')"
        )
    if error in {"expired_token", "authorization_declined", "bad_verification_code"}:
        return "auth-device-code-failed", (
            "run `gradesync auth login` again and finish signing in within the time shown"
        )
    if error == "invalid_grant" or codes & {"50173", "700082", "50076", "50079"}:
        return "auth-sign-in-expired", (
            f"the cached sign-in is no longer accepted: run `gradesync auth login` (cache: {cache_location})"
        )
    if error == "invalid_client":
        return "auth-bad-credential", (
            "the identity provider rejected the app's credential: check [auth] client_id and the "
            "certificate or secret"
        )
    return "auth-failed", f"check [auth] in the configuration; the app registration needs {perms}"


class TokenProvider:
    """A callable returning a valid bearer token; thread-safe; renews shortly before expiry.

    Memoising in memory keeps the Graph client's per-request call cheap; MSAL (and its persistent
    cache) is consulted only when the token is about to expire.
    """

    def __init__(
        self, sign_in: SignIn, *, interactive: bool, clock: Callable[[], float] | None = None
    ) -> None:
        self._sign_in = sign_in
        self._interactive = interactive
        self._clock = clock or (lambda: time.monotonic())  # noqa: PLW0108 - looked up per call (tests patch it)
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at = 0.0

    def __call__(self, *, force_refresh: bool = False) -> str:
        """The memoised token; a new one shortly before it expires, or at once with ``force_refresh``
        (the Graph client asks so after a 401). "Expires" is counted on a monotonic clock from the
        token's ``expires_in``: a wall clock that jumps neither keeps an expired token nor renews early.
        """
        with self._lock:
            if force_refresh or self._token is None or self._clock() >= self._renew_at:
                # renewing a token we hold: skip MSAL's cache, whose expiry is by wall clock
                refresh = force_refresh or self._token is not None
                info = self._sign_in.acquire(interactive=self._interactive, refresh=refresh)
                self._token = info.access_token
                self._renew_at = self._clock() + info.expires_in - RENEW_MARGIN_SECONDS
            return self._token

    def __repr__(self) -> str:
        return f"TokenProvider({self._sign_in!r})"


class StaticTokenProvider:
    """``GRADESYNC_ACCESS_TOKEN`` as is."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, *, force_refresh: bool = False) -> str:
        return self._token  # nothing to renew: a rejected one ends the run with an AuthError

    def __repr__(self) -> str:
        return f"StaticTokenProvider(from {TOKEN_ENV})"


def token_provider(
    settings: Settings,
    environ: Mapping[str, str] | None = None,
    *,
    http_client: Any = None,
    interactive: bool | None = None,
    prompt: TextIO | None = None,
) -> Callable[..., str]:
    """The bearer-token source for Graph requests (see the module docstring for the order).

    Configuration problems are raised now (ConfigError, exit 2); sign-in itself happens on the first
    call, so a command that never reaches Graph never signs in. ``interactive`` (default: stdin and
    stderr are terminals) allows a device-code prompt when no cached sign-in works; unattended runs
    fail fast with a hint instead of waiting 15 minutes for nobody. ``http_client`` is handed to MSAL
    (a ``requests.Session``-like object; tests use it for their TLS certificate).
    """
    env = os.environ if environ is None else environ
    if token := env.get(TOKEN_ENV, "").strip():
        return StaticTokenProvider(token)
    sign_in = SignIn(settings, env, http_client=http_client, prompt=prompt)
    if settings.auth.mode == "token":
        sign_in.acquire()  # raises the "no token" AuthError
    sign_in._require_ids()
    if settings.auth.mode == "client_credentials":
        sign_in.credential()
    if interactive is None:
        interactive = _is_terminal(sys.stdin) and _is_terminal(sys.stderr)
    return TokenProvider(sign_in, interactive=interactive)


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
