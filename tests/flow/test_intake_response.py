"""
The intake's answers as a channel's ``response:`` block shapes them (the code for a message
processed into ERROR or FILTERED, the sending names of every ACK), and the hand-over from
another channel, which is committed like any input and answered by no ACK.
"""
from __future__ import annotations

import re
from typing import Any

import pytest

from engine import status as st
from engine.interfaces import PeerInfo
from engine.flow.intake import ChannelNotRunning, Intake
from engine.flow.response import ACK_AFTER_PROCESSING, ResponsePolicy
from engine.store.records import Decision, IngestResult
from tests.flow.intake_support import (
    PEER, FakeDecider, FakeQueued, HeldStore, err_code, failing_store, field_of, make, message,
    parse, plan, result_of)


# -- the response block ----------------------------------------------------------------

def processed_into(status: str, *, payload: bytes | None = None, **response: Any) -> Any:
    """The ACK (parsed) of a message processed into ``status`` on an after-processing
    channel with ``response`` settings."""
    setup = make(plan(ack_mode=ACK_AFTER_PROCESSING, slow=True, **response))
    d = setup.intake.receive("adt", payload or message("R1"), PEER)
    error = "steps[0].set: no ZBE segment" if status == st.ERROR else None
    setup.decider.queued[0][2].callback(Decision(status, error=error))
    return parse(result_of(d))


@pytest.mark.parametrize("on_error, msh15, code", [
    ("AE", "", "AE"), ("AR", "", "AR")])
def test_on_error_is_the_code_of_a_message_processed_into_error(on_error, msh15, code) -> None:
    """If the pipeline put the message in ERROR, then the ACK is on-error (AE or AR), in
    the message's acknowledgement mode, with ERR 207 and the error's text."""
    parsed = processed_into(st.ERROR, payload=message("R1", msh15=msh15), on_error=on_error)
    assert field_of(parsed, "MSA", 1) == code
    assert err_code(parsed) == 207
    assert field_of(parsed, "MSA", 3) == "steps[0].set: no ZBE segment"


@pytest.mark.parametrize("on_filtered, msh15, code", [
    ("AA", "", "AA"), ("AE", "", "AE")])
def test_on_filtered_is_the_code_of_a_filtered_message(on_filtered, msh15, code) -> None:
    """If a filter dropped the message, then the ACK is on-filtered (AA or AE), in the
    message's acknowledgement mode, saying "filtered", without ERR."""
    parsed = processed_into(st.FILTERED, payload=message("R1", msh15=msh15),
                            on_filtered=on_filtered)
    assert field_of(parsed, "MSA", 1) == code
    assert field_of(parsed, "MSA", 3) == "filtered"
    with pytest.raises(KeyError):
        parsed.segment("ERR")


def test_on_error_and_on_filtered_leave_a_processed_message_accepted() -> None:
    """If the message was processed and delivered, then it is AA whatever the policy says."""
    parsed = processed_into(st.TRANSFORMED, on_error="AR", on_filtered="AE")
    assert field_of(parsed, "MSA", 1) == "AA"


def test_on_error_does_not_touch_what_the_intake_itself_decides() -> None:
    """If the input is unreadable or the store fails, then the answers stay as they were:
    on-error is about the pipeline's outcome only."""
    channel = plan(ack_mode=ACK_AFTER_PROCESSING, on_error="AR")
    assert field_of(parse(result_of(make(channel).intake.receive(
        "adt", message("U1", charset="UNICODE UTF-8") + b"\xff\r", PEER))), "MSA", 1) == "AE"
    assert field_of(parse(result_of(make(channel, answer=failing_store).intake.receive(
        "adt", message("U2"), PEER))), "MSA", 1) == "AE"


def test_sending_application_and_facility_are_msh3_and_msh4_of_every_ack() -> None:
    """If the channel names who answers, then MSH-3/MSH-4 of the ACK are those names, their
    components written with the message's own separators; MSH-5/MSH-6 still echo the
    sender."""
    setup = make(plan(sending_application="AIGUILLAGE",
                      sending_facility="CHU-EXEMPLE^1.2.250.1.999.1^ISO"))
    payload = message("S1").replace(b"MSH|^~\\&|", b"MSH|$~\\&|")
    ack = result_of(setup.intake.receive("adt", payload, PEER))
    msh = ack.split(b"\r")[0].split(b"|")
    assert msh[2:6] == [b"AIGUILLAGE", b"CHU-EXEMPLE$1.2.250.1.999.1$ISO", b"HIS", b"CHU-A"]


def test_sending_names_are_used_for_refusals_too() -> None:
    """If the message is refused at intake, even without a readable MSH, then the answer
    still comes from the configured application and facility."""
    channel = plan(sending_application="AIGUILLAGE", sending_facility="CHU")
    for payload in (b"garbage", message("S2", charset="UNICODE UTF-8") + b"\xff\r"):
        parsed = parse(result_of(make(channel).intake.receive("adt", payload, PEER)))
        assert [field_of(parsed, "MSH", n) for n in (3, 4)] == ["AIGUILLAGE", "CHU"]


