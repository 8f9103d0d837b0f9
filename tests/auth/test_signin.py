"""Every sign-in path against a local token endpoint (HTTPS on 127.0.0.1, counting token requests)."""

from __future__ import annotations

import io
import json
import logging
import stat
import time
from pathlib import Path

import pytest

from gradesync.auth import SignIn, scopes_for, token_provider
from gradesync.config import Settings
from gradesync.errors import AuthError, ConfigError, ExitCode

from .conftest import CLIENT_SECRET
from .endpoint import DEVICE_GRANT, self_signed

SECRET_ENV = {"GRADESYNC_CLIENT_SECRET": CLIENT_SECRET}


def assert_no_leak(text: str, endpoint, *extra: str) -> None:
    """Neither the client secret, any token the endpoint issued, nor key material appears in ``text``."""
    for secret in (CLIENT_SECRET, *endpoint.state.issued, *extra):
        assert secret not in text
    assert "PRIVATE KEY" not in text


def error_text(e: AuthError | ConfigError) -> str:
    return f"{e}\n{e.message}\n{e.hint}\n{e!r}\n{json.dumps(e.as_dict())}\n{e.args}"


# ---------------------------------------------------------------- GRADESYNC_ACCESS_TOKEN


def test_environment_token_is_used_as_is_and_nothing_is_contacted(endpoint, make_settings):
    settings = make_settings(mode="client_credentials", tenant_id=None)  # would be incomplete otherwise
    provider = token_provider(settings, environ={"GRADESYNC_ACCESS_TOKEN": " byo-token "})
    assert provider() == "byo-token"
    assert "byo-token" not in repr(provider)
    assert sum(endpoint.state.requests.values()) == 0


def test_token_mode_without_the_variable_says_what_to_set():
    with pytest.raises(AuthError) as e:
        token_provider(Settings(), environ={})
    assert e.value.code == "auth-no-token"
    assert e.value.exit_code == ExitCode.AUTH
    assert "GRADESYNC_ACCESS_TOKEN" in e.value.message
    assert "client_credentials" in (e.value.hint or "")


# ---------------------------------------------------------------- client credentials


def test_client_secret_from_environment_then_silent_reuse(endpoint, http, make_settings):
    settings = make_settings(mode="client_credentials")
    provider = token_provider(settings, environ=SECRET_ENV, http_client=http)
    first = provider()
    assert first.startswith("app-at-")
    assert provider() == first  # memoised
    assert endpoint.state.requests == {"client_credentials": 1}
    assert endpoint.state.scopes_seen == ["https://graph.microsoft.com/.default"]
    # A later run (a new provider on the same cache file) reuses the cached app token.
    again = token_provider(settings, environ=SECRET_ENV, http_client=http)
    assert again() == first
    assert endpoint.state.requests == {"client_credentials": 1}


def test_client_secret_from_file(endpoint, http, make_settings, tmp_path):
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(CLIENT_SECRET + "\n")
    secret_file.chmod(0o600)
    settings = make_settings(mode="client_credentials", client_secret_file=str(secret_file))
    assert token_provider(settings, environ={}, http_client=http)().startswith("app-at-")
    assert endpoint.state.requests == {"client_credentials": 1}


def test_certificate_signs_a_client_assertion(endpoint, http, make_settings, app_cert, tmp_path):
    pem = tmp_path / "app.pem"
    pem.write_text(app_cert.cert_pem + app_cert.key_pem)  # certificate first: order must not matter
    settings = make_settings(mode="client_credentials", certificate_path=str(pem))
    sign_in = SignIn(settings, {}, http_client=http)
    assert "PRIVATE KEY" not in repr(sign_in.credential())
    assert app_cert.sha1_hex.upper() in repr(sign_in.credential())
    info = sign_in.acquire()
    assert info.access_token.startswith("app-at-")
    assert info.access_token not in repr(info)
    assert endpoint.state.requests == {"client_credentials": 1}


