"""A fleet of tenants: one TOML file per Microsoft 365 tenant in a directory (``tenants/<name>.toml``).

An operator who syncs many districts runs one ``gradesync tenant sync tenants/<name>.toml`` per
tenant from an orchestrator (Airflow, Kubernetes): each tenant is its own Graph quota, its own
sign-in, its own state directory (lock, journal, memory) and its own run history. A file says::

    tenant_id = "contoso.onmicrosoft.com"        # the district's Entra tenant (id or domain)
    client_id = "11111111-2222-3333-4444-555555555555"
    inputs = ["/srv/sis/contoso/grades.csv"]     # the SIS exports a sync reads
    state_dir = "/var/lib/gradesync/contoso/state"
    window = "01:00-05:00"                       # local time; sending stops at the end (--deadline)
    config = "../config/gradesync.toml"          # optional: the settings every tenant shares

    [credentials]                                # exactly one, always by reference
    certificate_path = "/etc/gradesync/contoso.pem"
    # client_secret_file = "/run/secrets/contoso"
    # client_secret_env = "CONTOSO_CLIENT_SECRET"   (the NAME of a variable holding the secret)
    # access_token_env = "CONTOSO_TOKEN"            (a bearer token you bring: the emulator, tests)

Relative paths are relative to the tenant file's directory, so a tenants directory with its exports
can move as a whole. Windows paths work in TOML's single-quoted strings (``'C:\\ProgramData\\…'``).
Nothing here signs in or reads an export: :func:`check_tenants` says what is wrong or missing,
:meth:`Tenant.settings` turns a tenant into the ``Settings`` of its sync.
"""

from __future__ import annotations

import ntpath
import posixpath
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePath, PureWindowsPath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gradesync.config import INLINE_SECRET_KEYS, Settings, load_settings
from gradesync.errors import ConfigError

__all__ = [
    "Credentials",
    "Tenant",
    "TenantCheck",
    "TenantFile",
    "check_tenants",
    "load_tenant",
    "parse_tenant",
    "tenant_files",
]

