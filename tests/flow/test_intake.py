"""
The intake's decisions: what is stored for each kind of input, and what the ACK says.

A small fake store (``ingest`` only, checked against the real :meth:`Store.ingest`) answers
with a scripted :class:`IngestResult` or fails; a fake decider (a slow plan's messages) hands
back Deferreds the test fires (tests/flow/intake_support.py). Every ACK is read back with
python-hl7 (``hl7.parse``), an independent parser, rather than with this project's own
``parse_ack``.
"""
from __future__ import annotations

import dataclasses
import inspect

import pytest

from engine import status as st
from engine.flow.intake import MAX_STORED_ERROR, Intake
from engine.flow.decider import Decider
from engine.flow.queued import QueuedWork
from engine.flow.response import ACK_AFTER_PROCESSING
from engine.flow.routing import lane_for
from engine.flow.plan import InboundMessage
from engine.store.records import Decision, InboundRecord, IngestResult, NewDelivery
from engine.store.store import Store
from mllp.header import MSHHeader
from tests.flow.intake_support import (
    PEER, FakeDecider, FakeQueued, FakeStore, HeldStore, Setup, err_code, failing_store, field_of,
    make, message, parse, plan, result_of)


def test_fakes_match_the_real_signatures() -> None:
    assert (inspect.signature(FakeStore.ingest).parameters
            == inspect.signature(Store.ingest).parameters)
    for fake, real, name in ((FakeDecider, Decider, "submit"), (FakeDecider, Decider, "holds"),
                             (FakeQueued, QueuedWork, "add")):
        assert (list(inspect.signature(getattr(fake, name)).parameters)
                == list(inspect.signature(getattr(real, name)).parameters))


# -- good messages ---------------------------------------------------------------------

def test_good_message_is_stored_then_acknowledged_aa() -> None:
    setup = make()
    ack = result_of(setup.intake.receive("adt", message("MSG00001"), PEER))

    parsed = parse(ack)
    assert field_of(parsed, "MSA", 1) == "AA"
    assert field_of(parsed, "MSA", 2) == "MSG00001"
    assert field_of(parsed, "MSH", 10) == "ACK100"  # tied to the stored message id
    # sender and receiver swapped
    assert [field_of(parsed, "MSH", n) for n in (3, 4, 5, 6)] == ["AIG", "GHT", "HIS", "CHU-A"]
    assert field_of(parsed, "MSH", 9) == "ACK^A01^ACK"
    assert field_of(parsed, "MSH", 12) == "2.5"
    with pytest.raises(KeyError):
        parsed.segment("ERR")

    [record] = setup.store.records
    assert record.channel == "adt"
    assert record.status == st.RECEIVED
    assert record.raw == message("MSG00001")
    assert record.control_id == "MSG00001"
    assert record.sender == "HIS|CHU-A"
    assert record.message_type == "ADT^A01^ADT_A01"
    assert record.peer == "mllp://10.1.2.3:40000"
    assert record.charset == "UNICODE UTF-8"  # the channel's default: MSH-18 is empty
    assert record.dedupe is True
    assert setup.intake.received == 1


def test_records_of_a_message_are_made_with_every_field(monkeypatch) -> None:
    """If the intake makes a message's records without their dataclass __init__
    (engine.store.records.made), then it gives every field: none reads a class default."""
    from engine.flow import intake as module

    seen = []
    monkeypatch.setattr(module, "decide", lambda plan, message: seen.append(message)
                        or Decision(st.TRANSFORMED))
    setup = make()
    result_of(setup.intake.receive("adt", message("F1"), PEER))
    [record], [decided] = setup.store.records, seen
    assert set(vars(record)) == {f.name for f in dataclasses.fields(InboundRecord)}
    assert set(vars(decided)) == {f.name for f in dataclasses.fields(InboundMessage)}
    assert set(vars(decided.header)) == {f.name for f in dataclasses.fields(MSHHeader)}
    assert decided.control_id == "F1" and decided.peer == "mllp://10.1.2.3:40000"


def test_enhanced_mode_answers_ca() -> None:
    setup = make()
    parsed = parse(result_of(setup.intake.receive("adt", message("E1", msh15="AL"), PEER)))
    assert field_of(parsed, "MSA", 1) == "CA"
    assert field_of(parsed, "MSA", 2) == "E1"


