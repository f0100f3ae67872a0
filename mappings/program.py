"""
A compiled ``steps:`` list (:class:`Program`) and the trace of its run (:class:`StepTrace`):
the loop over the prebuilt steps of :mod:`mappings.stepkinds` that the engine runs on each
message, and the traced variant the tools use. The language is documented in
:mod:`mappings.steps`.

test-case-name: tests.mappings.test_trace
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from mappings.message import HL7Message
from mappings.stepkinds import Step
from mappings.stepoutcomes import PASSED, RunOutcome, StepFailure, Stopped

__all__ = ["Program", "StepTrace"]


@dataclass(frozen=True)
class StepTrace:
    """One top-level step of a traced run (:meth:`Program.run` with ``trace``), after it ran.

    ``ran`` is False when the step's ``when:`` was false; a ``for-each`` is one step, its
    nested steps included. ``before`` and ``after`` are the whole message as
    :meth:`HL7Message.to_text` writes it, so that a tool can show what the step changed.
    ``stopped`` holds the reason when the step ended the run (a ``stop``, a failed filter),
    ``failure`` the :class:`StepFailure` it raised (the run then raises it too).
    """

    step: Step
    ran: bool
    before: str
    after: str
    stopped: str | None = None
    failure: StepFailure | None = None

    @property
    def label(self) -> str:
        """``file:line: field``, as errors name the step."""
        step = self.step
        where = f"{step.file}:{step.line}" if step.line else (step.file or "<steps>")
        return f"{where}: {step.field}"


class Program:
    """Steps compiled once; :meth:`run` applies them to one message, changing it in place."""

    __slots__ = ("steps", "tables_used", "paths_used", "routes_named")

    def __init__(self, steps: Sequence[Step], tables_used: frozenset[str] = frozenset(),
                 paths_used: frozenset[str] = frozenset(),
                 routes_named: frozenset[str] = frozenset()):
        self.steps = tuple(steps)
        #: Names of the code tables the steps translate through.
        self.tables_used = tables_used
        #: The text of every path the steps and their conditions name.
        self.paths_used = paths_used
        #: Every destination a ``route`` step names, for the engine to check.
        self.routes_named = routes_named

    def __len__(self) -> int:
        return len(self.steps)

    def run(self, message: HL7Message,
            trace: Callable[[StepTrace], None] | None = None) -> RunOutcome:
        """Apply the steps to ``message``; raise :class:`StepFailure` if one cannot.

        With ``trace``, it is called with a :class:`StepTrace` after each top-level step; the
        run without it (the engine's) pays nothing for the feature.
        """
        if trace is not None:
            return self._run_traced(message, trace)
        state: list[frozenset[str]] = []
        try:
            for step in self.steps:
                step.run(message, None, state)
        except Stopped as stop:
            return RunOutcome(True, stop.reason, frozenset().union(*state) if state else None)
        if state:
            return RunOutcome(routes=frozenset().union(*state))
        return PASSED

    def _run_traced(self, message: HL7Message, trace: Callable[[StepTrace], None]
                    ) -> RunOutcome:
        """:meth:`run`, writing the message before and after each step for ``trace``."""
        state: list[frozenset[str]] = []
        for step in self.steps:
            before = message.to_text()
            try:
                ran = step.run(message, None, state)
            except Stopped as stop:
                trace(StepTrace(step, True, before, message.to_text(), stopped=stop.reason))
                return RunOutcome(True, stop.reason, frozenset().union(*state) if state else None)
            except StepFailure as failure:
                trace(StepTrace(step, True, before, message.to_text(), failure=failure))
                raise
            trace(StepTrace(step, ran, before, message.to_text()))
        if state:
            return RunOutcome(routes=frozenset().union(*state))
        return PASSED