_WINDOW = re.compile(r"^\s*([01]?\d|2[0-3]):([0-5]\d)\s*-\s*([01]?\d|2[0-3]):([0-5]\d)\s*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SECRET_ENV = "GRADESYNC_CLIENT_SECRET"  # noqa: S105 - the name of a variable, not a secret
TOKEN_ENV = "GRADESYNC_ACCESS_TOKEN"  # noqa: S105 - the name of a variable, not a token


class Credentials(BaseModel):
    """Where the tenant's credential is: a file or the name of an environment variable, never the
    secret itself (a configuration file ends up in backups and version control)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    certificate_path: str | None = None
    client_secret_file: str | None = None
    client_secret_env: str | None = None
    access_token_env: str | None = None

    @field_validator("client_secret_env", "access_token_env")
    @classmethod
    def _a_variable_name(cls, v: str | None) -> str | None:
        if v is not None and not _ENV_NAME.match(v):
            raise ValueError("must be the NAME of an environment variable (letters, digits, _), not a value")
        return v

    @model_validator(mode="after")
    def _exactly_one(self) -> Credentials:
        given = [k for k, v in self.model_dump().items() if v]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of certificate_path, client_secret_file, client_secret_env, "
                f"access_token_env (found {', '.join(given) or 'none'})"
            )
        return self

    @property
    def kind(self) -> str:
        return next(k for k, v in self.model_dump().items() if v)

    def describe(self) -> str:
        """Where the credential is, for ``config check`` (a name or a path, never a value)."""
        return {
            "certificate_path": "a certificate",
            "client_secret_file": "a client secret file",
            "client_secret_env": f"a client secret from ${self.client_secret_env}",
            "access_token_env": f"a token from ${self.access_token_env}",
        }[self.kind]


class TenantFile(BaseModel):
    """The keys of one ``tenants/<name>.toml`` (paths as written; :class:`Tenant` resolves them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_id: str = Field(min_length=1)
    client_id: str | None = None  # required unless credentials is access_token_env
    inputs: list[str] = Field(min_length=1)
    state_dir: str = Field(min_length=1)
    runs_dir: str | None = None  # default: "runs" beside state_dir
    window: str | None = None  # "HH:MM-HH:MM" local time
    config: str | None = None  # a gradesync.toml every tenant may share
    graph_url: str | None = None  # a national cloud's Graph (default: the config's [graph] base_url)
    credentials: Credentials

    @field_validator("window")
    @classmethod
    def _window(cls, v: str | None) -> str | None:
        if v is not None:
            m = _WINDOW.match(v)
            if m is None:
                raise ValueError('must be "HH:MM-HH:MM" (local time), e.g. "01:00-05:00"')
            if (int(m[1]), m[2]) == (int(m[3]), m[4]):
                raise ValueError("starts and ends at the same minute")
        return v

    @model_validator(mode="after")
    def _client_for_sign_in(self) -> TenantFile:
        if self.credentials.kind != "access_token_env" and not self.client_id:
            raise ValueError("client_id is required to sign in with a certificate or a client secret")
        return self


@dataclass(frozen=True)
class Tenant:
    """One tenant with its paths resolved against its file's directory (``PureWindowsPath`` ones
    when the file is one: the tests check Windows paths on any machine)."""

    name: str
    file: PurePath
    spec: TenantFile
    inputs: tuple[PurePath, ...]
    state_dir: PurePath
    runs_dir: PurePath
    config: PurePath | None
    credential_path: PurePath | None  # certificate_path or client_secret_file, resolved

    @property
    def window(self) -> tuple[str, str] | None:
        """(start, end) as "HH:MM", or None."""
        if self.spec.window is None:
            return None
        m = _WINDOW.match(self.spec.window)
        assert m is not None  # validated
        return f"{int(m[1]):02d}:{m[2]}", f"{int(m[3]):02d}:{m[4]}"

    def settings(self, environ: Mapping[str, str] | None = None) -> Settings:
        """The shared config (if any), then this tenant's sign-in, Graph, state, runs and deadline."""
        base = load_settings(str(self.config) if self.config else None, environ=environ)
        kind = self.spec.credentials.kind
        auth: dict[str, Any] = {"tenant_id": self.spec.tenant_id, "client_id": self.spec.client_id}
        if kind == "certificate_path":
            auth.update(mode="client_credentials", certificate_path=str(self.credential_path))
        elif kind == "client_secret_file":
            auth.update(mode="client_credentials", client_secret_file=str(self.credential_path))
        elif kind == "client_secret_env":
            auth.update(mode="client_credentials")
        else:
            auth.update(mode="token")
        settings = base.override("auth", **auth)
        settings = settings.override("graph", base_url=self.spec.graph_url)
        window = self.window
        settings = settings.override(
            "apply", state_dir=str(self.state_dir), deadline=window[1] if window else None
        )
        return settings.override("run", runs_dir=str(self.runs_dir))

    def secret_environment(self, environ: Mapping[str, str]) -> dict[str, str]:
        """The variables this tenant's sync reads its secret from (``GRADESYNC_CLIENT_SECRET`` or
        ``GRADESYNC_ACCESS_TOKEN``), taken from the variable the file names; empty for a file
        credential. Raises ``ConfigError`` (exit 2) when the named variable is not set."""
        creds = self.spec.credentials
        for name, target in ((creds.client_secret_env, SECRET_ENV), (creds.access_token_env, TOKEN_ENV)):
            if name:
                value = environ.get(name, "").strip()
                if not value:
                    raise ConfigError(
                        f"tenant {self.name}: the environment variable {name} (its credential) is not set",
                        code="tenant-credential-missing",
                        hint=f"set {name} in the environment the orchestrator gives this task",
                    )
                return {target: value}
        return {}


def _resolve(base: PurePath, value: str) -> PurePath:
    """``value`` as a path of ``base``'s kind, relative to ``base``; ``..`` folded lexically."""
    path = type(base)(value)
    if not path.is_absolute():
        path = base / path
    fold = ntpath.normpath if isinstance(path, PureWindowsPath) else posixpath.normpath
    return type(base)(fold(str(path)))


def parse_tenant(text: str, file: PurePath) -> Tenant:
    """A tenant from the TOML ``text`` of ``file`` (which need not exist: paths only)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(
            f"{file}: not valid TOML: {e}",
            code="config-syntax",
            hint="write Windows paths in single quotes ('C:\\ProgramData\\gradesync'), or with forward "
            "slashes: in double quotes a backslash starts an escape",
        ) from None
    _refuse_inline_secrets(data, file)
    try:
        spec = TenantFile.model_validate(data)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(map(str, x['loc'])) or 'file'}: {x['msg'].removeprefix('Value error, ')}"
            for x in e.errors()
        )
        raise ConfigError(f"{file}: {problems}", code="tenant-invalid") from None
    base = file.parent
    state = _resolve(base, spec.state_dir)
    creds = spec.credentials
    cred_file = creds.certificate_path or creds.client_secret_file
    return Tenant(
        name=file.stem,
        file=file,
        spec=spec,
        inputs=tuple(_resolve(base, p) for p in spec.inputs),
        state_dir=state,
        runs_dir=_resolve(base, spec.runs_dir) if spec.runs_dir else state.parent / "runs",
        config=_resolve(base, spec.config) if spec.config else None,
        credential_path=_resolve(base, cred_file) if cred_file else None,
    )


def load_tenant(path: str | Path) -> Tenant:
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(
            f"{file}: cannot be read ({e.strerror or type(e).__name__})", code="tenant-missing"
        ) from None
    return parse_tenant(text, Path(file.resolve()))


def tenant_files(directory: str | Path) -> list[Path]:
    """``*.toml`` in ``directory``, by name (one tenant each)."""
    root = Path(directory)
    if not root.is_dir():
        raise ConfigError(f"{root}: not a directory of tenant files", code="tenant-dir-missing")
    return sorted(p for p in root.glob("*.toml") if p.is_file())


@dataclass
class TenantCheck:
    """What ``gradesync config check --tenants`` found in one file: ``problems`` make it unusable
    (exit 2); ``warnings`` are things missing on this machine that the orchestrator's may have."""

    file: Path
    tenant: Tenant | None = None
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_tenants(directory: str | Path, environ: Mapping[str, str]) -> list[TenantCheck]:
    """Validate every tenant file of ``directory``: its keys, its shared config, and that no two
    tenants share a tenant id (one quota) or a state directory (one lock and journal)."""
    checks: list[TenantCheck] = []
    for file in tenant_files(directory):
        check = TenantCheck(file)
        checks.append(check)
        try:
            check.tenant = tenant = load_tenant(file)
            tenant.settings(environ)  # the shared config must load and accept the tenant's values
        except ConfigError as e:
            check.problems.append(e.message + (f" — {e.hint}" if e.hint else ""))
            continue
        check.warnings += _missing_on_this_machine(tenant, environ)
    _refuse_shared(
        checks, lambda t: t.spec.tenant_id.lower(), "tenant id", "they would share one Graph quota"
    )
    _refuse_shared(checks, lambda t: str(t.state_dir), "state_dir", "they would share one lock and journal")
    return checks


def _missing_on_this_machine(tenant: Tenant, environ: Mapping[str, str]) -> list[str]:
    out = []
    creds = tenant.spec.credentials
    if tenant.credential_path is not None and not Path(tenant.credential_path).is_file():
        out.append(f"{creds.kind} {tenant.credential_path} does not exist here")
    for name in (creds.client_secret_env, creds.access_token_env):
        if name and not environ.get(name, "").strip():
            out.append(f"the environment variable {name} is not set here")
    out += [f"input {p} does not exist (yet)" for p in tenant.inputs if not Path(p).is_file()]
    return out


def _refuse_shared(checks: list[TenantCheck], key: Any, what: str, why: str) -> None:
    seen: dict[str, TenantCheck] = {}
    for check in checks:
        if check.tenant is None:
            continue
        k = key(check.tenant)
        if k in seen:
            check.problems.append(f"same {what} as {seen[k].file.name}: {why}")
        else:
            seen[k] = check


def _refuse_inline_secrets(data: dict[str, Any], file: PurePath) -> None:
    for where, key in _keys(data, ""):
        if key.lower() in INLINE_SECRET_KEYS:
            raise ConfigError(
                f"{file}: {where} holds a secret inline; secrets are never read from a tenant file",
                code="config-inline-secret",
                hint='name where it is instead: [credentials] client_secret_env = "VARIABLE", '
                "client_secret_file or certificate_path",
            )


def _keys(node: Any, where: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{where}.{key}" if where else str(key)
            out.append((here, str(key)))
            out += _keys(value, here)
    return out
