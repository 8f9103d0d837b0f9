"""Fixtures for the sign-in tests: a local token endpoint over TLS and settings pointing MSAL at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from gradesync.config import Settings

from .endpoint import EndpointState, KeyPair, TokenEndpoint, self_signed

TENANT = "school.example"
CLIENT_ID = "11111111-2222-3333-4444-555555555555"
CLIENT_SECRET = "s3cr3t~Value.ThatMustNeverLeak_0123456789"


@pytest.fixture(scope="session")
def tls_pair() -> KeyPair:
    return self_signed("127.0.0.1", ip="127.0.0.1")


@pytest.fixture(scope="session")
def app_cert() -> KeyPair:
    return self_signed("gradesync-test-app")


@pytest.fixture
def endpoint(tls_pair: KeyPair, app_cert: KeyPair, tmp_path: Path) -> Iterator[TokenEndpoint]:
    state = EndpointState(tenant=TENANT, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, app_cert=app_cert)
    tls_dir = tmp_path / "tls"
    tls_dir.mkdir()
    with TokenEndpoint(state, tls_pair, tls_dir) as ep:
        yield ep


@pytest.fixture
def http(endpoint: TokenEndpoint) -> Iterator[requests.Session]:
    """What MSAL uses for HTTP: trusts the endpoint's certificate, ignores proxy variables."""
    session = requests.Session()
    session.verify = str(endpoint.ca_file)
    session.trust_env = False
    yield session
    session.close()


@pytest.fixture
def make_settings(endpoint: TokenEndpoint, tmp_path: Path) -> Callable[..., Settings]:
    def make(**auth: Any) -> Settings:
        values: dict[str, Any] = {
            "tenant_id": TENANT,
            "client_id": CLIENT_ID,
            "authority_host": endpoint.host,
            "cache_path": str(tmp_path / "home" / ".gradesync" / "token_cache.json"),
            "cache_encryption": "off",
        }
        values.update(auth)
        return Settings.model_validate({"auth": values})

    return make


@pytest.fixture
def cli_env(endpoint: TokenEndpoint, monkeypatch: pytest.MonkeyPatch) -> None:
    """For CliRunner tests: requests (inside MSAL) trusts the endpoint through REQUESTS_CA_BUNDLE."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(endpoint.ca_file))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    for var in ("GRADESYNC_ACCESS_TOKEN", "GRADESYNC_CLIENT_SECRET", "GRADESYNC_AUTH_MODE"):
        monkeypatch.delenv(var, raising=False)
