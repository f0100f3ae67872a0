"""
The ``decisions:`` section of engine.yaml: how many worker processes decide the messages of
CPU-bound slow plans.

Why a setting: a ``python:`` step that computes holds the interpreter lock, which the
reactor thread needs to answer every channel; decided in processes of their own
(:mod:`engine.workers.decide_pool`), such steps cost the other channels nothing. ``0`` keeps
every slow plan on the decider's threads (as before processes existed); absent, the engine
picks a count from the cores (:func:`engine.workers.decide_pool.default_processes`). Read at
start: a change needs a restart.

test-case-name: tests.config.test_decisions_section
"""
from __future__ import annotations

from dataclasses import dataclass

from engine.config.schema import Section
from engine.interfaces import OptionSpec

MAX_PROCESSES = 64


@dataclass(frozen=True)
class DecisionsConfig:
    """``processes``: worker processes for CPU-bound slow plans; None: from the cores."""

    processes: int | None = None


DECISIONS_SECTION = Section(
    (OptionSpec("processes", "int",
                help="worker processes deciding python: steps and structural validation; "
                     "0: threads of the engine process; default: from the cores"),),
    checks={"processes": lambda n: None if 0 <= n <= MAX_PROCESSES else
            f"expected 0 to {MAX_PROCESSES} processes, not {n}"})


def decisions_config(values: dict | None) -> DecisionsConfig:
    """The section's validated ``values`` (None: the section is absent)."""
    if not values:
        return DecisionsConfig()
    return DecisionsConfig(processes=values["processes"])