def test_routing_only_is_decided_before_the_commit_and_told_to_the_lanes() -> None:
    """If a channel only routes, then its decision (one delivery on the patient's lane) is
    committed with the message, the decider is not involved, and the lanes are told."""
    channel = plan(order_by="patient", lanes=4)
    setup = make(channel)
    raw = message("R1")
    ack = result_of(setup.intake.receive("adt", raw, PEER))

    assert field_of(parse(ack), "MSA", 1) == "AA"
    [record] = setup.store.records
    assert record.decision == Decision(
        st.TRANSFORMED, deliveries=(NewDelivery("out", lane_for("IPP123", 4)),))
    assert setup.decider.queued == []
    assert setup.delivered == [("adt", record.decision.deliveries)]
    assert setup.intake.decided == 1


def test_slow_plan_in_after_commit_mode_is_acked_at_once_and_handed_to_the_decider() -> None:
    """If a channel's plan is slow, then the message is committed RECEIVED without a
    decision, acknowledged AA at once, and handed to the decider with its committed id."""
    setup = make(plan(slow=True))
    ack = result_of(setup.intake.receive("adt", message("Q1"), PEER))

    assert field_of(parse(ack), "MSA", 1) == "AA"
    [record] = setup.store.records
    assert (record.status, record.decision) == (st.RECEIVED, None)
    [(inbound, channel, d)] = setup.decider.queued
    assert (inbound.message_id, channel, inbound.control_id) == (100, "adt", "Q1")
    assert inbound.message_type == "ADT^A01^ADT_A01"
    assert inbound.raw == message("Q1") and inbound.text == message("Q1").decode()
    d.callback(Decision(st.TRANSFORMED))  # nobody waits on it: no error
    assert setup.intake.decided == 0


def test_a_fast_channel_with_decisions_queued_goes_behind_them() -> None:
    """If the decider still holds decisions of a channel whose plan is now fast (a reload),
    then its new messages are queued behind them rather than decided first, so that their
    deliveries cannot overtake the older ones'."""
    setup = make()
    setup.decider.holding.add("adt")
    result_of(setup.intake.receive("adt", message("B1"), PEER))
    assert setup.store.records[0].decision is None
    assert [m.control_id for m, _, _ in setup.decider.queued] == ["B1"]


# -- duplicates ------------------------------------------------------------------------

def test_duplicate_is_acknowledged_aa_naming_the_original_and_not_processed() -> None:
    setup = make(answer=lambda record, message_id: IngestResult(
        message_id, st.DUPLICATE, duplicate_of=42))
    parsed = parse(result_of(setup.intake.receive("adt", message("D1"), PEER)))

    assert field_of(parsed, "MSA", 1) == "AA"
    assert field_of(parsed, "MSA", 2) == "D1"
    assert field_of(parsed, "MSA", 3) == "duplicate of message 42, not processed again"
    assert field_of(parsed, "MSH", 10) == "ACK100"
    assert setup.decider.queued == []
    assert setup.delivered == []


# -- unreadable input ------------------------------------------------------------------

@pytest.mark.parametrize("payload", [
    b"PID|1||42^^^CHU\rEVN||2024\r",
    b"\x00\x01garbage",
    b"",
])
def test_input_without_msh_is_stored_in_error_and_rejected_ar_100(payload: bytes) -> None:
    setup = make()
    ack = result_of(setup.intake.receive("adt", payload, PEER))

    parsed = parse(ack)
    assert field_of(parsed, "MSA", 1) == "AR"
    assert field_of(parsed, "MSA", 2) == ""  # nothing to echo
    assert field_of(parsed, "MSH", 10) == "ACK100"
    assert err_code(parsed) == 100
    [record] = setup.store.records
    assert record.status == st.ERROR
    assert record.raw == payload
    assert "not MSH" in record.error
    assert record.control_id is None and record.sender is None
    assert setup.decider.queued == [] and setup.delivered == []


