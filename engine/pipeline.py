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
from engine.store.records import NewDelivery, ProcessingResult

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

    @property
    def routes_at_intake(self) -> bool:
        """True when the pipeline only routes (no filter, no mapping): the deliveries then
        follow from the configuration and the patient key alone, so the intake decides them
        and the store commits them with the message in one transaction, instead of a second
        group commit after a processor run."""
        return True


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


def route(channel: ChannelPlan, text: str, field_separator: str = "|",
          encoding_characters: str = "^~\\&") -> tuple[NewDelivery, ...]:
    """One delivery per destination, on the lane its ordering policy gives this message."""
    patient = ""
    if channel.needs_patient:
        patient = patient_key(text, field_separator, encoding_characters[0],
                              encoding_characters[1])
    plan = [(d.name, d.order_by, d.lanes) for d in channel.destinations]
    return plan_deliveries(plan, patient)


def process(channel: ChannelPlan, message: InboundMessage) -> ProcessingResult:
    """Run ``channel``'s pipeline on ``message``; the outcome is recorded by the caller."""
    deliveries = route(channel, message.text, message.field_separator,
                       message.encoding_characters)
    return ProcessingResult(message.message_id, channel.name, st.TRANSFORMED,
                            deliveries=deliveries)