def test_certificate_is_preferred_over_a_secret(endpoint, http, make_settings, app_cert, tmp_path):
    pem = tmp_path / "app.pem"
    pem.write_text(app_cert.key_pem + app_cert.cert_pem)
    settings = make_settings(mode="client_credentials", certificate_path=str(pem))
    sign_in = SignIn(settings, {"GRADESYNC_CLIENT_SECRET": "not-the-secret"}, http_client=http)
    assert sign_in.credential().kind == "certificate"
    assert sign_in.acquire().access_token.startswith("app-at-")


def test_key_only_pem_with_configured_thumbprint(endpoint, http, make_settings, app_cert, tmp_path):
    key_only = tmp_path / "key.pem"
    key_only.write_text(app_cert.key_pem)
    thumb = ":".join(app_cert.sha1_hex[i : i + 2] for i in range(0, 40, 2)).upper()  # as some tools print it
    settings = make_settings(
        mode="client_credentials", certificate_path=str(key_only), certificate_thumbprint=thumb
    )
    assert token_provider(settings, environ={}, http_client=http)().startswith("app-at-")
    no_thumb = make_settings(mode="client_credentials", certificate_path=str(key_only))
    with pytest.raises(ConfigError, match="no certificate") as e:
        token_provider(no_thumb, environ={})
    assert e.value.code == "config-auth-certificate"
    assert_no_leak(error_text(e.value), endpoint)


def test_wrong_thumbprint_and_unregistered_certificate(endpoint, http, make_settings, app_cert, tmp_path):
    pem = tmp_path / "app.pem"
    pem.write_text(app_cert.key_pem + app_cert.cert_pem)
    wrong = make_settings(
        mode="client_credentials", certificate_path=str(pem), certificate_thumbprint="ab" * 20
    )
    with pytest.raises(ConfigError, match="does not match"):
        token_provider(wrong, environ={})
    other = self_signed("someone-else")
    other_pem = tmp_path / "other.pem"
    other_pem.write_text(other.key_pem + other.cert_pem)
    settings = make_settings(mode="client_credentials", certificate_path=str(other_pem))
    with pytest.raises(AuthError) as e:
        token_provider(settings, environ={}, http_client=http)()
    assert e.value.code == "auth-bad-certificate"
    assert "AADSTS700027" in e.value.message
    assert "Correlation ID: 1111-corr" in e.value.message  # what Microsoft support asks for
    assert_no_leak(error_text(e.value), endpoint, other.key_pem[40:80])


def test_wrong_secret_error_names_the_cause_and_leaks_nothing(endpoint, http, make_settings, caplog):
    caplog.set_level(logging.DEBUG)
    wrong_secret = "wr0ng~secret_value.that-must-not-leak"
    settings = make_settings(mode="client_credentials")
    provider = token_provider(settings, environ={"GRADESYNC_CLIENT_SECRET": wrong_secret}, http_client=http)
    with pytest.raises(AuthError) as e:
        provider()
    assert e.value.code == "auth-bad-secret"
    assert e.value.exit_code == ExitCode.AUTH
    assert "AADSTS7000215" in e.value.message
    assert "GRADESYNC_CLIENT_SECRET" in (e.value.hint or "")
    assert_no_leak(error_text(e.value) + repr(provider), endpoint, wrong_secret)
    assert_no_leak(caplog.text, endpoint, wrong_secret)


def test_successful_sign_in_logs_no_secret_or_token(endpoint, http, make_settings, caplog):
    caplog.set_level(logging.DEBUG)
    settings = make_settings(mode="client_credentials")
    provider = token_provider(settings, environ=SECRET_ENV, http_client=http)
    assert provider()
    assert endpoint.state.issued
    assert_no_leak(caplog.text, endpoint)


