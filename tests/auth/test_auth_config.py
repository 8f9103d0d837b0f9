"""[auth] settings: secrets are refused inline, environment overrides, and sign-in changes no plan hash."""

from __future__ import annotations

from pathlib import Path

import pytest

from gradesync.config import AuthSettings, Settings, load_settings
from gradesync.errors import ConfigError, ExitCode

ROOT = Path(__file__).resolve().parents[2]
INLINE = "inline-Secret~value_0123456789"


@pytest.mark.parametrize(
    "toml",
    [
        f'[auth]\nmode = "client_credentials"\nclient_secret = "{INLINE}"\n',
        f'[auth]\nCLIENT_SECRET = "{INLINE}"\n',
        f'[graph]\ntoken = "{INLINE}"\n',
        f'[auth]\ncertificate_path = "x.pem"\ncertificate_password = "{INLINE}"\n',
    ],
)
def test_inline_secret_is_refused_without_echoing_it(tmp_path, toml):
    path = tmp_path / "g.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as e:
        load_settings(path, environ={})
    err = e.value
    assert err.code == "config-inline-secret"
    assert err.exit_code == ExitCode.USAGE
    assert str(path) in err.message
    assert "GRADESYNC_CLIENT_SECRET" in (err.hint or "")
    assert "client_secret_file" in (err.hint or "")
    assert INLINE not in f"{err}{err!r}{err.as_dict()}"


def test_auth_section_loads_and_environment_overrides_it(tmp_path):
    path = tmp_path / "g.toml"
    path.write_text(
        '[auth]\nmode = "device_code"\ntenant_id = "from-file"\nclient_id = "app-from-file"\n'
        'client_secret_file = "/etc/gradesync/secret"\nauthority_host = "https://login.microsoftonline.us/"\n'
    )
    s = load_settings(path, environ={})
    assert (s.auth.mode, s.auth.tenant_id, s.auth.client_id) == ("device_code", "from-file", "app-from-file")
    assert s.auth.authority_host == "https://login.microsoftonline.us"
    env = {
        "GRADESYNC_AUTH_MODE": "client_credentials",
        "GRADESYNC_TENANT_ID": "from-env",
        "GRADESYNC_CLIENT_ID": "app-from-env",
    }
    s = load_settings(path, environ=env)
    assert (s.auth.mode, s.auth.tenant_id, s.auth.client_id) == (
        "client_credentials",
        "from-env",
        "app-from-env",
    )


def test_bad_auth_values_name_their_place(tmp_path):
    path = tmp_path / "g.toml"
    path.write_text('[auth]\nmode = "password"\nauthority_host = "http://login.example"\n')
    with pytest.raises(ConfigError) as e:
        load_settings(path, environ={})
    assert "auth.mode" in e.value.message
    assert "auth.authority_host" in e.value.message and "https://" in e.value.message


def test_defaults_and_the_documented_example():
    assert AuthSettings().mode == "token"
    assert AuthSettings().authority_host == "https://login.microsoftonline.com"
    assert AuthSettings().cache_path == "~/.gradesync/token_cache.json"
    example = (ROOT / "config/gradesync.example.toml").read_text()
    for key in AuthSettings.model_fields:
        assert f"{key} = " in example, f"[auth] {key} is not documented in the example"
    assert load_settings(ROOT / "config/gradesync.example.toml", environ={}) == Settings()


def test_how_we_sign_in_does_not_change_the_plan_hash():
    signed = Settings.model_validate({"auth": {"mode": "device_code", "tenant_id": "t", "client_id": "c"}})
    assert signed.config_hash() == Settings().config_hash()