def test_missing_control_id_is_rejected_ar_101() -> None:
    setup = make()
    payload = b"MSH|^~\\&|HIS|CHU|||2024||ADT^A01||P|2.5\rPID|1\r"
    parsed = parse(result_of(setup.intake.receive("adt", payload, PEER)))
    assert field_of(parsed, "MSA", 1) == "AR"
    assert err_code(parsed) == 101
    assert setup.store.records[0].status == st.ERROR


@pytest.mark.parametrize("payload, code", [
    (b"MSH|^~\\&|HIS|CHU|AIG|GHT|2024|||C-9|P|2.5\rPID|1\r", 101),  # MSH-9 empty
    (b"MSH|^~\\&|HIS|CHU|AIG|GHT|2024||ADT^A01|C-9|P|\rPID|1\r", 101),  # MSH-12 empty
    (b"MSH|^~\\|HIS|CHU|AIG|GHT|2024||ADT^A01|C-9|P|2.5\rPID|1\r", 102),  # MSH-2 invalid
])
def test_refusal_of_unreadable_msh_echoes_what_can_be_read(payload: bytes, code: int) -> None:
    """If MSH cannot be read but MSH-10 can, then the AR echoes it in MSA-2 and answers
    from MSH-5/6 to MSH-3/4, and the record keeps the sender and the control id."""
    setup = make()
    parsed = parse(result_of(setup.intake.receive("adt", payload, PEER)))
    assert (field_of(parsed, "MSA", 1), field_of(parsed, "MSA", 2)) == ("AR", "C-9")
    assert [field_of(parsed, "MSH", n) for n in (3, 4, 5, 6)] == ["AIG", "GHT", "HIS", "CHU"]
    assert err_code(parsed) == code
    [record] = setup.store.records
    assert (record.status, record.control_id, record.sender) == (st.ERROR, "C-9", "HIS|CHU")


def test_bytes_invalid_in_the_declared_charset_are_stored_in_error_and_answered_ae_102() -> None:
    setup = make()
    payload = message("ENC1", charset="UNICODE UTF-8").replace(b"DUPONT", b"DUPR\xc9")
    parsed = parse(result_of(setup.intake.receive("adt", payload, PEER)))

    assert field_of(parsed, "MSA", 1) == "AE"
    assert field_of(parsed, "MSA", 2) == "ENC1"
    assert err_code(parsed) == 102
    assert field_of(parsed, "MSH", 10) == "ACK100"
    [record] = setup.store.records
    assert record.status == st.ERROR
    assert record.raw == payload
    assert (record.control_id, record.sender, record.message_type, record.charset) == (
        "ENC1", "HIS|CHU-A", "ADT^A01^ADT_A01", "UNICODE UTF-8")
    assert "0xc9" in record.error
    assert setup.decider.queued == [] and setup.delivered == []


def test_bad_encoding_in_enhanced_mode_is_ce() -> None:
    setup = make()
    payload = message("ENC2", msh15="AL", charset="UNICODE UTF-8") + b"NTE|1||\xff\r"
    parsed = parse(result_of(setup.intake.receive("adt", payload, PEER)))
    assert field_of(parsed, "MSA", 1) == "CE"
    assert err_code(parsed) == 102


def test_unknown_charset_is_answered_ae_103() -> None:
    setup = make()
    parsed = parse(result_of(setup.intake.receive("adt", message("CS1", charset="KLINGON"),
                                                  PEER)))
    assert field_of(parsed, "MSA", 1) == "AE"
    assert err_code(parsed) == 103
    assert setup.store.records[0].charset == "KLINGON"


# -- store failures --------------------------------------------------------------------

def test_store_failure_is_answered_ae_207_send_it_again_later() -> None:
    setup = make(answer=failing_store)
    ack = result_of(setup.intake.receive("adt", message("F1"), PEER))

    parsed = parse(ack)
    assert field_of(parsed, "MSA", 1) == "AE"
    assert field_of(parsed, "MSA", 2) == "F1"
    assert err_code(parsed) == 207
    assert "send it again later" in ack.decode()
    assert field_of(parsed, "MSH", 10).startswith("ACKX")  # no stored message to name
    assert setup.decider.queued == [] and setup.delivered == []


def test_store_failure_in_enhanced_mode_is_ce_207() -> None:
    setup = make(answer=failing_store)
    parsed = parse(result_of(setup.intake.receive("adt", message("F2", msh15="AL"), PEER)))
    assert field_of(parsed, "MSA", 1) == "CE"
    assert err_code(parsed) == 207