def test_unknown_tenant_and_unreachable_authority(endpoint, http, make_settings):
    settings = make_settings(mode="client_credentials", tenant_id="no-such-tenant")
    with pytest.raises(AuthError) as e:
        token_provider(settings, environ=SECRET_ENV, http_client=http)()
    assert e.value.code == "auth-config-rejected"
    assert "tenant_id" in (e.value.hint or "")
    assert_no_leak(error_text(e.value), endpoint)

    unreachable = make_settings(mode="client_credentials", authority_host="https://127.0.0.1:9")
    with pytest.raises(AuthError) as e:
        token_provider(unreachable, environ=SECRET_ENV, http_client=http)()
    assert e.value.code == "auth-unreachable"
    assert_no_leak(error_text(e.value), endpoint)


# ---------------------------------------------------------------- missing or bad configuration


def test_missing_ids_and_credentials_are_configuration_errors(make_settings, tmp_path):
    with pytest.raises(ConfigError) as e:
        token_provider(make_settings(mode="client_credentials", tenant_id=None), environ=SECRET_ENV)
    assert e.value.code == "config-auth-missing"
    assert "tenant_id" in e.value.message and "GRADESYNC_TENANT_ID" in e.value.message
    assert "client_id" not in e.value.message

    with pytest.raises(ConfigError) as e:
        token_provider(make_settings(mode="device_code", client_id=None, tenant_id=None), environ={})
    assert "tenant_id" in e.value.message and "client_id" in e.value.message

    with pytest.raises(ConfigError) as e:
        token_provider(make_settings(mode="client_credentials"), environ={})
    assert e.value.code == "config-auth-credential-missing"
    assert "GRADESYNC_CLIENT_SECRET" in (e.value.hint or "")
    assert "certificate_path" in (e.value.hint or "")

    missing = make_settings(mode="client_credentials", client_secret_file=str(tmp_path / "nope.txt"))
    with pytest.raises(ConfigError) as e:
        token_provider(missing, environ={})
    assert e.value.code == "config-auth-secret-file"
    assert "nope.txt" in e.value.message

    no_key = tmp_path / "cert-only.pem"
    no_key.write_text(self_signed("x").cert_pem)
    with pytest.raises(ConfigError, match="no PEM private key"):
        token_provider(make_settings(mode="client_credentials", certificate_path=str(no_key)), environ={})


def test_scopes_follow_the_graph_host_for_national_clouds():
    us = {"graph": {"base_url": "https://graph.microsoft.us/v1.0"}}
    app = Settings.model_validate({**us, "auth": {"mode": "client_credentials"}})
    person = Settings.model_validate({**us, "auth": {"mode": "device_code"}})
    assert scopes_for(app) == ["https://graph.microsoft.us/.default"]
    assert scopes_for(person) == [
        "https://graph.microsoft.us/EduAssignments.ReadWrite",
        "https://graph.microsoft.us/EduRoster.ReadBasic",
    ]
    custom = Settings.model_validate({"auth": {"mode": "device_code", "scopes": ["EduAssignments.Read"]}})
    assert scopes_for(custom) == ["EduAssignments.Read"]


# ---------------------------------------------------------------- device code and the token cache


def device_settings(make_settings, **kw):
    return make_settings(mode="device_code", **kw)


def test_device_code_signs_in_once_then_later_runs_are_silent(endpoint, http, make_settings):
    settings = device_settings(make_settings)
    prompt = io.StringIO()
    provider = token_provider(settings, environ={}, http_client=http, interactive=True, prompt=prompt)
    token = provider()
    assert token.startswith("user-at-")
    assert "enter the code ABCD-1234" in prompt.getvalue()
    assert endpoint.state.requests == {DEVICE_GRANT: 3}  # two authorization_pending, then success
    assert endpoint.state.scopes_seen[-1] == ""  # the device-code grant sends no scope …
    # … and the scopes asked for at the device-code endpoint are the delegated permissions:
    status = SignIn(settings, {}).status()
    assert status.accounts == ["teacher@school.example"]
    assert status.refresh_token and status.usable
    assert all("EduAssignments.ReadWrite" in t.scopes for t in status.tokens)

    # The nightly run: not interactive, a fresh process, the same cache file → no request at all.
    nightly = token_provider(settings, environ={}, http_client=http, interactive=False)
    assert nightly() == token
    assert endpoint.state.requests == {DEVICE_GRANT: 3}


