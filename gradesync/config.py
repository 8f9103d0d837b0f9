"""Configuration: ``config/gradesync.toml`` validated by pydantic, overridable from the environment.

Secrets never live here: the bearer token comes from ``GRADESYNC_ACCESS_TOKEN`` (or MSAL later).
"""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gradesync.errors import ConfigError
from gradesync.single import MAX_PRECISION

__all__ = [
    "DEFAULT_AUTHORITY_HOST",
    "DEFAULT_CONFIG_PATH",
    "DEFAULT_GRAPH_URL",
    "DEFAULT_TOKEN_CACHE",
    "ENV_PREFIX",
    "INLINE_SECRET_KEYS",
    "SPECIFIC_ENV",
    "ApplySettings",
    "AuthSettings",
    "GraphSettings",
    "InputSettings",
    "LoadedSettings",
    "MatchSettings",
    "PolicySettings",
    "PublishSettings",
    "RunSettings",
    "Settings",
    "StudentKey",
    "SubmissionStatus",
    "load_settings",
    "load_settings_with_sources",
]

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
    # The file format: "auto" (by extension and content) or a name the read stage knows (read/).
    format: str = "auto"
    # A mapping file (TOML, ``gradesync.read.mapping``) naming the export's columns and value rules;
    # "" = none (the documented header aliases).
    mapping: str = ""
    # Value rule for fractions ("17/20") whose denominator is not the assignment's maximum:
    # "reject" (reason fraction_mismatch) or "scale" (17/20 of a 40-point assignment → 34, noted).
    fractions: Literal["reject", "scale"] = "reject"
    # A mail domain appended to a username that has none when it is matched to a Teams UPN
    # ("noah.lopez104" → "noah.lopez104@contoso.edu"): for exports whose Username column holds a
    # login name (Blackboard, Brightspace). A mapping's identifier can set its own domain.
    username_domain: str | None = None
    # Limits on one input file (README "Limits on input files", gradesync/read/limits.py): a file
    # beyond them is refused (exit 2) before it can exhaust memory or time.
    max_file_mb: int = Field(256, ge=1)  # a file's size; a OneRoster zip's members uncompressed, in all
    max_line_kb: int = Field(1024, ge=1)  # one line of a text file
    max_rows: int = Field(5_000_000, ge=1)  # rows of a text file or of a sheet
    max_cells: int = Field(25_000_000, ge=1)  # rows × columns of a text file or of a sheet's used area
    # Parse input files in a separate process with memory and time limits (the web app turns it on):
    # a reader that crashes or runs out of memory there is a clean error for that file.
    isolate: bool = False
    isolate_memory_mb: int = Field(4096, ge=256)  # the parsing process's address space
    isolate_cpu_seconds: int = Field(
        120, ge=1
    )  # its CPU time (it is stopped after 3× that + 30 s of wall time)