def test_store_failure_for_unreadable_input_still_answers() -> None:
    setup = make(answer=failing_store)
    parsed = parse(result_of(setup.intake.receive("adt", b"garbage", PEER)))
    assert field_of(parsed, "MSA", 1) == "AR"
    assert err_code(parsed) == 100
    assert field_of(parsed, "MSH", 10).startswith("ACKX")


# -- after-processing mode -------------------------------------------------------------

def after_processing() -> Setup:
    return make(plan(ack_mode=ACK_AFTER_PROCESSING, slow=True))


def test_after_processing_ack_waits_for_the_decision() -> None:
    setup = after_processing()
    d = setup.intake.receive("adt", message("P1"), PEER)
    answered: list = []
    d.addBoth(answered.append)
    assert answered == []  # committed, but not processed yet
    [(_, _, processed)] = setup.decider.queued

    processed.callback(Decision(st.TRANSFORMED))

    parsed = parse(answered[0])
    assert field_of(parsed, "MSA", 1) == "AA"
    assert field_of(parsed, "MSA", 2) == "P1"
    assert field_of(parsed, "MSH", 10) == "ACK100"


def test_after_processing_error_outcome_is_ae_207_with_its_text() -> None:
    setup = after_processing()
    d = setup.intake.receive("adt", message("P2"), PEER)
    setup.decider.queued[0][2].callback(
        Decision(st.ERROR, error="mapping failed at PID-5"))

    ack = result_of(d)
    parsed = parse(ack)
    assert field_of(parsed, "MSA", 1) == "AE"
    assert field_of(parsed, "MSA", 2) == "P2"
    assert err_code(parsed) == 207
    assert field_of(parsed, "MSA", 3) == "mapping failed at PID-5"


def test_after_processing_structural_error_names_its_code_and_location() -> None:
    """If processing failed structural validation, then the ERR gives its table 0357 code
    (101) and its location in ERR-2, not 207."""
    setup = after_processing()
    d = setup.intake.receive("adt", message("P5"), PEER)
    setup.decider.queued[0][2].callback(Decision(
        st.ERROR, error="structural validation failed: PID-3 (at PID^1^3)",
        error_code=101, error_location="PID^1^3"))
    parsed = parse(result_of(d))
    assert field_of(parsed, "MSA", 1) == "AE"
    assert err_code(parsed) == 101
    assert field_of(parsed, "ERR", 2) == "PID^1^3"


def test_after_processing_filtered_is_aa_filtered() -> None:
    setup = after_processing()
    d = setup.intake.receive("adt", message("P3"), PEER)
    setup.decider.queued[0][2].callback(Decision(st.FILTERED))
    parsed = parse(result_of(d))
    assert field_of(parsed, "MSA", 1) == "AA"
    assert field_of(parsed, "MSA", 3) == "filtered"


def test_after_processing_failure_to_record_is_ae_207() -> None:
    setup = after_processing()
    d = setup.intake.receive("adt", message("P4"), PEER)
    setup.decider.queued[0][2].errback(RuntimeError("commit failed"))
    parsed = parse(result_of(d))
    assert field_of(parsed, "MSA", 1) == "AE"
    assert err_code(parsed) == 207


def test_after_processing_in_enhanced_mode_is_ca_at_commit() -> None:
    """If an after-processing channel gets an enhanced-mode message, then its accept ACK is
    CA once it is committed, before processing: the outcome goes in the application ACK."""
    setup = after_processing()
    d = setup.intake.receive("adt", message("P4", msh15="AL"), PEER)
    parsed = parse(result_of(d))
    assert field_of(parsed, "MSA", 1) == "CA"
    setup.decider.queued[0][2].errback(RuntimeError("commit failed"))


@pytest.mark.parametrize("msh15, answered", [("NE", False), ("ER", False), ("SU", True),
                                             ("AL", True)])
def test_accept_ack_follows_msh15_on_success(msh15: str, answered: bool) -> None:
    """If a committed message's MSH-15 is NE or ER, then it gets no accept ACK (b"")."""
    setup = make(plan())
    ack_bytes = result_of(setup.intake.receive("adt", message("N1", msh15=msh15), PEER))
    assert bool(ack_bytes) is answered