def test_without_sending_names_the_ack_echoes_msh5_and_msh6() -> None:
    parsed = parse(result_of(make().intake.receive("adt", message("S3"), PEER)))
    assert [field_of(parsed, "MSH", n) for n in (3, 4)] == ["AIG", "GHT"]


@pytest.mark.parametrize("fields, complaint", [
    ({"mode": "after-commmit"}, "mode must be one of"),
    ({"on_error": "AA"}, "on-error must be AE or AR"),
    ({"on_filtered": "AR"}, "on-filtered must be AA or AE"),
    ({"sending_facility": "CHU|A"}, "'|' cannot be written in MSH-3/MSH-4"),
    ({"sending_application": " "}, "expected a name"),
])
def test_a_response_policy_refuses_what_cannot_be_answered(fields, complaint) -> None:
    with pytest.raises(ValueError, match=re.escape(complaint)):
        ResponsePolicy(**fields)


# -- hand-over from another channel ----------------------------------------------------

HANDED = PeerInfo("channel", "adt-in/message 42")


def test_hand_over_fires_with_the_commit_and_records_where_the_message_came_from() -> None:
    """If another channel hands a message over, then it is committed as a message of this
    channel, its peer names the sending channel and message, and the Deferred fires with
    the commit's outcome (not an ACK)."""
    setup = make()
    result = result_of(setup.intake.hand_over("adt", message("H1"), HANDED))

    assert result == IngestResult(100, st.TRANSFORMED, delivery_ids=(500,))
    [record] = setup.store.records
    assert record.peer == "channel:adt-in/message 42"
    assert (record.channel, record.control_id, record.sender) == ("adt", "H1", "HIS|CHU-A")
    assert len(setup.delivered) == 1  # routed: its deliveries go to the lanes as usual
    assert setup.intake.received == 1


def test_hand_over_reads_the_bytes_in_the_sending_channels_charset() -> None:
    """If MSH-18 is empty, then the bytes are read in the character set the sending channel
    gives, not this channel's encoding, and that is what is stored and decided."""
    setup = make(plan(slow=True))
    payload = message("H2").replace(b"DUPONT", "DUPRÉ".encode("latin-1"))

    result_of(setup.intake.hand_over("adt", payload, HANDED, "8859/1"))

    assert setup.store.records[0].charset == "8859/1"
    [(inbound, _, _)] = setup.decider.queued
    assert "DUPRÉ" in inbound.text and inbound.charset == "8859/1"


def test_hand_over_to_an_after_processing_channel_fires_at_commit() -> None:
    """If the target acknowledges after processing, then the hand-over still answers at
    commit: the sending lane needs the message safe, not processed."""
    setup = make(plan(ack_mode=ACK_AFTER_PROCESSING, slow=True))
    result = result_of(setup.intake.hand_over("adt", message("H3"), HANDED))
    assert result == IngestResult(100, st.RECEIVED)
    [(_, _, processed)] = setup.decider.queued
    processed.callback(Decision(st.ERROR, error="x"))  # answered to nobody


def test_hand_over_made_again_is_a_duplicate() -> None:
    setup = make(answer=lambda record, message_id: IngestResult(
        message_id, st.DUPLICATE, duplicate_of=42))
    assert result_of(setup.intake.hand_over("adt", message("H4"), HANDED)).status == st.DUPLICATE
    assert setup.decider.queued == [] and setup.delivered == []


def test_hand_over_of_unreadable_bytes_is_committed_in_error() -> None:
    setup = make()
    assert result_of(setup.intake.hand_over("adt", b"garbage", HANDED)) == IngestResult(
        100, st.ERROR)


@pytest.mark.parametrize("payload", [message("H5"), b"garbage"])
def test_hand_over_fails_when_the_store_fails(payload: bytes) -> None:
    """If the commit fails, then the hand-over fails with the store's error, so that the
    sending lane retries it."""
    setup = make(answer=failing_store)
    with pytest.raises(RuntimeError, match="database is locked"):
        result_of(setup.intake.hand_over("adt", payload, HANDED))


def test_hand_over_to_a_channel_not_running_fails() -> None:
    setup = make()
    with pytest.raises(ChannelNotRunning, match='channel "lab" is not running here'):
        result_of(setup.intake.hand_over("lab", message("H6"), HANDED))
    assert setup.store.records == []


def test_hand_over_does_not_answer_before_the_commit() -> None:
    store = HeldStore()
    intake = Intake(store, {"adt": plan()}, FakeDecider(), FakeQueued())
    answered: list = []
    intake.hand_over("adt", message("H7"), HANDED).addBoth(answered.append)
    assert answered == []

    store.pending[0].callback(None)

    assert answered == [IngestResult(100, st.TRANSFORMED, delivery_ids=(500,))]
