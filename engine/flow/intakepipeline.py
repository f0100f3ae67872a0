"""
The channel pipeline run at intake, before the message's one commit, when its cost is known.

Why: a channel with steps used to be committed RECEIVED, acknowledged, then processed, and its
outcome committed by a SECOND group commit (engine.store.ops.ProcessedOp, with a read of the
message's status first). On top of the mapping's own CPU (~70 us per message on the reactor
for the 10-step ADT mapping of bench/mapping_speed.py, parse and write included), that second
commit and its writer work added 6 to 12 points to the end-to-end cost of that mapping
(bench/mapping_cost.py --processor, SQLite, quiet 2-core machine: ~28-37 % through the
processor, ~22-25 % at intake). Running the pure pipeline before the commit
lets the message, its outcome and its deliveries commit in ONE transaction, as routing-only
channels already do.

Which channels: those whose filters and steps (the channel's and each destination's) are all
built-in. A ``python:`` step runs code whose cost nobody knows, and structural validation
(hl7apy) costs milliseconds; both keep the processor path, which runs after the ACK in
after-commit mode and in slices so that a slow message never delays the ACKs of others.

This runs on the reactor thread, inside :meth:`engine.flow.intake.Intake.receive`: built-in steps are
pure CPU work of tens of microseconds, no I/O, which the processor also ran on the reactor
thread (a thread would buy no parallelism under the GIL). The ACKs of a group commit now wait
for the mappings of its messages (ACK p50 ~3 -> ~4 ms on SQLite in the bench), which is why
code of unknown cost stays on the processor path. Nothing else changes for the sender or the
store but the number of commits:

- the raw message is still stored exactly as received, and the decoded text (read once at
  intake) is what the pipeline parses;
- the outcome is :func:`engine.flow.pipeline.process`'s, the very function the processor runs, so
  statuses, errors (step, path and value), payloads and journal lines are the same;
- a step failure is committed in ERROR with its error in that same transaction; the sender is
  answered per the ACK mode: after-commit, AA (the message is safely stored); after-processing,
  the outcome (AE with ERR 207 for an ERROR);
- a message set back to RECEIVED (``messages replay --reprocess``) or left RECEIVED by a crash
  goes through the processor as before.

test-case-name: tests.flow.test_intakepipeline
"""
from __future__ import annotations

import logging
from typing import Any

from engine.flow import pipeline
from engine import status as st
from engine.flow.pipeline import ChannelPlan, InboundMessage
from engine.store.records import ProcessingResult
from mappings.stepkinds import PythonStep

log = logging.getLogger(__name__)

PENDING_ID = 0  # the message id of an outcome computed before the commit gives the real one


def runs_at_intake(plan: ChannelPlan) -> bool:
    """Whether ``plan``'s pipeline is run at intake: it has filters or steps (a routing-only
    channel is routed at intake already), every one of them built-in, and no structural
    validation."""
    if plan.routes_at_intake or plan.validation != pipeline.VALIDATION_NONE:
        return False
    programs = [plan.filters, plan.steps] + [d.steps for d in plan.destinations]
    return not any(_calls_python(program.steps) for program in programs if program is not None)


def _calls_python(steps: Any) -> bool:
    for step in steps:
        if isinstance(step, PythonStep):
            return True
        nested = getattr(step, "steps", None)  # for-each and any step that holds others
        if nested is not None and _calls_python(nested):
            return True
    return False


class IntakePipeline:
    """Decides, per channel plan, whether the pipeline runs at intake, and runs it there."""

    def __init__(self) -> None:
        # channel name -> (the plan decided on, the decision): a plan swapped by a reload is
        # a new object, decided again.
        self._decided: dict[str, tuple[ChannelPlan, bool]] = {}
        self.processed = 0

    def applies(self, plan: ChannelPlan) -> bool:
        """Whether messages of ``plan`` are processed at intake (decided once per plan)."""
        decided = self._decided.get(plan.name)
        if decided is None or decided[0] is not plan:
            decided = (plan, runs_at_intake(plan))
            self._decided[plan.name] = decided
        return decided[1]

    def process(self, plan: ChannelPlan, text: str, field_separator: str,
                encoding_characters: str, raw: bytes,
                charset: str | None) -> ProcessingResult | None:
        """The pipeline's outcome for a message about to be committed, or None when the
        processor is to run it after the commit. Pure CPU, on the reactor thread."""
        if not self.applies(plan):
            return None
        self.processed += 1
        message = InboundMessage(PENDING_ID, text, field_separator, encoding_characters, raw,
                                 charset=charset)
        try:
            return pipeline.process(plan, message)
        except Exception as exc:  # a bug in a step must not lose the message: ERROR, stored
            log.exception("pipeline of channel %s failed at intake", plan.name)
            return ProcessingResult(PENDING_ID, plan.name, st.ERROR,
                                    error=f"{type(exc).__name__}: {exc}")