@pytest.mark.parametrize("msh15, answered", [("NE", False), ("ER", True), ("SU", False)])
def test_accept_ack_follows_msh15_on_a_store_failure(msh15: str, answered: bool) -> None:
    """If the commit failed, then MSH-15 ER gets its CE and SU or NE nothing."""
    setup = make(answer=failing_store)
    ack_bytes = result_of(setup.intake.receive("adt", message("N2", msh15=msh15), PEER))
    assert bool(ack_bytes) is answered


def test_after_processing_duplicate_is_answered_without_waiting() -> None:
    setup = make(plan(ack_mode=ACK_AFTER_PROCESSING), answer=lambda record, message_id:
                 IngestResult(message_id, st.DUPLICATE, duplicate_of=7))
    parsed = parse(result_of(setup.intake.receive("adt", message("P5"), PEER)))
    assert field_of(parsed, "MSA", 1) == "AA"
    assert "duplicate of message 7" in field_of(parsed, "MSA", 3)
    assert setup.decider.queued == []


# -- reject ----------------------------------------------------------------------------

def test_reject_stores_an_error_record() -> None:
    setup = make()
    result = result_of(setup.intake.reject("adt", b"\x0bMSH|partial", PEER, "frame too large"))

    assert result == IngestResult(100, st.ERROR)
    [record] = setup.store.records
    assert record.status == st.ERROR
    assert record.raw == b"\x0bMSH|partial"
    assert record.error == "frame too large"
    assert record.channel == "adt"
    assert record.peer == "mllp://10.1.2.3:40000"
    assert setup.intake.rejected == 1 and setup.intake.received == 0


def test_reject_keeps_what_of_the_msh_can_be_read() -> None:
    """If a refused frame starts with an MSH, then its record keeps sender, control id and
    type, as read leniently from the frame's start."""
    setup = make()
    result_of(setup.intake.reject("adt", message("BIG1")[:120], PEER, "frame too large"))
    [record] = setup.store.records
    assert (record.control_id, record.sender, record.message_type) == (
        "BIG1", "HIS|CHU-A", "ADT^A01^ADT_A01")


def test_reject_truncates_a_long_error_and_survives_a_store_failure() -> None:
    setup = make(answer=failing_store)
    d = setup.intake.reject("adt", b"x", "a peer without address", "e" * 10_000)
    assert result_of(d) is None  # logged, not raised into the source
    assert len(setup.store.records[0].error) == MAX_STORED_ERROR
    assert setup.store.records[0].peer == "a peer without address"


# -- persist before acknowledge --------------------------------------------------------

def test_a_fast_plan_waits_behind_a_slow_message_still_being_committed() -> None:
    """If a reload makes a channel's plan fast while a message of its slow plan is still
    being committed RECEIVED (not yet with the decider), then the next message is not
    decided before its commit either: it would overtake the first; once the first is handed
    to the decider, the channel's messages are decided at intake again."""
    store = HeldStore()
    decider, queued = FakeDecider(), FakeQueued()
    intake = Intake(store, {"adt": plan(slow=True)}, decider, queued)
    intake.receive("adt", message("S1"), PEER)
    intake.channels["adt"] = plan()
    intake.receive("adt", message("F1"), PEER)
    assert [r.decision for r in store.records] == [None, None]
    for held in store.pending:
        held.callback(None)
    assert [m.control_id for m, _, _ in decider.queued] == ["S1", "F1"]
    intake.receive("adt", message("F2"), PEER)
    assert store.records[-1].decision is not None


@pytest.mark.parametrize("payload", [message("H1"), b"garbage",
                                     message("H2", charset="UNICODE UTF-8") + b"\xff\r"])
def test_no_ack_leaves_before_the_commit(payload: bytes) -> None:
    store = HeldStore()
    intake = Intake(store, {"adt": plan()}, FakeDecider(), FakeQueued())
    answered: list = []
    intake.receive("adt", payload, PEER).addBoth(answered.append)
    assert answered == [] and len(store.pending) == 1

    store.pending[0].callback(None)

    assert len(answered) == 1 and isinstance(answered[0], bytes)
