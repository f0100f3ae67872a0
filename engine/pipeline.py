"""
The channel pipeline as a pure function: a committed message in, a processing result out.

Issue-2 channels route every message to every destination; filters and mappings plug in here
(``process`` stays the single entry point) without the intake, the store or the delivery
lanes changing.

test-case-name: tests.test_pipeline
"""
from __future__ import annotations

from dataclasses import dataclass

from engine import status as st
from engine.routing import ORDER_BY_PATIENT, patient_key, plan_deliveries
from engine.store.records import ProcessingResult

ACK_AFTER_COMMIT = "after-commit"
ACK_AFTER_PROCESSING = "after-processing"


@dataclass(frozen=True)
class DestinationPlan:
    """What routing needs to know of one destination."""

    name: str
    order_by: str = "destination"
    lanes: int = 1


@dataclass(frozen=True)
class ChannelPlan:
    """A channel as the intake and the pipeline see it (built from its ChannelConfig)."""

    name: str
    destinations: tuple[DestinationPlan, ...]
    encoding: str = "UNICODE UTF-8"
    ack_mode: str = ACK_AFTER_COMMIT
    dedupe: bool = True

    @property
    def needs_patient(self) -> bool:
        return any(d.order_by == ORDER_BY_PATIENT for d in self.destinations)


@dataclass(frozen=True)
class InboundMessage:
    """A committed message handed to the pipeline: decoded once, at intake."""

    message_id: int
    text: str
    field_separator: str = "|"
    encoding_characters: str = "^~\\&"
    # As stored, for the delivery lanes: handed over in memory so they need not read it back.
    raw: bytes = b""
    control_id: str | None = None
    message_type: str | None = None
    charset: str | None = None


def process(channel: ChannelPlan, message: InboundMessage) -> ProcessingResult:
    """Run ``channel``'s pipeline on ``message``; the outcome is recorded by the caller."""
    patient = ""
    if channel.needs_patient:
        enc = message.encoding_characters
        patient = patient_key(message.text, message.field_separator, enc[0], enc[1])
    plan = [(d.name, d.order_by, d.lanes) for d in channel.destinations]
    return ProcessingResult(message.message_id, channel.name, st.TRANSFORMED,
                            deliveries=plan_deliveries(plan, patient))
