"""
ADT events into index commands (the pure plan), one test per event and per bad input.
"""
from __future__ import annotations

import pytest

from identity.hl7.adt import ChangeIdentifier, Link, Merge, Register, Unlink, plan_adt
from identity.model import INS_NIR, LocalIdentifier
from tests.identity.hl7.conformance import CHU, DOMAINS, GHT
from tests.identity.hl7.messages import adt, ght, ins, ipp, pid_segment

MATRICULE = "248096343012736"


@pytest.mark.parametrize("event", ["A01", "A04", "A05", "A08", "A28", "A31"])
def test_registering_events_create_or_update(event):
    """If an A01/A04/A05/A08/A28/A31 comes, then the plan registers its PID."""
    message = adt(event, pid_segment(f"{ipp('1')}~{ins(MATRICULE)}", status="QUAL"), "PV1|1|I")
    plan = plan_adt(message, DOMAINS)
    assert plan.errors == ()
    (command,) = plan.commands
    assert isinstance(command, Register)
    assert command.identifiers == (LocalIdentifier(CHU, "1"), LocalIdentifier(INS_NIR, MATRICULE))
    assert command.traits.ins.qualified and command.traits.birth_place == "63430"


def test_merge_pairs_each_pid_with_its_mrg():
    """If an A40 merges two duplicates in two PID/MRG groups, then one merge per MRG-1."""
    message = adt("A40", pid_segment(ipp("1")), f"MRG|{ipp('2')}",
                  pid_segment(ght("7"), sequence=2), f"MRG|{ght('8')}")
    plan = plan_adt(message, DOMAINS)
    assert plan.commands == (
        Merge((LocalIdentifier(CHU, "1"),), LocalIdentifier(CHU, "2"), "MRG^1^1"),
        Merge((LocalIdentifier(GHT, "7"),), LocalIdentifier(GHT, "8"), "MRG^2^1"))


@pytest.mark.parametrize("event, kind", [("A24", Link), ("A37", Unlink)])
def test_link_and_unlink_name_the_two_pids(event, kind):
    """If an A24 (A37) comes, then the first identifiers of its two PIDs are (un)linked."""
    message = adt(event, pid_segment(ipp("1")), pid_segment(ght("7"), sequence=2))
    (command,) = plan_adt(message, DOMAINS).commands
    assert command == kind(LocalIdentifier(CHU, "1"), LocalIdentifier(GHT, "7"))


def test_change_identifier_pairs_the_domains():
    """If an A47 corrects an IPP, then MRG-1 is replaced by the PID-3 number of its domain."""
    message = adt("A47", pid_segment(f"{ght('7')}~{ipp('3')}"), f"MRG|{ipp('2')}")
    (command,) = plan_adt(message, DOMAINS).commands
    assert command == ChangeIdentifier(LocalIdentifier(CHU, "2"), LocalIdentifier(CHU, "3"))




def errors_of(message):
    plan = plan_adt(message, DOMAINS)
    assert plan.commands == ()
    return [(e.code, e.location) for e in plan.errors]


def test_not_adt_is_unsupported_message_type():
    """If the message is not ADT, then 200 at MSH-9.1."""
    message = adt("A01", pid_segment(ipp("1")))
    message.msh.set(9, "ORU", 1, 1)
    assert errors_of(message) == [(200, "MSH^1^9^1^1")]


def test_other_event_is_unsupported_event():
    """If the event does not touch the index (A02), then 201 at MSH-9.2."""
    assert errors_of(adt("A02", pid_segment(ipp("1")))) == [(201, "MSH^1^9^1^2")]


def test_no_pid_is_a_segment_error():
    """If an A01 has no PID, then 100."""
    assert errors_of(adt("A01", "PV1|1|I")) == [(100, "PID")]


def test_pid_without_identifier():
    """If the PID has no identifier, then 101 at PID-3 and nothing is registered."""
    assert errors_of(adt("A01", pid_segment(""))) == [(101, "PID^1^3")]


def test_unknown_domain():
    """If PID-3 has a number in a domain nobody declared, then 204 at its CX.4."""
    assert errors_of(adt("A28", pid_segment(f"{ipp('1')}~9^^^X&1.2.3&ISO^PI"))) == \
        [(204, "PID^1^3^2^4")]


def test_merge_without_mrg():
    """If an A40 has no MRG, then 100 at MRG."""
    assert errors_of(adt("A40", pid_segment(ipp("1")))) == [(100, "MRG")]


def test_merge_with_empty_mrg1():
    """If MRG-1 is empty, then 101 at MRG-1."""
    assert errors_of(adt("A40", pid_segment(ipp("1")), "MRG||||")) == [(101, "MRG^1^1")]


def test_merge_from_unknown_domain():
    """If MRG-1 is in an unknown domain, then 204 at MRG-1's CX.4."""
    assert errors_of(adt("A40", pid_segment(ipp("1")), "MRG|2^^^X&1.2.3&ISO^PI")) == \
        [(204, "MRG^1^1^1^4")]


def test_link_needs_two_pids():
    """If an A24 has one PID, then 100 at the second."""
    assert errors_of(adt("A24", pid_segment(ipp("1")))) == [(100, "PID^2")]


def test_change_without_identifier_of_the_domain():
    """If an A47's PID-3 has no number in MRG-1's domain, then 101 at PID-3."""
    assert errors_of(adt("A47", pid_segment(ght("7")), f"MRG|{ipp('2')}")) == [(101, "PID^1^3")]


def test_contradictory_traits_register_for_review():
    """If the PID says qualified but has no INS, then it is registered with a review reason."""
    plan = plan_adt(adt("A28", pid_segment(ipp("1"), status="QUAL")), DOMAINS)
    (command,) = plan.commands
    assert command.review_reasons == plan.notes and "qualified" in command.review_reasons[0]
