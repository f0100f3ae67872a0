"""Tests for engine.config.stepspath: where python: steps' modules are found, what a failed
import says, and the commands that keep working when one channel's module is missing."""
from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.app import load_config
from engine.cli.main import main
from engine.config.schema import ConfigError


def channel(name: str, steps: str = "") -> str:
    return textwrap.dedent(f"""\
        name: {name}
        source:
          type: mllp
          port: 0
        destinations:
          - name: archive
            type: file
            directory: ../out/{name}
        """) + steps


def engine(root: Path, channels: dict[str, str], steps_path: str | None = None) -> Path:
    (root / "channels").mkdir(parents=True, exist_ok=True)
    for name, text in channels.items():
        (root / "channels" / f"{name}.yaml").write_text(text)
    extra = f"steps_path: {steps_path}\n" if steps_path else ""
    config = root / "engine.yaml"
    config.write_text(f"store:\n  url: sqlite:///store.db\nchannels:\n  - channels/*.yaml\n{extra}")
    return config


PYTHON_STEP = "steps:\n  - python: {module}:mark\n"


@pytest.fixture
def module_name(request) -> str:
    """A module name unique to the test, forgotten by the interpreter afterwards."""
    name = f"aig_steps_{request.node.name.replace('[', '_').replace(']', '_').replace('-', '_')}"
    yield name
    sys.modules.pop(name, None)


def test_steps_path_is_relative_to_engine_yaml(tmp_path, monkeypatch, module_name):
    """If engine.yaml names steps_path, then a python: step imports its module from that
    directory, relative to engine.yaml, whatever the working directory."""
    steps = tmp_path / "conf" / "steps"
    steps.mkdir(parents=True)
    (steps / f"{module_name}.py").write_text("def mark(message):\n    return None\n")
    config = engine(tmp_path / "conf", {"lab": channel("lab", PYTHON_STEP.format(
        module=module_name))}, steps_path="steps")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    loaded = load_config(str(config))
    assert len(loaded.channels[0].steps) == 1
    assert str(steps) in sys.path


def test_missing_module_says_where_it_is_looked_for(tmp_path, monkeypatch):
    """If a python: step's module is missing, then the error names the file to put in the
    steps_path directory."""
    (tmp_path / "steps").mkdir()
    config = engine(tmp_path, {"lab": channel("lab", PYTHON_STEP.format(
        module="chu_absent.mappings"))}, steps_path="steps")
    monkeypatch.setattr(sys, "path", list(sys.path))
    with pytest.raises(ConfigError) as caught:
        load_config(str(config))
    text = str(caught.value)
    assert "ModuleNotFoundError: No module named 'chu_absent'" in text
    assert f"put chu_absent.py in {tmp_path / 'steps'} (steps_path in engine.yaml)" in text


def test_missing_module_without_steps_path_says_to_set_it(tmp_path, monkeypatch):
    """If no steps_path is set, then the error of a missing module says how to set one."""
    import engine.config.stepspath as stepspath
    monkeypatch.setattr(stepspath, "_added", [])
    config = engine(tmp_path, {"lab": channel("lab", PYTHON_STEP.format(module="chu_nulle"))})
    with pytest.raises(ConfigError, match="found through steps_path in engine.yaml .*"
                                          "holding chu_nulle.py.*which is not set"):
        load_config(str(config))


def test_steps_path_must_be_a_directory(tmp_path):
    """If steps_path names no directory, then the configuration is refused, saying so."""
    config = engine(tmp_path, {"lab": channel("lab")}, steps_path="absent")
    with pytest.raises(ConfigError, match=r"engine.yaml.*steps_path: .*absent is not a "
                                          "directory"):
        load_config(str(config))


def cli(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def one_broken(tmp_path) -> Path:
    """Two channels, one of which names a python: module that does not exist."""
    (tmp_path / "steps").mkdir()
    (tmp_path / "fixtures" / "adt").mkdir(parents=True)
    (tmp_path / "fixtures" / "adt" / "passes.yaml").write_text(textwrap.dedent("""\
        description: an ADT goes through untouched
        input: |
          MSH|^~\\&|GAM|CHU|AIG|CHU|20240312||ADT^A01|C1|P|2.5
          PID|1||1^^^CHU^PI
        expect:
          status: TRANSFORMED
        """))
    config = engine(tmp_path, {
        "adt": channel("adt"),
        "lab": channel("lab", PYTHON_STEP.format(module="chu_absent_lab.mappings"))},
        steps_path="steps")
    assert cli("db", "upgrade", "--config", str(config)).exit_code == 0
    return config


@pytest.mark.parametrize("command", [["status"], ["status", "--json"], ["messages", "list"],
                                     ["test-channel", "adt"]])
def test_commands_that_do_not_run_the_broken_channel_work(one_broken, command):
    """If one channel's python: module is missing, then status, messages list and
    test-channel of another channel still work, with a warning naming the channel left out."""
    result = cli(*command, "--config", str(one_broken))
    assert result.exit_code == 0, result.output
    assert "lab.yaml (channel lab) is left out: 1 configuration error(s)" in result.stderr
    assert "chu_absent_lab" in result.stderr


@pytest.mark.parametrize("command", [["check-config"], ["test-channel", "lab"]])
def test_commands_that_need_the_broken_channel_exit_2(one_broken, command):
    """If the command checks or runs the broken channel, then it exits 2 with its errors."""
    result = cli(*command, "--config", str(one_broken))
    assert result.exit_code == 2, result.output
    assert "cannot import 'chu_absent_lab.mappings'" in result.stderr
