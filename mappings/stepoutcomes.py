"""
What running a ``steps:`` program tells its caller (:class:`RunOutcome`, :class:`StepFailure`)
and the two signals a step raises to end the run (:class:`Stopped`, :class:`Failed`): shared
by the step kinds (:mod:`mappings.stepkinds`) and the program that runs them
(:mod:`mappings.program`).

test-case-name: tests.mappings.test_steps
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RunOutcome", "StepFailure"]

@dataclass(frozen=True)
class RunOutcome:
    """What running a program decided besides the changes made to the message.

    ``stopped``: a ``stop`` step ran or a filter failed, the message is FILTERED, ``reason``
    says why. ``routes``: the destinations named by the ``route`` steps that ran (their
    union), None when none ran: every destination.
    """

    stopped: bool = False
    reason: str | None = None
    routes: frozenset[str] | None = None


PASSED = RunOutcome()


class StepFailure(Exception):
    """A step could not process this message; the engine stores it in ERROR with ``str()``."""

    def __init__(self, file: str, line: int, field: str, message: str, *,
                 path: str | None = None, value: str | None = None):
        self.file = file
        self.line = line
        self.field = field
        self.path = path
        self.value = value
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else (self.file or "<steps>")
        what = ""
        if self.path is not None:
            what = f"{self.path} = {self.value!r}: " if self.value is not None else \
                f"{self.path}: "
        return f"{where}: {self.field}: {what}{self.message}"


class Stopped(Exception):
    """Raised by a ``stop`` step (or a filter, or a python step) to end the run."""

    def __init__(self, reason: str):
        self.reason = reason


class Failed(Exception):
    """Raised inside a step, turned into a :class:`StepFailure` naming the step."""

    def __init__(self, message: str, path: str | None = None, value: str | None = None):
        self.message = message
        self.path = path
        self.value = value

