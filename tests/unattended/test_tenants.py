"""A fleet's tenant files: what ``gradesync config check --tenants`` refuses and why, and
``gradesync tenant sync`` against the emulator — the tenant's own credential, never one inherited
from the orchestrator's environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from gradesync.errors import ConfigError
from gradesync.tenants import check_tenants, parse_tenant

REPO = Path(__file__).resolve().parents[2]
GRADESYNC = str(Path(sys.executable).parent / "gradesync")
GOOD = """\
tenant_id = "contoso.onmicrosoft.com"
client_id = "11111111-2222-3333-4444-555555555555"
inputs = ["grades.csv"]
state_dir = "contoso/state"
window = "1:00-05:30"
[credentials]
client_secret_env = "CONTOSO_SECRET"
"""


def _parse(text: str) -> Any:
    return parse_tenant(text, PurePosixPath("/etc/gradesync/tenants/contoso.toml"))


def test_a_tenant_becomes_its_sync_settings() -> None:
    tenant = _parse(GOOD)
    settings = tenant.settings(environ={})
    assert settings.auth.mode == "client_credentials"
    assert (settings.auth.tenant_id, settings.auth.client_id) == (
        tenant.spec.tenant_id,
        tenant.spec.client_id,
    )
    assert settings.apply.state_dir == "/etc/gradesync/tenants/contoso/state"
    assert settings.run.runs_dir == "/etc/gradesync/tenants/contoso/runs"
    assert settings.apply.deadline == "05:30"  # the window's end stops the sending
    assert tenant.window == ("01:00", "05:30")
    assert tenant.secret_environment({"CONTOSO_SECRET": "s3cr3t"}) == {"GRADESYNC_CLIENT_SECRET": "s3cr3t"}
    with pytest.raises(ConfigError) as e:
        tenant.secret_environment({})
    assert e.value.code == "tenant-credential-missing" and "CONTOSO_SECRET" in e.value.message


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (("[credentials]\n", '[credentials]\ncertificate_path = "c.pem"\n'), "exactly one of"),
        (('"CONTOSO_SECRET"', '"s3cr3t value!"'), "NAME of an environment"),
        (('inputs = ["grades.csv"]\n', ""), "inputs: Field required"),
        (('window = "1:00-05:30"', 'window = "25:00-05:00"'), "HH:MM-HH:MM"),
        (('window = "1:00-05:30"', 'window = "05:00-5:00"'), "same minute"),
        (('window = "1:00-05:30"', 'schedule = "nightly"'), "schedule: Extra"),
        (('client_id = "11111111-2222-3333-4444-555555555555"\n', ""), "client_id is required"),
    ],
)  # fmt: skip
def test_an_unusable_tenant_file_is_refused_by_name(change: tuple[str, str], says: str) -> None:
    text = GOOD.replace(*change)
    assert text != GOOD
    with pytest.raises(ConfigError) as e:
        _parse(text)
    assert says in e.value.message and "contoso.toml" in e.value.message


def test_a_secret_written_in_a_tenant_file_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigError) as e:
        _parse(GOOD.replace("[credentials]\n", '[credentials]\nclient_secret = "hunter2"\n'))
    assert e.value.code == "config-inline-secret" and "hunter2" not in e.value.message


def test_two_tenants_may_not_share_a_quota_or_a_state_dir(tmp_path: Path) -> None:
    (tmp_path / "contoso.toml").write_text(GOOD, encoding="utf-8")
    (tmp_path / "copy.toml").write_text(GOOD.replace("contoso.onmicrosoft", "CONTOSO.onmicrosoft"))
    (tmp_path / "other.toml").write_text(GOOD.replace("contoso.onmicrosoft", "other.onmicrosoft"))
    checks = {c.file.name: c for c in check_tenants(tmp_path, {"CONTOSO_SECRET": "x"})}
    assert checks["contoso.toml"].ok  # the first keeps its id and state dir
    copy = checks["copy.toml"].problems
    assert any("same tenant id as contoso.toml" in p for p in copy)
    assert any("same state_dir as contoso.toml" in p for p in copy)
    assert checks["other.toml"].problems == [
        "same state_dir as contoso.toml: they would share one lock and journal"
    ]
    assert checks["contoso.toml"].warnings == [f"input {tmp_path / 'grades.csv'} does not exist (yet)"]


def _tenant(tmp_path: Path, emulator: Any, export: Path, variable: str) -> Path:
    (tmp_path / "tenants").mkdir(exist_ok=True)
    path = tmp_path / "tenants" / "district.toml"
    path.write_text(
        f'tenant_id = "district.example.edu"\ninputs = ["{export}"]\nstate_dir = "../state"\n'
        f'graph_url = "{emulator.base_url}"\nconfig = "../loose.toml"\n'
        f'[credentials]\naccess_token_env = "{variable}"\n',
        encoding="utf-8",
    )
    (tmp_path / "loose.toml").write_text(
        '[apply]\nmax_changes = "100%"\nmax_decreases = "100%"\nmin_coverage = "off"\n', encoding="utf-8"
    )
    return path


def _run(path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GRADESYNC_")}
    return subprocess.run([GRADESYNC, "tenant", "sync", str(path), "--quiet"], env={**base, **env},
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip


def test_tenant_sync_uses_its_own_credential_never_an_inherited_one(
    emulator: Any, token: str, tmp_path: Path
) -> None:
    sample = REPO / "sample_data" / "sis_long.csv"
    path = _tenant(tmp_path, emulator, sample, "DISTRICT_TOKEN")
    # the orchestrator's environment holds a working token, but not the one the file names
    refused = _run(path, DISTRICT_TOKEN="not-this-tenants-token", GRADESYNC_ACCESS_TOKEN=token)
    assert refused.returncode == 3, refused.stdout + refused.stderr
    missing = _run(path, GRADESYNC_ACCESS_TOKEN=token)
    assert missing.returncode == 2 and "DISTRICT_TOKEN" in missing.stderr
    done = _run(path, DISTRICT_TOKEN=token, GRADESYNC_ACCESS_TOKEN="wrong-inherited")
    assert done.returncode == 1, done.stdout + done.stderr  # 1: the sample's deliberately rejected rows
    runs = sorted((tmp_path / "runs").iterdir())  # runs beside the tenant's state dir
    record = json.loads((runs[-1] / "run.json").read_text())
    assert record["state_dir"] == str(tmp_path / "state") and record["exit_code"] == 1
    assert all(token not in p.read_text(errors="replace") for p in runs[-1].rglob("*") if p.is_file())
