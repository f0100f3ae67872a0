"""Tests for engine.config.decisions: the decisions: section of engine.yaml."""
from __future__ import annotations

import pytest
import yaml

from engine.app import load_config
from engine.config.decisions import DecisionsConfig
from engine.config.schema import ConfigError
from tests.e2e import harness as h


def config_with(tmp_path, decisions) -> str:
    path = h.write_config(tmp_path, "sqlite:///" + str(tmp_path / "s.db"), 9)
    data = yaml.safe_load(open(path))
    if decisions is not None:
        data["decisions"] = decisions
    (tmp_path / "engine.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_absent_means_the_engine_picks_the_count(tmp_path):
    assert load_config(config_with(tmp_path, None)).decisions == DecisionsConfig(None)


def test_zero_processes_is_threads(tmp_path):
    assert load_config(config_with(tmp_path, {"processes": 0})).decisions.processes == 0


@pytest.mark.parametrize("value,expected", [
    (-1, "expected 0 to 64 processes, not -1"),
    ("many", "many"),
])
def test_a_bad_count_is_refused_at_its_line(tmp_path, value, expected):
    """If processes is negative or not a number, then the load fails naming engine.yaml,
    the line and decisions.processes."""
    with pytest.raises(ConfigError) as raised:
        load_config(config_with(tmp_path, {"processes": value}))
    text = str(raised.value)
    assert "engine.yaml:" in text and "decisions.processes" in text and expected in text


def test_an_unknown_key_is_refused(tmp_path):
    with pytest.raises(ConfigError) as raised:
        load_config(config_with(tmp_path, {"proceses": 2}))
    assert "proceses" in str(raised.value)
