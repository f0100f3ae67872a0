"""Tests for engine.flow.plan: which plans are slow (decided off the reactor thread)."""
from __future__ import annotations

import textwrap

import pytest

from engine.app import channel_plan
from engine.config.loader import load_channel_file
from engine.flow.plan import VALIDATION_STRUCTURE, ChannelPlan, DestinationPlan
from mappings.steps import compile_filters, compile_steps
from tests.config.test_loader import SPECS

PYTHON_STEP = {"python": "tests.flow.test_plan:unchanged"}
SET = {"set": "PID-8", "value": "M"}


def unchanged(message) -> None:
    """A ``python:`` step that leaves the message alone (its cost is unknown to the engine)."""


def steps(*items: dict):
    return compile_steps(list(items), file="channels/adt.yaml", tables={})


def channel(*, steps_=None, filters=None, destination_steps=None, validation="none",
            marked_slow=False) -> ChannelPlan:
    return ChannelPlan("adt", (DestinationPlan("out", steps=destination_steps),),
                       steps=steps_, filters=filters, validation=validation,
                       marked_slow=marked_slow)


def test_routing_only_and_built_in_steps_are_fast() -> None:
    assert not channel().slow
    assert not channel(steps_=steps(SET)).slow
    assert not channel(filters=compile_filters(['PID-8 == "M"'])).slow
    assert not channel(destination_steps=steps({"delete": "PV1[1]"})).slow


@pytest.mark.parametrize("plan", [
    pytest.param(lambda: channel(steps_=steps(SET, PYTHON_STEP)), id="channel"),
    pytest.param(lambda: channel(steps_=steps({"for-each": "PID-3[*]", "steps": [PYTHON_STEP]})),
                 id="nested"),
    pytest.param(lambda: channel(steps_=steps(SET), destination_steps=steps(PYTHON_STEP)),
                 id="destination"),
    pytest.param(lambda: channel(steps_=steps(SET), validation=VALIDATION_STRUCTURE),
                 id="validation"),
    pytest.param(lambda: channel(marked_slow=True), id="slow: true"),
])
def test_python_steps_validation_and_slow_true_are_slow(plan) -> None:
    """If any step, however nested, is a python: step, or the channel validates structure or
    says slow: true, then its plan is slow: its cost is unknown or known to be high."""
    assert plan().slow


def test_slow_true_in_a_channel_file_makes_its_plan_slow(tmp_path) -> None:
    """If a channel file says slow: true, then its plan is slow; without it, it is not."""
    text = textwrap.dedent("""\
        name: adt
        source:
          type: mllp
          port: 2575
        destinations:
          - name: out
            type: file
            directory: out
        """)
    path = tmp_path / "adt.yaml"
    path.write_text(text)
    assert not channel_plan(load_channel_file(str(path), SPECS)).slow
    path.write_text(text + "slow: true\n")
    assert channel_plan(load_channel_file(str(path), SPECS)).slow
