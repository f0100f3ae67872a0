"""
Enhanced-mode acknowledgements as pure decisions: the accept ACK MSH-15 asks for, the
application ACK MSH-16 asks for, what the application ACK says, and that it joins the decision
as an ``application-ack`` delivery. Application ACKs are validated by hl7apy, strictly.
"""
from __future__ import annotations

import dataclasses

import pytest

from engine import status as st
from engine.flow.appack import APPLICATION_ACK, application_ack, with_application_ack
from engine.flow.plan import ChannelPlan, DestinationPlan
from engine.flow.response import ACK_AFTER_PROCESSING, ResponsePolicy
from engine.store.records import ConsentChange, Decision, NewDelivery
from mllp import ack
from mllp.header import read_header
from tests.mllp.test_ack_conformance import validate

CHU_OID = "1.2.250.1.999.1.1"
CONDITIONS = ["AL", "NE", "ER", "SU"]
OUTCOMES = [ack.ACCEPT, ack.ERROR, ack.REJECT]


def header(msh15: str, msh16: str, version: str = "2.5") -> ack.MSHHeader:
    structure = "" if version == "2.3" else "^ADT_A01"
    return read_header(f"MSH|^~\\&|HIS|HOSP|AIG|FAC|20260101||ADT^A01{structure}|C-7|P|"
                       f"{version}|||{msh15}|{msh16}\rPID|1||123^^^HOSP^PI\r".encode())


def expected(condition: str, outcome: str) -> bool:
    """HL7 table 0155, as chapter 2 defines each condition."""
    return {"AL": True, "NE": False, "ER": outcome != ack.ACCEPT,
            "SU": outcome == ack.ACCEPT}[condition]


@pytest.mark.parametrize("condition", CONDITIONS)
@pytest.mark.parametrize("outcome", OUTCOMES)
def test_accept_ack_follows_msh15(condition: str, outcome: str) -> None:
    assert ack.accept_ack_wanted(header(condition, "AL"), outcome) is expected(condition, outcome)


@pytest.mark.parametrize("condition", CONDITIONS)
@pytest.mark.parametrize("outcome", OUTCOMES)
def test_application_ack_follows_msh16(condition: str, outcome: str) -> None:
    wanted = ack.application_ack_wanted(header("AL", condition), outcome)
    assert wanted is expected(condition, outcome)


@pytest.mark.parametrize("outcome", OUTCOMES)
def test_original_mode_has_one_ack_and_no_application_ack(outcome: str) -> None:
    """If MSH-15 and MSH-16 are both empty, then the one ACK is wanted and no other."""
    assert ack.accept_ack_wanted(header("", ""), outcome)
    assert not ack.application_ack_wanted(header("", ""), outcome)


def test_empty_msh16_next_to_msh15_asks_no_application_ack() -> None:
    assert not ack.application_ack_wanted(header("AL", ""), ack.ACCEPT)


def channel(**response: str) -> ChannelPlan:
    return ChannelPlan("adt", (DestinationPlan("out"),), response=ResponsePolicy(**response))


DECISIONS = {
    "AA": Decision(st.TRANSFORMED, deliveries=(NewDelivery("out"),)),
    "AE": Decision(st.ERROR, error="steps[0].set: no ZBE segment"),
}


@pytest.mark.parametrize("version", ["2.3", "2.5", "2.8"])
@pytest.mark.parametrize("code", sorted(DECISIONS))
def test_the_application_ack_answers_the_message_and_asks_for_none(version: str,
                                                                   code: str) -> None:
    """If MSH-16 is AL, then the application ACK is AA (or AE with the decision's ERR),
    MSA-2 the message's MSH-10, MSH-9 ACK^A01^ACK, MSH-15/16 NE, and hl7apy accepts it."""
    payload = application_ack(channel(), header("AL", "AL", version), DECISIONS[code],
                              control_id="AP1", timestamp="20260101120000")
    parsed = ack.parse_ack(payload)
    assert (parsed.code, parsed.control_id_echoed) == (code, "C-7")
    msh = payload.split(b"\r")[0].split(b"|")
    assert msh[8] == (b"ACK^A01" if version == "2.3" else b"ACK^A01^ACK")
    assert (msh[14], msh[15]) == (b"NE", b"NE")
    if code == "AE":
        assert parsed.error_codes == (207,) and "no ZBE segment" in parsed.text
    validate(payload, version)


