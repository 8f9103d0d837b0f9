"""Settings: the documented example is the defaults, and bad files get messages that say where."""

from pathlib import Path

import pytest

from gradesync.config import Settings, load_settings
from gradesync.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_example_file_documents_the_defaults():
    assert load_settings(ROOT / "config/gradesync.example.toml", environ={}) == Settings()


def test_shipped_config_is_valid():
    assert isinstance(load_settings(ROOT / "config/gradesync.toml", environ={}), Settings)


def test_environment_overrides_graph_url(tmp_path):
    settings = load_settings(None, environ={"GRADESYNC_GRAPH_URL": "http://127.0.0.1:9/v1.0"})
    assert settings.graph.base_url == "http://127.0.0.1:9/v1.0"


def test_unknown_key_names_its_place(tmp_path):
    path = tmp_path / "g.toml"
    path.write_text("[policy]\nprecison = 2\n")
    with pytest.raises(ConfigError) as e:
        load_settings(path, environ={})
    assert "policy.precison" in e.value.message
    assert str(path) in e.value.message


def test_bad_value_is_refused(tmp_path):
    path = tmp_path / "g.toml"
    path.write_text('[match]\nstudent_by = ["sis_id", "sis_id"]\n')
    with pytest.raises(ConfigError, match="twice"):
        load_settings(path, environ={})


def test_syntax_error_and_missing_file(tmp_path):
    path = tmp_path / "g.toml"
    path.write_text("[policy\n")
    with pytest.raises(ConfigError) as e:
        load_settings(path, environ={})
    assert e.value.code == "config-syntax"
    with pytest.raises(ConfigError) as e:
        load_settings(tmp_path / "missing.toml", environ={})
    assert e.value.code == "config-missing"


def test_config_hash_changes_with_plan_relevant_settings():
    base = Settings()
    changed = Settings.model_validate({"policy": {"precision": 1}})
    assert base.config_hash() == Settings().config_hash()
    assert base.config_hash() != changed.config_hash()
