"""Shared fixtures. Additive: add yours below, keep the existing names working.

- ``token``: the bearer token every emulator fixture accepts ("test-token").
- ``sample_tenant``: the dict of ``sample_data/tenant.json`` (a fresh copy per test).
- ``emulator``: an :class:`~graph_emulator.EmulatorServer` started once per xdist worker and, before
  each test, reset to the sample tenant with throttling off, no faults, page size 25 and zeroed stats.
- ``emulator_factory``: ``emulator_factory(tenant=..., throttle=..., faults=..., page_size=..., seed=...,
  clock=...)`` starts a dedicated server for one test (stopped afterwards).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from graph_emulator import EmulatorServer, FaultConfig, ThrottleConfig, load_tenant

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_TENANT_PATH = REPO_ROOT / "sample_data" / "tenant.json"
TEST_TOKEN = "test-token"
token = TEST_TOKEN  # importable constant: ``from tests.conftest import token`` (also a fixture below)


@pytest.fixture(scope="session")
def _sample_tenant_text() -> str:
    return json.dumps(load_tenant(SAMPLE_TENANT_PATH))


@pytest.fixture(name="token")
def token_fixture() -> str:
    return TEST_TOKEN


@pytest.fixture
def sample_tenant(_sample_tenant_text: str) -> dict[str, Any]:
    return json.loads(_sample_tenant_text)


@pytest.fixture(scope="session")
def _shared_emulator(_sample_tenant_text: str) -> Iterator[EmulatorServer]:
    srv = EmulatorServer(json.loads(_sample_tenant_text), token=TEST_TOKEN, throttle=ThrottleConfig.off())
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def emulator(_shared_emulator: EmulatorServer, _sample_tenant_text: str) -> EmulatorServer:
    srv = _shared_emulator
    srv.configure(faults=None, lies=None, throttle=ThrottleConfig.off(), page_size=25)
    srv.reset(json.loads(_sample_tenant_text))
    return srv


@pytest.fixture
def emulator_factory(sample_tenant: dict[str, Any]) -> Iterator[Callable[..., EmulatorServer]]:
    started: list[EmulatorServer] = []

    def make(
        tenant: dict[str, Any] | None = None,
        throttle: ThrottleConfig | None = None,
        faults: FaultConfig | None = None,
        page_size: int = 25,
        **kw: Any,
    ) -> EmulatorServer:
        kw.setdefault("token", TEST_TOKEN)
        srv = EmulatorServer(
            tenant if tenant is not None else sample_tenant,
            throttle=throttle if throttle is not None else ThrottleConfig.off(),
            faults=faults,
            page_size=page_size,
            **kw,
        )
        srv.start()
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.stop()