def test_on_error_ar_makes_the_application_ack_ar() -> None:
    payload = application_ack(channel(mode=ACK_AFTER_PROCESSING, on_error="AR"),
                              header("AL", "AL"), DECISIONS["AE"], control_id="AP2",
                              timestamp="20260101120000")
    assert ack.parse_ack(payload).code == "AR"


@pytest.mark.parametrize("msh16, status, delivered", [
    ("AL", st.TRANSFORMED, True), ("AL", st.ERROR, True), ("NE", st.ERROR, False),
    ("ER", st.TRANSFORMED, False), ("ER", st.ERROR, True), ("SU", st.TRANSFORMED, True),
    ("SU", st.ERROR, False), ("AL", st.FILTERED, True)])
def test_the_application_ack_joins_the_decision_as_a_delivery(msh16: str, status: str,
                                                             delivered: bool) -> None:
    """If MSH-16 asks for it, then the decision carries one more delivery, to
    application-ack, whose payload is the ACK; the other deliveries are kept as they were."""
    decision = Decision(status, deliveries=(NewDelivery("out"),) if status == st.TRANSFORMED
                        else ())
    made = with_application_ack(channel(), header("AL", msh16), decision)
    added = [d for d in made.deliveries if d.destination == APPLICATION_ACK]
    assert len(added) == int(delivered)
    assert made.deliveries[:len(decision.deliveries)] == decision.deliveries
    assert made.status == decision.status
    if delivered:
        assert ack.parse_ack(added[0].payload).control_id_echoed == "C-7"


def test_a_message_from_the_store_has_its_msh_read_again() -> None:
    raw = (b"MSH|^~\\&|HIS|HOSP|AIG|FAC|20260101||ADT^A01^ADT_A01|R-1|P|2.5|||AL|AL\r"
           b"PID|1\r")
    made = with_application_ack(channel(), None, Decision(st.TRANSFORMED), raw)
    assert ack.parse_ack(made.deliveries[0].payload).control_id_echoed == "R-1"


def test_original_mode_decisions_are_left_alone() -> None:
    decision = DECISIONS["AA"]
    assert with_application_ack(channel(), header("", ""), decision) is decision


@pytest.mark.parametrize("msh16", ["AL", "NE", ""])
def test_a_query_answer_is_the_application_response_whatever_msh16(msh16: str) -> None:
    """If a hook answered a query (Decision.response) in enhanced mode, then its answer, not an
    ACK, is the application-ack delivery, even when MSH-16 asks for no application ACK."""
    rsp = b"MSH|^~\\&|MPI|GHT|DPI|CAB|20260101||RSP^K23^RSP_K23|R1|P|2.5\rMSA|AA|C-7\r"
    decision = Decision(st.FILTERED, response=rsp)
    made = with_application_ack(channel(), header("AL", msh16), decision)
    assert [(d.destination, d.payload) for d in made.deliveries] == [(APPLICATION_ACK, rsp)]
    assert made.response == rsp


def test_the_application_ack_keeps_everything_else_the_decision_carries() -> None:
    """If the decision were rebuilt field by field, then a field added later (the consent an
    ADT records, its warnings) would be dropped for enhanced-mode senders alone; every field
    but the deliveries is kept as it was."""
    consent = (ConsentChange(((CHU_OID, "123"),), "shared-record", True, "opposition"),)
    decision = Decision(st.TRANSFORMED, detail="identity: person 1", deliveries=(
        NewDelivery("out"),), warnings=((1, "kept for review", "PID^1^3"),), consent=consent)
    made = with_application_ack(channel(), header("AL", "AL"), decision)
    assert [d.destination for d in made.deliveries] == ["out", APPLICATION_ACK]
    assert dataclasses.replace(made, deliveries=decision.deliveries) == decision
