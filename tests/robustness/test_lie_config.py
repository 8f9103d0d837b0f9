"""The emulator's lies knob: spec parsing, off by default, the control endpoint and the CLI option."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from gradesync.cli.emulator import emulator_command
from graph_emulator import LieConfig


def test_spec_parsing_and_round_trip() -> None:
    cfg = LieConfig.parse("seed=3,malformed_json=0.2,foreign_nextlink@list_submissions,huge_items=80")
    assert cfg.seed == 3 and cfg.huge_items == 80
    assert cfg.rules == (("malformed_json", None, 0.2), ("foreign_nextlink", "list_submissions", 1.0))
    assert LieConfig.from_value(cfg.to_dict()) == cfg
    assert LieConfig.from_value(None) is None and LieConfig.from_value("") is None


@pytest.mark.parametrize("spec", ["fibbing=1", "malformed_json=2", "foreign_host=ftp://x", "limit=-1"])
def test_bad_specs_are_refused(spec: str) -> None:
    with pytest.raises(ValueError):
        LieConfig.parse(spec)


def test_off_by_default_then_set_through_the_control_endpoint(emulator: Any, token: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    url = emulator.base_url + "/education/classes"
    assert httpx.get(url, headers=headers).json()["value"]
    assert emulator.stats()["lies"] == {} and emulator.stats()["config"]["lies"] is None
    r = httpx.post(emulator.url + "/_emulator/config", json={"lies": "nextlink_loop@list_classes=1"})
    assert r.status_code == 200 and r.json()["lies"]["nextlink_loop@list_classes"] == 1.0
    page = httpx.get(url, headers=headers).json()
    assert page["@odata.nextLink"] == url  # the page links to itself
    assert emulator.stats()["lies"] == {"nextlink_loop": 1}
    bad = httpx.post(emulator.url + "/_emulator/config", json={"lies": "nonsense=1"})
    assert bad.status_code == 400


def test_limit_caps_each_kind(emulator: Any, token: str) -> None:
    emulator.configure(lies="malformed_json=1,limit=2")
    url, headers = emulator.base_url + "/education/classes", {"Authorization": f"Bearer {token}"}
    bodies = [httpx.get(url, headers=headers).content for _ in range(4)]
    broken = []
    for b in bodies:
        try:
            httpx.Response(200, content=b).json()
            broken.append(False)
        except ValueError:
            broken.append(True)
    assert broken == [True, True, False, False]


def test_cli_refuses_a_bad_lies_spec() -> None:
    result = CliRunner().invoke(emulator_command, ["--lies", "fibbing=1", "--port", "0"])
    assert result.exit_code == 2 and "unknown lie" in result.output
