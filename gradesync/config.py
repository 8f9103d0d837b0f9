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


class Settings(_Section):
    graph: GraphSettings = GraphSettings()
    input: InputSettings = InputSettings()
    match: MatchSettings = MatchSettings()
    policy: PolicySettings = PolicySettings()

    def config_hash(self) -> str:
        """A stable hash of every setting that changes what a plan contains."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
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
    if url := env.get("GRADESYNC_GRAPH_URL"):
        data.setdefault("graph", {})["base_url"] = url
    try:
        return Settings.model_validate(data)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in e.errors())
        raise ConfigError(f"{p}: {problems}", code="config-invalid") from None
