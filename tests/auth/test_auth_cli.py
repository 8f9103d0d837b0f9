"""`gradesync auth login | status | logout` through click's CliRunner, and sign-in wired into Graph runs."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from gradesync.auth import token_provider
from gradesync.cli import cli
from gradesync.cli.common import graph_client
from gradesync.config import Settings

from .conftest import CLIENT_ID, CLIENT_SECRET, TENANT
from .endpoint import DEVICE_GRANT

ROOT = Path(__file__).resolve().parents[2]


def write_config(tmp_path: Path, endpoint, mode: str, **extra: str) -> Path:
    lines = [
        "[auth]",
        f'mode = "{mode}"',
        f'tenant_id = "{TENANT}"',
        f'client_id = "{CLIENT_ID}"',
        f'authority_host = "{endpoint.host}"',
        f'cache_path = "{tmp_path / "cache" / "token_cache.json"}"',
        'cache_encryption = "off"',
        *(f'{k} = "{v}"' for k, v in extra.items()),
    ]
    path = tmp_path / "gradesync.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def assert_clean(text: str, endpoint) -> None:
    for secret in (CLIENT_SECRET, *endpoint.state.issued):
        assert secret not in text


@pytest.mark.usefixtures("cli_env")
def test_device_code_login_status_logout(endpoint, tmp_path):
    config = write_config(tmp_path, endpoint, "device_code")
    cache = tmp_path / "cache" / "token_cache.json"

    before = invoke("auth", "status", "--config", str(config))
    assert before.exit_code == 3
    assert "accounts: none" in before.stdout
    assert "nobody is signed in: run `gradesync auth login`" in before.stdout

    login = invoke("auth", "login", "--config", str(config))
    assert login.exit_code == 0, login.output
    assert "enter the code ABCD-1234" in login.stderr
    assert "signed in as teacher@school.example" in login.stdout
    assert f"app {CLIENT_ID}" in login.stdout
    assert "token valid until" in login.stdout
    assert endpoint.state.requests == {DEVICE_GRANT: 3}
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600

    again = invoke("auth", "login", "--config", str(config))
    assert again.exit_code == 0
    assert "reused the cached sign-in as teacher@school.example" in again.stdout
    assert endpoint.state.requests == {DEVICE_GRANT: 3}

    status = invoke("auth", "status", "--config", str(config))
    assert status.exit_code == 0, status.output
    assert "mode: device_code" in status.stdout
    assert "accounts: teacher@school.example" in status.stdout
    assert "refresh token: cached" in status.stdout
    assert "EduAssignments.ReadWrite" in status.stdout
    assert "usable: a cached sign-in" in status.stdout

    logout = invoke("auth", "logout", "--config", str(config))
    assert logout.exit_code == 0
    assert "signed out (teacher@school.example)" in logout.stdout
    assert not cache.exists()
    assert invoke("auth", "status", "--config", str(config)).exit_code == 3

    assert_clean(before.output + login.output + again.output + status.output + logout.output, endpoint)


@pytest.mark.usefixtures("cli_env")
def test_client_credentials_login_and_status(endpoint, tmp_path):
    config = write_config(tmp_path, endpoint, "client_credentials")
    missing = invoke("auth", "login", "--config", str(config))
    assert missing.exit_code == 2
    assert "config-auth-credential-missing" in missing.stderr

    status = invoke("auth", "status", "--config", str(config))
    assert status.exit_code == 3
    assert "not usable" in status.stdout

    env = {"GRADESYNC_CLIENT_SECRET": CLIENT_SECRET}
    login = invoke("auth", "login", "--config", str(config), env=env)
    assert login.exit_code == 0, login.output
    assert "signed in as the application itself" in login.stdout
    status = invoke("auth", "status", "--config", str(config), env=env)
    assert status.exit_code == 0
    assert "credential: <secret credential from GRADESYNC_CLIENT_SECRET>" in status.stdout
    assert "token for the application" in status.stdout

    bad = invoke(
        "auth", "login", "--force", "--config", str(config), env={"GRADESYNC_CLIENT_SECRET": "nope!"}
    )
    assert bad.exit_code == 0  # the cached app token is still valid: --force only re-prompts people
    assert_clean(missing.output + status.output + login.output + bad.output, endpoint)


@pytest.mark.usefixtures("cli_env")
def test_wrong_secret_exits_3_with_a_hint_and_no_secret(endpoint, tmp_path):
    config = write_config(tmp_path, endpoint, "client_credentials")
    wrong = "wrong-Secret~but.still_secret"
    result = invoke("auth", "login", "--config", str(config), env={"GRADESYNC_CLIENT_SECRET": wrong})
    assert result.exit_code == 3
    assert "error [auth-bad-secret]" in result.stderr
    assert "hint:" in result.stderr
    assert wrong not in result.output
    assert_clean(result.output, endpoint)


def test_status_with_an_environment_token(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADESYNC_ACCESS_TOKEN", "byo-token-value")
    config = tmp_path / "g.toml"
    config.write_text(f'[auth]\ncache_path = "{tmp_path / "c.json"}"\ncache_encryption = "off"\n')
    result = invoke("auth", "status", "--config", str(config))
    assert result.exit_code == 0
    assert "GRADESYNC_ACCESS_TOKEN: set" in result.stdout
    assert "byo-token-value" not in result.output


@pytest.mark.usefixtures("cli_env")
def test_graph_client_signs_in_with_client_credentials(endpoint, emulator, token, tmp_path, monkeypatch):
    """cliutil.graph_client uses token_provider: the emulator accepts the token the endpoint issued."""
    endpoint.state.fixed_access_token = token
    monkeypatch.setenv("GRADESYNC_CLIENT_SECRET", CLIENT_SECRET)
    settings = Settings.model_validate(
        {
            "graph": {"base_url": emulator.base_url},
            "auth": {
                "mode": "client_credentials",
                "tenant_id": TENANT,
                "client_id": CLIENT_ID,
                "authority_host": endpoint.host,
                "cache_path": str(tmp_path / "c.json"),
                "cache_encryption": "off",
            },
        }
    )
    with graph_client(settings) as client:
        classes = client.get("education/classes")
    assert classes["value"]
    assert endpoint.state.requests == {"client_credentials": 1}
    assert endpoint.state.scopes_seen == [f"{emulator.base_url.rsplit('/', 1)[0]}/.default"]
    assert callable(token_provider(settings))


def test_plan_run_with_client_credentials_leaves_no_secret_anywhere(endpoint, emulator, token, tmp_path):
    """A real `gradesync plan` process signs in with a client secret; no output or file holds it."""
    endpoint.state.fixed_access_token = token  # the emulator's token, so Graph accepts it
    cache_dir = tmp_path / "private"
    work = tmp_path / "work"
    work.mkdir()
    config = work / "gradesync.toml"
    config.write_text(
        "[auth]\n"
        'mode = "client_credentials"\n'
        f'cache_path = "{cache_dir / "token_cache.json"}"\n'
        'cache_encryption = "off"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRADESYNC_")}
    env.update(
        GRADESYNC_GRAPH_URL=emulator.base_url,
        GRADESYNC_TENANT_ID=TENANT,
        GRADESYNC_CLIENT_ID=CLIENT_ID,
        GRADESYNC_AUTHORITY_HOST=endpoint.host,
        GRADESYNC_CLIENT_SECRET=CLIENT_SECRET,
        REQUESTS_CA_BUNDLE=str(endpoint.ca_file),
        NO_PROXY="127.0.0.1",
    )
    result = subprocess.run(
        [sys.executable, "-m", "gradesync", "plan", str(ROOT / "sample_data" / "sis_long.csv"),
         "--config", str(config), "--out", "plan.json", "--report-dir", "reports"],
        env=env, cwd=work, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode in (0, 1), result.stderr
    assert (work / "plan.json").exists()
    assert endpoint.state.requests == {"client_credentials": 1}
    written = [p for p in work.rglob("*") if p.is_file()]
    assert len(written) >= 4  # config, plan, and the reports
    for text in [result.stdout, result.stderr, *(p.read_text(errors="replace") for p in written)]:
        assert CLIENT_SECRET not in text
        assert token not in text
    assert stat.S_IMODE((cache_dir / "token_cache.json").stat().st_mode) == 0o600
