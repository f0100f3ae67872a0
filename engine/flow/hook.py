"""
What the flow asks of a step the engine provides itself (the ``identity:`` step), and what
it gets back.

A channel's ``steps:`` are mappings (:mod:`mappings.steps`), which know nothing of the
engine and may not: a step that needs the patient index is given to the plan by the
composition root as a :class:`MessageHook`, built from the channel's configuration
(:mod:`engine.identity`), and :func:`engine.flow.decision.decide` runs it on the parsed
message after the channel's steps, before each destination's. A plan with a hook is slow
(:attr:`engine.flow.plan.ChannelPlan.slow`): the hook runs in the decider's worker threads,
where it may wait on a database.

The hook answers a :class:`HookOutcome`: a line for the journal (the person the message was
resolved to), or the reason the message cannot go on (an ERROR, with the HL7 table 0357
code and ERR-2 location of the application ACK), and, for a query, the response that answers
the sender instead of an ACK (``answer``), the query then going to no destination.

test-case-name: tests.flow.test_hook
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class HookOutcome:
    """What a hook made of one message (see the module docstring)."""

    detail: str | None = None  # for the journal: what was done, whom it concerns
    error: str | None = None  # set: the message is stored in ERROR with this reason
    code: int | None = None  # table 0357 code of the ERR (None: 207)
    location: str = ""  # ERR-2 (``PID^1^3``)
    answer: bytes | None = None  # the response sent in place of the ACK (a query's RSP)
    warnings: tuple[tuple[int, str, str], ...] = ()  # ERR severity W: (code, text, location)

    @property
    def answered(self) -> bool:
        """Whether the message was a query, answered: it goes to no destination."""
        return self.answer is not None


class MessageHook(Protocol):
    """A step the engine provides; ``run`` may block (it runs in a worker thread)."""

    def run(self, message: Any, inbound: Any) -> HookOutcome:
        """Act on ``message`` (a :class:`mappings.message.HL7Message`, changed in place),
        the parsed text of ``inbound`` (an :class:`engine.flow.plan.InboundMessage`: its
        stored id, the peer it came from, its character set)."""
