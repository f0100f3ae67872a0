"""Tests for engine.flow.pipeline.process: a committed message in, a processing result out."""
from __future__ import annotations

import pytest

from engine import status as st
from engine.flow.pipeline import ChannelPlan, DestinationPlan, InboundMessage, process
from engine.flow.routing import ORDER_BY_PATIENT, lane_for
from engine.store.records import NewDelivery

TEXT = "MSH|^~\\&|HIS|HOSP|ENG|HOSP|20260101||ADT^A08|7|P|2.5\rPID|1||P42^^^HOSP\r"


def test_every_destination_gets_a_delivery():
    """If a channel has destinations, then the message is TRANSFORMED with one delivery
    per destination, in the channel's order."""
    plan = ChannelPlan("adt-in", (DestinationPlan("archive"), DestinationPlan("dpi")))
    result = process(plan, InboundMessage(7, TEXT))
    assert (result.message_id, result.channel, result.status, result.error) == (
        7, "adt-in", st.TRANSFORMED, None)
    assert result.deliveries == (NewDelivery("archive", 0), NewDelivery("dpi", 0))


def test_patient_ordering_uses_the_message_separators():
    """If a destination orders by patient, then the lane is the one of PID-3 read with the
    message's own separators."""
    plan = ChannelPlan("adt-in", (DestinationPlan("dpi", ORDER_BY_PATIENT, 16),))
    assert plan.needs_patient
    text = TEXT.replace("|", "#").replace("^", "$")
    result = process(plan, InboundMessage(1, text, "#", "$~\\&"))
    assert result.deliveries == (NewDelivery("dpi", lane_for("P42", 16)),)
    assert lane_for("P42", 16) != 0  # so that a wrong key (lane 0) would be noticed


def test_channel_without_patient_ordering_skips_the_key():
    """If no destination orders by patient, then the patient key is not read at all
    (a message without PID is fine)."""
    plan = ChannelPlan("adt-in", (DestinationPlan("archive", lanes=8),))
    assert not plan.needs_patient
    result = process(plan, InboundMessage(1, "MSH|^~\\&|X\r", encoding_characters=""))
    assert result.deliveries == (NewDelivery("archive", 0),)


def test_broken_encoding_characters_raise():
    """If the encoding characters are too short to name the separators, then process
    raises (the processor turns that into an ERROR result)."""
    plan = ChannelPlan("adt-in", (DestinationPlan("dpi", ORDER_BY_PATIENT, 4),))
    with pytest.raises(IndexError):
        process(plan, InboundMessage(1, TEXT, encoding_characters="^"))