class MatchSettings(_Section):
    class_by: Literal["externalId", "id", "displayName", "mailNickname"] = "externalId"
    assignment_by: Literal["displayName", "id"] = "displayName"
    student_by: list[StudentKey] = Field(
        default_factory=lambda: list[StudentKey](["sis_id", "student_number", "upn", "mail"])
    )

    @field_validator("student_by")
    @classmethod
    def _non_empty(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("student_by needs at least one identifier kind")
        if len(set(v)) != len(v):
            raise ValueError("student_by lists an identifier kind twice")
        return v


class PolicySettings(_Section):
    precision: int = Field(2, ge=0)  # decimals kept; more are rounded and noted (at most MAX_PRECISION)
    clear_token: str = "CLEAR"  # noqa: S105 — a points cell holding exactly this clears the grade
    above_max: Literal["reject", "allow"] = "reject"
    excused: Literal["reject", "allow"] = "reject"
    strict: bool = False  # refuse the whole plan when any row is rejected
    # three-way sync: a grade a teacher changed in Teams since gradesync last wrote it
    teacher_override: Literal["report", "teacher-wins", "sis-wins"] = "report"
    # points cells that excuse the submission (case-insensitive, exact), e.g. ["EX"]; [] = off
    excused_marks: list[str] = Field(default_factory=list)
    # excusing deletes the submission's feedback and rubric in Teams: "refuse" such an excuse
    # (excuse_would_delete_feedback), or "delete" them and say so on the row
    excuse_feedback: Literal["refuse", "delete"] = "refuse"

    @field_validator("precision")
    @classmethod
    def _single(cls, v: int) -> int:
        if v > MAX_PRECISION:
            raise ValueError(
                f"at most {MAX_PRECISION}: Teams keeps points as a Single (a 32-bit float, 6 significant "
                f"digits for certain), so a grade below 100 keeps {MAX_PRECISION} decimals and no more"
            )
        return v

    @field_validator("excused_marks")
    @classmethod
    def _marks(cls, v: list[str]) -> list[str]:
        marks = [m.strip() for m in v]
        if any(not m for m in marks):
            raise ValueError("an excused mark cannot be blank (a blank cell already means 'no change')")
        return marks


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


SubmissionStatus = Literal["working", "submitted", "returned", "reassigned", "excused"]


class PublishSettings(_Section):
    """``--return`` publishes changed grades only for these assignments (display names or ids;
    ``["*"]`` = every assignment). Empty (the default): ``--return`` publishes nothing.

    Of those, only submissions whose status is in ``statuses`` are returned, as a teacher would
    return them after grading: turned in (``submitted``), or already ``returned`` (returned again
    only when the grade changed). ``working``, ``reassigned`` (returned for revision) and ``excused``
    submissions are left alone unless listed. ``unreturned_feedback``: a return also publishes the
    teacher's feedback and rubric not yet returned — ``"publish"`` them and say so on the row, or
    ``"refuse"`` to return such a submission."""

    assignments: list[str] = Field(default_factory=list)
    statuses: list[SubmissionStatus] = Field(
        default_factory=lambda: list[SubmissionStatus](["submitted", "returned"])
    )
    unreturned_feedback: Literal["publish", "refuse"] = "publish"


class RunSettings(_Section):
    """Unattended operation (``gradesync.state.runs``, ``gradesync.logs``): run dirs, logs, notification.

    The command-line options of the same name (``--runs-dir``, ``--keep-runs``, ``--log-format``,
    ``--log-level``, ``--notify``) override these."""

    runs_dir: str | None = None  # None: "runs" beside the state directory (.gradesync/runs)
    keep_runs: int = Field(30, ge=1)
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    notify: str | None = None  # a shell command run when a sync or apply ends
    log_file: str | None = None  # None: the run directory's gradesync.log; "-": stderr

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, v: object) -> object:
        return v.upper() if isinstance(v, str) else v


_LIMIT = r"^\s*(off|none|no|\d+(\.\d+)?\s*%?)\s*$"
_DURATION = r"^\s*(off|none|no|\d+(\.\d+)?\s*[smhd]?)\s*$"
_HHMM = r"^\s*([01]?\d|2[0-3]):[0-5]\d\s*$"


class ApplySettings(_Section):
    """How ``apply`` and ``sync`` write (``gradesync.pipeline`` builds the executor's options from it).

    The command-line options of the same name override these (``--max-changes``, ``--state-dir``, …).
    Limits are ``N`` (a count) or ``P%``; durations ``90s``, ``45m``, ``24h``, ``2d``; ``"off"``
    disables a guard."""

    state_dir: str = ".gradesync/state"  # journal, lock and memory (keep it between runs)
    # The secret that signs plan digests (state/plankey.py); None: plan.key in the state directory.
    # Give a plan's maker and its applier the same key file to apply a plan made elsewhere.
    plan_key_file: str | None = None
    max_changes: str = Field("50%", pattern=_LIMIT)
    max_decreases: str = Field("20%", pattern=_LIMIT)
    min_coverage: str = Field("60%", pattern=_LIMIT)
    # true: the input is a full export (the nightly sync), so --min-coverage applies however few
    # students it names; false: it applies only when the input names more than guards.COVERAGE_FLOOR
    # students, so a small correction file is never refused for coverage
    expect_full: bool = False
    max_plan_age: str = Field("24h", pattern=_DURATION)
    allow_clear: bool = False
    on_conflict: Literal["skip", "overwrite"] = "skip"
    verify: Literal["all", "uncertain"] = "uncertain"  # the write answers verify; see README
    max_in_flight: int = Field(4, ge=1, le=16)  # measured: benchmarks/apply_bench.py
    # No grade lands on a read older than this ("0s": read before every envelope). 5 s is measured
    # (benchmarks/guarantees_bench.py): under Graph's pace the read → write gap stays below it at a
    # few percent more reads; "60s" spends fewer reads on a quota-starved night.
    read_write_window: str = Field("5s", pattern=_DURATION)
    # Stop sending before this local time ("HH:MM", the next such moment) or after this long ("2h");
    # unsent rows are carried over (exit 6) and the next run finishes them. None: no limit.
    deadline: str | None = Field(None, pattern=_HHMM)
    max_duration: str | None = Field(None, pattern=_DURATION)
    # true: start even though the last `gradesync doctor` run found a critical check failing
    ignore_doctor: bool = False