def test_expired_access_token_is_refreshed_silently(endpoint, http, make_settings):
    endpoint.state.expires_in = 60  # MSAL treats a token this close to expiry as expired
    settings = device_settings(make_settings)
    first = token_provider(settings, environ={}, http_client=http, interactive=True, prompt=io.StringIO())()
    later = token_provider(settings, environ={}, http_client=http, interactive=False)()
    assert later != first
    assert endpoint.state.requests == {DEVICE_GRANT: 3, "refresh_token": 1}


def test_unattended_run_without_sign_in_fails_fast(endpoint, http, make_settings):
    settings = device_settings(make_settings)
    with pytest.raises(AuthError) as e:
        token_provider(settings, environ={}, http_client=http, interactive=False)()
    assert e.value.code == "auth-sign-in-needed"
    assert "gradesync auth login" in (e.value.hint or "")
    assert sum(endpoint.state.requests.values()) == 0


def test_revoked_refresh_token_asks_for_a_new_login(endpoint, http, make_settings):
    endpoint.state.expires_in = 60
    settings = device_settings(make_settings)
    token_provider(settings, environ={}, http_client=http, interactive=True, prompt=io.StringIO())()
    endpoint.state.refresh_tokens_valid = False
    with pytest.raises(AuthError) as e:
        token_provider(settings, environ={}, http_client=http, interactive=False)()
    assert e.value.code == "auth-sign-in-needed"
    assert "invalid_grant" in e.value.message and "AADSTS700082" in e.value.message
    assert_no_leak(error_text(e.value), endpoint)


def test_token_cache_file_is_private(endpoint, http, make_settings, tmp_path):
    cache = tmp_path / "fresh" / "dir" / "token_cache.json"
    settings = device_settings(make_settings, cache_path=str(cache))
    token_provider(settings, environ={}, http_client=http, interactive=True, prompt=io.StringIO())()
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    assert stat.S_IMODE(cache.parent.stat().st_mode) == 0o700
    data = json.loads(cache.read_text())
    assert data["RefreshToken"] and data["Account"]
    assert not list(cache.parent.glob(".*.tmp"))  # atomic replace left nothing behind


def test_loose_cache_permissions_are_tightened(endpoint, http, make_settings, tmp_path):
    cache = tmp_path / "token_cache.json"
    settings = device_settings(make_settings, cache_path=str(cache))
    token_provider(settings, environ={}, http_client=http, interactive=True, prompt=io.StringIO())()
    cache.chmod(0o644)
    assert SignIn(settings, {}).status().usable
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600


def test_automatic_cache_choice_works_without_a_keyring(endpoint, http, make_settings, tmp_path):
    """``cache_encryption = "auto"``: msal-extensions' OS store when it works, else the 0600 file."""
    cache = tmp_path / "auto" / "token_cache.json"
    settings = device_settings(make_settings, cache_path=str(cache), cache_encryption="auto")
    sign_in = SignIn(settings, {}, http_client=http, prompt=io.StringIO())
    sign_in.acquire(interactive=True)
    later = SignIn(settings, {}, http_client=http)
    assert later.acquire(interactive=False).source == "cache"
    assert endpoint.state.requests == {DEVICE_GRANT: 3}
    if sign_in.store.kind.startswith("file"):
        assert stat.S_IMODE(cache.stat().st_mode) == 0o600


