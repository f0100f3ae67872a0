"""
The ADT feed (ITI-8) run on the in-memory index: each event's effect, merge and unmerge,
refusals as ERR at the right place, and the ACK validated by hl7apy.
"""
from __future__ import annotations

from identity.hl7.adt import plan_adt
from identity.hl7.audit import PIX_FEED, feed_audit
from identity.hl7.feed import apply_plan
from identity.model import LocalIdentifier
from identity.service import Registered
from mllp.ack import build_ack, parse_ack
from mllp.header import read_header
from tests.identity.fakes import MemoryIdentityService
from tests.identity.hl7.conformance import CHU, DOMAINS, validation_problems
from tests.identity.hl7.messages import adt, ght, ins, ipp, pid_segment

MATRICULE = "248096343012736"


def feed(service, event, *segments):
    """The FeedOutcome of one message (the fake's Deferreds have already fired)."""
    results = []
    apply_plan(service, plan_adt(adt(event, *segments), DOMAINS)).addBoth(results.append)
    (outcome,) = results
    return outcome


def ack_of(outcome, event="A01"):
    message = adt(event, pid_segment(ipp("1")))
    header = read_header(message.to_text().encode())
    return build_ack(header, outcome.ack_code, errors=outcome.ack_errors, control_id="ACK1",
                     timestamp="20260318112046")


def test_a01_creates_then_a08_updates():
    """If an A01 then an A08 for the same IPP come, then one person with the new traits."""
    service = MemoryIdentityService()
    first = feed(service, "A01", pid_segment(ipp("1")))
    second = feed(service, "A08", pid_segment(f"{ipp('1')}~{ins(MATRICULE)}", status="QUAL",
                                                date="19480921"))
    assert [r.outcome for r in first.results + second.results] == [Registered.CREATED,
                                                                      Registered.UPDATED]
    (person,) = service.persons.values()
    assert person.traits.ins.qualified
    assert LocalIdentifier(CHU, "1") in person.identifiers


def test_second_system_is_linked_by_the_matcher():
    """If the GHT registers the same patient with the same qualified INS, then it is linked."""
    service = MemoryIdentityService()
    feed(service, "A28", pid_segment(f"{ipp('1')}~{ins(MATRICULE)}", status="QUAL"))
    outcome = feed(service, "A28", pid_segment(f"{ght('7')}~{ins(MATRICULE)}", status="QUAL"))
    assert outcome.results[0].outcome is Registered.LINKED
    assert len(service.persons) == 1


def test_merge_then_unmerge():
    """If a duplicate is merged by A40 and the merge is undone, then both persons are back."""
    service = MemoryIdentityService()
    feed(service, "A04", pid_segment(ipp("1")))
    feed(service, "A04", pid_segment(ipp("2"), name="DUPRE^Marie Therese^^^^^L", date="19480922"))
    before = dict(service.persons)
    outcome = feed(service, "A40", pid_segment(ipp("1")), f"MRG|{ipp('2')}")
    assert outcome.ack_code == "AA" and len(service.persons) == 1
    (survivor,) = service.persons.values()
    assert LocalIdentifier(CHU, "2") in survivor.identifiers
    service.unmerge(LocalIdentifier(CHU, "2"))
    assert service.persons == before


def test_merge_of_unknown_patient_is_ae_204_at_mrg():
    """If MRG-1 names nobody, then AE with 204 at MRG-1 and nothing changes."""
    service = MemoryIdentityService()
    feed(service, "A04", pid_segment(ipp("1")))
    outcome = feed(service, "A40", pid_segment(ipp("1")), f"MRG|{ipp('9')}")
    assert outcome.ack_code == "AE"
    assert [(e.code, e.location) for e in outcome.errors] == [(204, "MRG^1^1")]
    assert "9" in outcome.errors[0].text and len(service.persons) == 1
    ack = ack_of(outcome, "A40")
    assert validation_problems(ack.decode(), "ACK") == []
    assert parse_ack(ack).error_codes == (204,)


def test_link_then_unlink():
    """If A24 links two IPPs and A37 unlinks them, then one person, then two again."""
    service = MemoryIdentityService()
    feed(service, "A04", pid_segment(ipp("1")))
    feed(service, "A04", pid_segment(ght("7"), name="MARTIN^Paul^^^^^L", sex="M"))
    assert feed(service, "A24", pid_segment(ipp("1")), pid_segment(ght("7"), sequence=2)).ack_code == "AA"
    assert len(service.persons) == 1
    assert feed(service, "A37", pid_segment(ipp("1")), pid_segment(ght("7"), sequence=2)).ack_code == "AA"
    assert len(service.persons) == 2


def test_change_identifier_and_its_conflict():
    """If A47 corrects an IPP, then the person holds the new one; onto a taken one, 205."""
    service = MemoryIdentityService()
    feed(service, "A04", pid_segment(ipp("1")))
    feed(service, "A04", pid_segment(ipp("5"), name="MARTIN^Paul^^^^^L", sex="M"))
    assert feed(service, "A47", pid_segment(ipp("3")), f"MRG|{ipp('1')}").ack_code == "AA"
    assert service.holder(LocalIdentifier(CHU, "3")) and not service.holder(LocalIdentifier(CHU, "1"))
    taken = feed(service, "A47", pid_segment(ipp("5")), f"MRG|{ipp('3')}")
    assert [(e.code, e.location) for e in taken.errors] == [(205, "MRG^1^1")]


def test_contradictory_traits_open_a_review_item():
    """If a PID says qualified without an INS, then it is stored and a review item opened."""
    service = MemoryIdentityService()
    outcome = feed(service, "A28", pid_segment(ipp("1"), status="QUAL"))
    assert outcome.results[0].outcome is Registered.REVIEW
    assert service.reviews and "qualified" in service.reviews[0][1][0]
    ack = ack_of(outcome)
    assert parse_ack(ack).code == "AA" and validation_problems(ack.decode(), "ACK") == []


def test_bad_pid_is_refused_with_its_error_and_validates():
    """If PID-3 is empty, then AE with 101 at PID-3, no person, and the ACK validates."""
    service = MemoryIdentityService()
    outcome = feed(service, "A01", pid_segment(""))
    assert outcome.ack_code == "AE" and service.persons == {}
    ack = ack_of(outcome)
    assert validation_problems(ack.decode(), "ACK") == []
    assert parse_ack(ack).error_codes == (101,)


def test_feed_message_is_audited():
    """If an ADT message changes the index, then its record names the sender and the person."""
    service = MemoryIdentityService()
    message = adt("A04", pid_segment(ipp("1")), control_id="C42")
    results = []
    apply_plan(service, plan_adt(message, DOMAINS)).addCallback(results.append)
    record = feed_audit(message, results[0].ack_code, "20260318112046", "10.0.0.5:5000",
                        [r.person_id for r in results[0].results])
    assert (record.transaction, record.requester, record.control_id, record.outcome) == \
        (PIX_FEED, "GAM", "C42", "AA")
    assert record.parameters == "ADT^A04^ADT_A01" and record.persons == ("P1",)
