"""GRADESYNC_<SECTION>_<KEY> overrides, their errors, and ``gradesync config check``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from gradesync.cli import cli
from gradesync.config import Settings, load_settings, load_settings_with_sources
from gradesync.errors import ConfigError


def test_generic_overrides_parse_each_type_and_win_over_the_file(tmp_path: Path) -> None:
    path = tmp_path / "g.toml"
    path.write_text('[policy]\nprecision = 1\nstrict = false\n[graph]\nbase_url = "http://file/v1.0"\n')
    env = {
        "GRADESYNC_POLICY_PRECISION": "3",
        "GRADESYNC_POLICY_STRICT": "true",
        "GRADESYNC_MATCH_STUDENT_BY": "sis_id, upn",
        "GRADESYNC_GRAPH_BASE_URL": "http://env/v1.0",
        "GRADESYNC_GRAPH_TIMEOUT_SECONDS": "7.5",
        "GRADESYNC_RUN_KEEP_RUNS": "5",
        "GRADESYNC_RUN_LOG_LEVEL": "debug",
        "GRADESYNC_INPUT_SHEET": "",  # empty: ignored
    }
    loaded = load_settings_with_sources(path, environ=env)
    s = loaded.settings
    assert (s.policy.precision, s.policy.strict, s.match.student_by) == (3, True, ["sis_id", "upn"])
    assert (s.graph.base_url, s.graph.timeout_seconds) == ("http://env/v1.0", 7.5)
    assert (s.run.keep_runs, s.run.log_level, s.input.sheet) == (5, "DEBUG", None)
    assert loaded.sources["policy.precision"] == "env GRADESYNC_POLICY_PRECISION"
    assert loaded.sources["graph.max_attempts"] == "default"
    assert loaded.path == path
    both = load_settings_with_sources(path, environ={"GRADESYNC_GRAPH_URL": "http://old/v1.0"})
    assert both.settings.graph.base_url == "http://old/v1.0"  # the existing variable still works
    assert both.sources["graph.base_url"] == "env GRADESYNC_GRAPH_URL"
    assert load_settings(path, environ={}).policy.precision == 1
    assert both.sources["policy.precision"] == "file"


@pytest.mark.parametrize(
    ("env", "code", "needle"),
    [
        ({"GRADESYNC_POLICY_PRECISION": "three"}, "config-invalid", "GRADESYNC_POLICY_PRECISION (policy."),
        ({"GRADESYNC_POLICY_PRECISION": "9"}, "config-invalid", "GRADESYNC_POLICY_PRECISION"),
        ({"GRADESYNC_MATCH_STUDENT_BY": "sis_id,nickname"}, "config-invalid", "GRADESYNC_MATCH_STUDENT_BY"),
        ({"GRADESYNC_RUN_KEEP_RUNS": "0"}, "config-invalid", "GRADESYNC_RUN_KEEP_RUNS"),
        ({"GRADESYNC_POLICY_PRECISON": "2"}, "config-unknown-env", "GRADESYNC_POLICY_PRECISON"),
    ],
)
def test_a_bad_variable_is_named(env: dict[str, str], code: str, needle: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_settings(None, environ=env)
    assert e.value.code == code
    assert needle in e.value.message
    assert e.value.exit_code == 2


def test_run_settings_change_no_plan_hash() -> None:
    assert Settings().config_hash() == Settings.model_validate({"run": {"keep_runs": 3}}).config_hash()


def _check(args: list[str], env: dict[str, str]) -> Any:
    base = {"GRADESYNC_ACCESS_TOKEN": "", "GRADESYNC_CLIENT_SECRET": "", "GRADESYNC_GRAPH_URL": ""}
    return CliRunner().invoke(cli, ["config", "check", *args], env={**base, **env})


def test_config_check_ok_shows_sources_hides_secrets(emulator: Any, token: str, tmp_path: Path) -> None:
    path = tmp_path / "g.toml"
    path.write_text("[policy]\nprecision = 1\n")
    secret = "client-secret-value-4711"
    env = {
        "GRADESYNC_GRAPH_URL": emulator.base_url,
        "GRADESYNC_ACCESS_TOKEN": token,
        "GRADESYNC_CLIENT_SECRET": secret,
        "GRADESYNC_MATCH_STUDENT_BY": "upn",
    }
    result = _check(["--config", str(path), "--state-dir", str(tmp_path / "st")], env)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "policy.precision = 1  ← file" in out
    assert "match.student_by = ['upn']  ← env GRADESYNC_MATCH_STUDENT_BY" in out
    assert "graph.max_attempts = 8  ← default" in out
    assert "GRADESYNC_CLIENT_SECRET: set" in out and "GRADESYNC_CERTIFICATE_PASSWORD: not set" in out
    assert secret not in out and token not in out
    assert "graph: ok: GET /education/classes?$top=1" in out
    assert "students by upn" in out
    assert f"runs: {tmp_path / 'runs'}" in out
    assert emulator.stats()["by_method"] == {"GET": 1}  # one cheap read, nothing written


def test_config_check_exit_3_on_a_refused_token(emulator: Any, tmp_path: Path) -> None:
    wrong = "wrong-token-0815"
    result = _check([], {"GRADESYNC_GRAPH_URL": emulator.base_url, "GRADESYNC_ACCESS_TOKEN": wrong})
    assert result.exit_code == 3, result.output
    assert "graph: FAILED" in result.output
    assert wrong not in result.output


def test_config_check_exit_2_on_a_bad_file_or_variable(tmp_path: Path) -> None:
    path = tmp_path / "g.toml"
    path.write_text("[policy]\nprecison = 2\n")
    result = _check(["--config", str(path), "--no-graph"], {})
    assert result.exit_code == 2
    assert "policy.precison" in result.output
    result = _check(["--no-graph"], {"GRADESYNC_POLICY_ABOVE_MAX": "sometimes"})
    assert result.exit_code == 2
    assert "GRADESYNC_POLICY_ABOVE_MAX" in result.output


def test_config_check_exit_7_when_graph_is_unreachable(tmp_path: Path) -> None:
    result = _check([], {"GRADESYNC_GRAPH_URL": "http://127.0.0.1:9/v1.0", "GRADESYNC_ACCESS_TOKEN": "tok-x"})
    assert result.exit_code == 7, result.output  # ExitCode.NETWORK: an environment failure, not the rows
    assert "graph: FAILED [graph-unreachable]" in result.output