def test_logout_forgets_everything(endpoint, http, make_settings, tmp_path):
    settings = device_settings(make_settings)
    token_provider(settings, environ={}, http_client=http, interactive=True, prompt=io.StringIO())()
    sign_in = SignIn(settings, {})
    assert sign_in.logout() == ["teacher@school.example"]
    assert not Path(sign_in.store.location).exists()
    assert not SignIn(settings, {}).status().usable


def test_provider_renews_shortly_before_expiry(endpoint, http, make_settings, monkeypatch):
    settings = make_settings(mode="client_credentials")
    provider = token_provider(settings, environ=SECRET_ENV, http_client=http)
    first = provider()
    real = time.monotonic
    monkeypatch.setattr(time, "monotonic", lambda: real() + endpoint.state.expires_in)  # an hour later
    second = provider()
    assert second != first
    assert endpoint.state.requests == {"client_credentials": 2}


def test_a_wall_clock_jump_neither_renews_early_nor_keeps_an_expired_token(
    endpoint, http, make_settings, monkeypatch
):
    settings = make_settings(mode="client_credentials")
    provider = token_provider(settings, environ=SECRET_ENV, http_client=http)
    first = provider()
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 10 * endpoint.state.expires_in)  # NTP jumps ahead
    assert provider() == first  # "expires in" counts on the monotonic clock: no needless renewal
    assert endpoint.state.requests == {"client_credentials": 1}


def test_force_refresh_gets_a_new_app_token_although_msal_cached_one(endpoint, http, make_settings):
    settings = make_settings(mode="client_credentials")
    provider = token_provider(settings, environ=SECRET_ENV, http_client=http)
    first = provider()
    assert provider() == first  # memoised
    renewed = provider(force_refresh=True)  # Graph said 401: MSAL's cache must not hand it back
    assert renewed != first and provider() == renewed
    assert endpoint.state.requests == {"client_credentials": 2}


def test_force_refresh_of_a_persons_token_uses_the_refresh_token_silently(endpoint, http, make_settings):
    settings = device_settings(make_settings)
    token_provider(settings, environ={}, http_client=http, interactive=True, prompt=io.StringIO())()
    nightly = token_provider(settings, environ={}, http_client=http, interactive=False)
    first = nightly()
    renewed = nightly(force_refresh=True)
    assert renewed != first
    assert endpoint.state.requests.get("refresh_token") == 1  # no person needed


def test_msal_extensions_store_when_the_os_store_works(endpoint, http, make_settings, tmp_path, monkeypatch):
    """The msal-extensions path (here over its plain FilePersistence, standing in for an OS keyring)."""
    ext = pytest.importorskip("msal_extensions")
    monkeypatch.setattr(ext, "build_encrypted_persistence", ext.FilePersistence)
    cache = tmp_path / "ext" / "token_cache.bin"
    settings = device_settings(make_settings, cache_path=str(cache), cache_encryption="auto")
    first = SignIn(settings, {}, http_client=http, prompt=io.StringIO())
    assert first.store.kind.startswith("encrypted (FilePersistence")
    first.acquire(interactive=True)
    assert stat.S_IMODE(cache.parent.stat().st_mode) == 0o700
    later = SignIn(settings, {}, http_client=http)
    assert later.acquire(interactive=False).source == "cache"
    assert later.status().accounts == ["teacher@school.example"]
    assert endpoint.state.requests == {DEVICE_GRANT: 3}
    assert later.logout() == ["teacher@school.example"]
    assert not cache.exists()
    assert not SignIn(settings, {}).status().usable


def test_readable_secret_file_is_used_with_a_warning(endpoint, http, make_settings, tmp_path, caplog):
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(CLIENT_SECRET)
    secret_file.chmod(0o644)
    settings = make_settings(mode="client_credentials", client_secret_file=str(secret_file))
    with caplog.at_level(logging.WARNING):
        assert token_provider(settings, environ={}, http_client=http)()
    assert "readable by other accounts" in caplog.text
    assert_no_leak(caplog.text, endpoint)
