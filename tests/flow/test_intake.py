"""
The intake's decisions: what is stored for each kind of input, and what the ACK says.

A small fake store (``ingest`` only, checked against the real :meth:`Store.ingest`) answers
with a scripted :class:`IngestResult` or fails; a fake decider (a slow plan's messages) hands
back Deferreds the test fires. Every ACK is read back with python-hl7 (``hl7.parse``), an independent parser, rather
than with this project's own ``parse_ack``.
"""
from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field
from typing import Any, Callable

import hl7
import pytest
from twisted.internet import defer

from engine import status as st
from engine.interfaces import PeerInfo
from engine.flow.intake import MAX_STORED_ERROR, ChannelNotRunning, Intake
from engine.flow.decider import Decider
from engine.flow.plan import ChannelPlan, DestinationPlan, InboundMessage
from engine.flow.queued import QueuedWork
from engine.flow.response import ACK_AFTER_COMMIT, ACK_AFTER_PROCESSING, ResponsePolicy
from engine.flow.routing import lane_for
from engine.store.records import Decision, InboundRecord, IngestResult, NewDelivery
from engine.store.store import Store

PEER = PeerInfo("mllp", "10.1.2.3:40000")


def message(control_id: str = "MSG00001", *, msh15: str = "", charset: str = "",
            body: str = "PID|1||IPP123^^^CHU~INS9^^^INS||DUPONT^JEAN\r",
            version: str = "2.5") -> bytes:
    msh = (f"MSH|^~\\&|HIS|CHU-A|AIG|GHT|20240101120000||ADT^A01^ADT_A01|{control_id}|P|"
           f"{version}|||{msh15}|||{charset}")
    return (msh.rstrip("|") + "\r" + "EVN||20240101120000\r" + body).encode("utf-8")


# -- fakes -----------------------------------------------------------------------------

@dataclass
class FakeStore:
    """``ingest`` only: records what it is given, answers as scripted (default: RECEIVED)."""

    answer: Callable[[InboundRecord, int], Any] | None = None
    records: list[InboundRecord] = field(default_factory=list)
    next_id: int = 100

    def ingest(self, record: InboundRecord) -> defer.Deferred:
        self.records.append(record)
        message_id = self.next_id
        self.next_id += 1
        if self.answer is None:
            status, decision = record.status, record.decision
            if decision is not None and status == st.RECEIVED:  # decided before the commit
                return defer.succeed(IngestResult(
                    message_id, decision.status,
                    delivery_ids=tuple(range(500, 500 + len(decision.deliveries)))))
            return defer.succeed(IngestResult(message_id, status))
        try:
            return defer.succeed(self.answer(record, message_id))
        except Exception as error:
            return defer.fail(error)


@dataclass
class FakeDecider:
    """``submit`` hands back a Deferred per message, which the test fires with a Decision;
    ``holding`` names the channels said to have decisions queued."""

    queued: list[tuple[InboundMessage, str, defer.Deferred]] = field(default_factory=list)
    holding: set[str] = field(default_factory=set)

    def submit(self, channel: str, message: InboundMessage) -> defer.Deferred:
        d: defer.Deferred = defer.Deferred()
        self.queued.append((message, channel, d))
        return d

    def holds(self, channel: str) -> bool:
        return channel in self.holding


@dataclass
class FakeQueued:
    """``add`` records the deliveries committed, per channel."""

    added: list[tuple[str, tuple[NewDelivery, ...]]] = field(default_factory=list)

    def add(self, channel: str, deliveries: Any) -> None:
        self.added.append((channel, tuple(deliveries)))


def test_fakes_match_the_real_signatures() -> None:
    assert (inspect.signature(FakeStore.ingest).parameters
            == inspect.signature(Store.ingest).parameters)
    for fake, real, name in ((FakeDecider, Decider, "submit"), (FakeDecider, Decider, "holds"),
                             (FakeQueued, QueuedWork, "add")):
        assert (list(inspect.signature(getattr(fake, name)).parameters)
                == list(inspect.signature(getattr(real, name)).parameters))


def plan(name: str = "adt", *, ack_mode: str = ACK_AFTER_COMMIT, order_by: str = "destination",
         lanes: int = 1, slow: bool = False, **response: Any) -> ChannelPlan:
    """A channel with one destination; ``response`` holds ResponsePolicy fields; ``slow``:
    decided by the decider after the commit."""
    return ChannelPlan(name, (DestinationPlan("out", order_by, lanes),),
                       response=ResponsePolicy(ack_mode, **response), marked_slow=slow)


@dataclass
class Setup:
    intake: Intake
    store: FakeStore
    decider: FakeDecider
    queued: FakeQueued

    @property
    def delivered(self) -> list[tuple[str, tuple[NewDelivery, ...]]]:
        return self.queued.added


def make(channel: ChannelPlan | None = None, answer: Callable | None = None) -> Setup:
    channel = channel or plan()
    store, decider, queued = FakeStore(answer=answer), FakeDecider(), FakeQueued()
    intake = Intake(store, {channel.name: channel}, decider, queued)
    return Setup(intake, store, decider, queued)


def result_of(d: defer.Deferred) -> Any:
    """The result a Deferred has already fired with (fails the test if it has not)."""
    results: list = []
    d.addBoth(results.append)
    assert results, "the Deferred has not fired"
    outcome = results[0]
    if hasattr(outcome, "raiseException"):
        outcome.raiseException()
    return outcome


def parse(ack: bytes) -> Any:
    assert isinstance(ack, bytes) and ack.endswith(b"\r")
    return hl7.parse(ack.decode("utf-8"))


def field_of(parsed: Any, segment: str, number: int) -> str:
    try:
        return str(parsed.segment(segment)[number])
    except (IndexError, KeyError):
        return ""


def err_code(parsed: Any) -> int:
    return int(str(parsed.segment("ERR")[3][0][0]))


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

def failing_store(record: InboundRecord, message_id: int) -> IngestResult:
    raise RuntimeError("database is locked")


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

class HeldStore(FakeStore):
    """Commits only when the test says so, as a group commit under way would."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: list[defer.Deferred] = []

    def ingest(self, record: InboundRecord) -> defer.Deferred:
        committed = super().ingest(record)
        held: defer.Deferred = defer.Deferred()
        self.pending.append(held)
        held.addCallback(lambda _: committed)
        return held


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