class Settings(_Section):
    graph: GraphSettings = GraphSettings()
    input: InputSettings = InputSettings()
    match: MatchSettings = MatchSettings()
    policy: PolicySettings = PolicySettings()
    auth: AuthSettings = AuthSettings()
    publish: PublishSettings = PublishSettings()
    run: RunSettings = RunSettings()
    apply: ApplySettings = ApplySettings()

    def strict(self, on: bool = True) -> Settings:
        """These settings with ``[policy] strict`` forced on (``--strict``); unchanged when not ``on``."""
        if not on:
            return self
        return self.model_copy(update={"policy": self.policy.model_copy(update={"strict": True})})

    def override(self, section: str, **values: object) -> Settings:
        """These settings with ``[section]`` keys replaced by every value that is not None (the CLI's
        options override the file this way). Values are validated as the file's would be."""
        given = {k: v for k, v in values.items() if v is not None}
        if not given:
            return self
        current = getattr(self, section)
        try:
            updated = type(current).model_validate({**current.model_dump(), **given})
        except ValidationError as e:
            problems = "; ".join(f"{section}.{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())
            raise ConfigError(problems, code="config-invalid") from None
        return self.model_copy(update={section: updated})

    def config_hash(self) -> str:
        """A stable hash of every setting that changes what a plan contains."""
        # how we sign in, what apply --return may publish, where runs are kept and how apply writes
        # change no plan; nor do the input limits and isolation (a file is read whole, or refused)
        limits = {"max_file_mb", "max_line_kb", "max_rows", "max_cells", "isolate", "isolate_memory_mb",
                  "isolate_cpu_seconds"}  # fmt: skip
        plan_relevant = self.model_dump(
            mode="json", exclude={"auth": True, "publish": True, "run": True, "apply": True, "input": limits}
        )
        canonical = json.dumps(plan_relevant, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def load_settings(path: str | Path | None = None, *, environ: Mapping[str, str] | None = None) -> Settings:
    """Load ``path`` (or ``config/gradesync.toml`` when it exists), then apply environment overrides."""
    return load_settings_with_sources(path, environ=environ).settings


@dataclass(frozen=True)
class LoadedSettings:
    """Settings plus where each value came from: ``sources["policy.precision"]`` is ``"default"``,
    ``"file"`` or ``"env GRADESYNC_POLICY_PRECISION"``; ``path`` is the file read (None: none)."""

    settings: Settings
    sources: dict[str, str]
    path: Path | None


def load_settings_with_sources(
    path: str | Path | None = None, *, environ: Mapping[str, str] | None = None
) -> LoadedSettings:
    """:func:`load_settings`, also saying for every setting whether it is a default, from the file or
    from an environment variable (``gradesync config check`` prints it)."""
    env = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    explicit = path is not None
    p = Path(path) if path is not None else DEFAULT_CONFIG_PATH
    read_path: Path | None = None
    if p.exists():
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{p}: not valid TOML: {e}", code="config-syntax") from None
        read_path = p
    elif explicit:
        raise ConfigError(f"{p}: configuration file not found", code="config-missing")
    _refuse_inline_secrets(data, p)
    sources = {
        f"{section}.{key}": "file"
        for section, values in data.items()
        if isinstance(values, dict)
        for key in values
    }
    from_env: dict[tuple[str, str], str] = {}  # (section, key) -> variable name
    for var, key in _AUTH_ENV.items():
        if value := env.get(var, "").strip():
            data.setdefault("auth", {})[key] = value
            from_env[("auth", key)] = var
    if url := env.get("GRADESYNC_GRAPH_URL", "").strip():
        data.setdefault("graph", {})["base_url"] = url
        from_env[("graph", "base_url")] = "GRADESYNC_GRAPH_URL"
    for (section, key), (var, override) in _generic_env_overrides(env).items():
        if not isinstance(data.get(section, {}), dict):
            continue  # the file's own error (a section that is not a table) is reported below
        data.setdefault(section, {})[key] = override
        from_env[(section, key)] = var
    for (section, key), var in from_env.items():
        sources[f"{section}.{key}"] = f"env {var}"
    try:
        settings = Settings.model_validate(data)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            loc = tuple(str(x) for x in err["loc"])
            env_var = from_env.get((loc[0], loc[1])) if len(loc) >= 2 else None
            where = ".".join(loc)
            # Name the variable, never its value (it might be a mistyped secret).
            problems.append(f"{env_var} ({where}): {err['msg']}" if env_var else f"{where}: {err['msg']}")
        origin = str(p) if read_path is not None or not from_env else f"{p} + environment"
        if read_path is None and from_env:
            origin = "environment"
        raise ConfigError(f"{origin}: {'; '.join(problems)}", code="config-invalid") from None
    for field in _all_fields():
        sources.setdefault(field, "default")
    return LoadedSettings(settings, sources, read_path)


ENV_PREFIX = "GRADESYNC_"
# GRADESYNC_* variables that are not GRADESYNC_<SECTION>_<KEY> settings (kept for compatibility, or
# set by gradesync itself for a --notify command).
SPECIFIC_ENV = frozenset(
    {
        "GRADESYNC_GRAPH_URL",
        "GRADESYNC_ACCESS_TOKEN",
        "GRADESYNC_CLIENT_SECRET",
        "GRADESYNC_CERTIFICATE_PASSWORD",
        "GRADESYNC_RUN_DIR",
        "GRADESYNC_SUMMARY",
        "GRADESYNC_EXIT_CODE",
    }
)


def _all_fields() -> list[str]:
    out = []
    for section, info in Settings.model_fields.items():
        model = info.annotation
        out += [f"{section}.{key}" for key in model.model_fields]  # type: ignore[union-attr]
    return out


def _generic_env_overrides(env: Mapping[str, str]) -> dict[tuple[str, str], tuple[str, object]]:
    """``GRADESYNC_<SECTION>_<KEY>=value`` for every setting, e.g. ``GRADESYNC_POLICY_PRECISION=3``,
    ``GRADESYNC_MATCH_STUDENT_BY=sis_id,upn`` (lists are comma-separated). Empty values are ignored;
    an unknown key in a known section is an error naming the variable (a typo must not pass silently)."""
    sections = {name.upper(): name for name in Settings.model_fields}
    out: dict[tuple[str, str], tuple[str, object]] = {}
    for var in sorted(env):
        if not var.startswith(ENV_PREFIX) or var in SPECIFIC_ENV or var in _AUTH_ENV:
            continue
        rest = var[len(ENV_PREFIX) :]
        section_part, _, key_part = rest.partition("_")
        section = sections.get(section_part)
        if section is None or not key_part:
            continue
        model = Settings.model_fields[section].annotation
        fields = model.model_fields  # type: ignore[union-attr]
        key = key_part.lower()
        if key not in fields:
            known = ", ".join(f"{ENV_PREFIX}{section_part}_{k.upper()}" for k in fields)
            raise ConfigError(
                f"environment variable {var} names no setting of [{section}]",
                code="config-unknown-env",
                hint=f"the [{section}] variables are: {known}",
            )
        value = env[var].strip()
        if not value:
            continue
        annotation = str(fields[key].annotation)
        parsed: object = value
        if annotation.startswith("list[") or "list[" in annotation:
            parsed = [part.strip() for part in value.split(",") if part.strip()]
        out[(section, key)] = (var, parsed)
    return out


_AUTH_ENV = {
    "GRADESYNC_AUTH_MODE": "mode",
    "GRADESYNC_TENANT_ID": "tenant_id",
    "GRADESYNC_CLIENT_ID": "client_id",
    "GRADESYNC_AUTHORITY_HOST": "authority_host",
}


def _refuse_inline_secrets(data: dict[str, Any], path: Path) -> None:
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
