"""Configuration: ``config/gradesync.toml`` validated by pydantic, overridable from the environment.

Secrets never live here: the bearer token comes from ``GRADESYNC_ACCESS_TOKEN`` (or MSAL later).
"""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gradesync.errors import ConfigError

DEFAULT_GRAPH_URL = "https://graph.microsoft.com/v1.0"
DEFAULT_CONFIG_PATH = Path("config/gradesync.toml")

StudentKey = Literal["sis_id", "student_number", "upn", "mail", "id"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GraphSettings(_Section):
    base_url: str = DEFAULT_GRAPH_URL
    timeout_seconds: float = Field(30.0, gt=0)
    max_attempts: int = Field(8, ge=1)
    max_retry_seconds: float = Field(300.0, gt=0)  # total time budget for one request's retries


class InputSettings(_Section):
    layout: Literal["auto", "long", "wide"] = "auto"
    # Explicit header names; None means "match the documented aliases".
    class_column: str | None = None
    assignment_column: str | None = None
    student_column: str | None = None
    points_column: str | None = None
    sheet: str | None = None
    # For wide files without a class column: the class key every row belongs to (also --class).
    class_key: str | None = None


class MatchSettings(_Section):
    class_by: Literal["externalId", "id", "displayName", "mailNickname"] = "externalId"
    assignment_by: Literal["displayName", "id"] = "displayName"
    student_by: list[StudentKey] = Field(default_factory=lambda: ["sis_id", "student_number", "upn", "mail"])

    @field_validator("student_by")
    @classmethod
    def _non_empty(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("student_by needs at least one identifier kind")
        if len(set(v)) != len(v):
            raise ValueError("student_by lists an identifier kind twice")
        return v


class PolicySettings(_Section):
    precision: int = Field(2, ge=0, le=6)  # decimals kept; more are rounded and noted
    clear_token: str = "CLEAR"  # noqa: S105 — a points cell holding exactly this clears the grade
    above_max: Literal["reject", "allow"] = "reject"
    excused: Literal["reject", "allow"] = "reject"
    strict: bool = False  # refuse the whole plan when any row is rejected


DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"
DEFAULT_TOKEN_CACHE = "~/.gradesync/token_cache.json"  # noqa: S105 (a path, not a secret)
# Keys that would hold a secret: refused anywhere in the TOML (secrets come from the environment or a file).
INLINE_SECRET_KEYS = frozenset(
    {
        "client_secret",
        "secret",
        "password",
        "passphrase",
        "certificate_password",
        "access_token",
        "token",
        "private_key",
        "refresh_token",
    }
)


class AuthSettings(_Section):
    """How gradesync signs in (``gradesync.auth``). Holds no secret: only where to find one."""

    # "token": only GRADESYNC_ACCESS_TOKEN; "client_credentials": the app itself (certificate or secret,
    # for unattended runs); "device_code": a person signs in once, later runs reuse the token cache.
    mode: Literal["token", "client_credentials", "device_code"] = "token"
    tenant_id: str | None = None
    client_id: str | None = None
    authority_host: str = DEFAULT_AUTHORITY_HOST
    certificate_path: str | None = None  # PEM with the private key (and certificate), or .pfx/.p12
    certificate_thumbprint: str | None = None  # SHA-1 hex; only needed when the PEM holds no certificate
    client_secret_file: str | None = None  # a file holding the client secret (else GRADESYNC_CLIENT_SECRET)
    cache_path: str = DEFAULT_TOKEN_CACHE
    # "auto": the OS's encrypted store via msal-extensions when it works, else a 0600 file; "off": the file.
    cache_encryption: Literal["auto", "off"] = "auto"
    scopes: list[str] | None = None  # None: derived from graph.base_url and the mode

    @field_validator("authority_host")
    @classmethod
    def _https_host(cls, v: str) -> str:
        if not v.startswith("https://"):
            raise ValueError(
                "authority_host must be an https:// URL such as https://login.microsoftonline.com"
            )
        return v.rstrip("/")


class Settings(_Section):
    graph: GraphSettings = GraphSettings()
    input: InputSettings = InputSettings()
    match: MatchSettings = MatchSettings()
    policy: PolicySettings = PolicySettings()
    auth: AuthSettings = AuthSettings()

    def config_hash(self) -> str:
        """A stable hash of every setting that changes what a plan contains."""
        plan_relevant = self.model_dump(mode="json", exclude={"auth"})  # how we sign in changes no plan
        canonical = json.dumps(plan_relevant, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def load_settings(path: str | Path | None = None, *, environ: dict[str, str] | None = None) -> Settings:
    """Load ``path`` (or ``config/gradesync.toml`` when it exists), then apply environment overrides."""
    env = os.environ if environ is None else environ
    data: dict = {}
    explicit = path is not None
    p = Path(path) if path is not None else DEFAULT_CONFIG_PATH
    if p.exists():
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{p}: not valid TOML: {e}", code="config-syntax") from None
    elif explicit:
        raise ConfigError(f"{p}: configuration file not found", code="config-missing")
    _refuse_inline_secrets(data, p)
    for var, key in _AUTH_ENV.items():
        if value := env.get(var, "").strip():
            data.setdefault("auth", {})[key] = value
    if url := env.get("GRADESYNC_GRAPH_URL"):
        data.setdefault("graph", {})["base_url"] = url
    try:
        return Settings.model_validate(data)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in e.errors())
        raise ConfigError(f"{p}: {problems}", code="config-invalid") from None


_AUTH_ENV = {
    "GRADESYNC_AUTH_MODE": "mode",
    "GRADESYNC_TENANT_ID": "tenant_id",
    "GRADESYNC_CLIENT_ID": "client_id",
    "GRADESYNC_AUTHORITY_HOST": "authority_host",
}


def _refuse_inline_secrets(data: dict, path: Path) -> None:
    """A secret typed into the TOML would end up in backups and version control: refuse it, by name only."""

    def walk(node: object, where: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                here = f"{where}.{key}" if where else str(key)
                if str(key).lower() in INLINE_SECRET_KEYS:
                    raise ConfigError(
                        f"{path}: {here} holds a secret inline; secrets are never read from the "
                        "configuration file",
                        code="config-inline-secret",
                        hint="delete that line and set the environment variable GRADESYNC_CLIENT_SECRET, "
                        "or put the secret in a file only this account can read and set "
                        '[auth] client_secret_file = "/path/to/file" (a certificate is better still: '
                        "[auth] certificate_path)",
                    )
                walk(value, here)

    walk(data, "")
