"""
The IPF ITI-8 samples (v2.3.1, other senders' shapes) planned as feed commands.
"""
from __future__ import annotations

import pytest

from identity.hl7.adt import Merge, Register, plan_adt
from identity.hl7.domains import DomainTable
from identity.model import IdentifierDomain, LocalIdentifier
from mappings.message import HL7Message

MPI = IdentifierDomain("2.16.840.1.113883.3.37.4.1.1.2.1.1", "MPI")
HZLN = IdentifierDomain("2.16.840.1.113883.3.37.4.1.1.2.411.1", "HZLN")
KHKN = IdentifierDomain("2.16.840.1.113883.3.37.4.1.1.2.611.1", "KHKN")
CCC = IdentifierDomain("2.16.840.1.113883.3.37.4.1.1.2.711.1", "CCC")
XREF = IdentifierDomain("1.3.6.1.4.1.21367.2005.1.2", "XREF2005")
HIMSS = IdentifierDomain("1.3.6.1.4.1.21367.2005.1.1", "HIMSS2005")
DOMAINS = DomainTable([MPI, HZLN, KHKN, CCC, XREF, HIMSS])


def sample(standards, name: str) -> HL7Message:
    return HL7Message.parse((standards / "hl7v2" / "ipf" / name).read_text(encoding="latin-1"))


@pytest.mark.parametrize("name, identifiers", [
    ("pix-feed/A01.hl7", [(MPI, "306563"), (KHKN, "30753")]),
    ("pix-feed/A04.hl7", [(MPI, "305090"), (HZLN, "13278"), (XREF, "02777")]),
    ("pix-feed/A08.hl7", [(MPI, "306567")]),
])
def test_registrations(standards, name, identifiers):
    """If an IPF A01/A04/A08 is planned, then it registers its identifiers; a null CX is skipped."""
    plan = plan_adt(sample(standards, name), DOMAINS)
    assert plan.errors == ()
    (command,) = plan.commands
    assert isinstance(command, Register)
    assert command.identifiers == tuple(LocalIdentifier(d, v) for d, v in identifiers)
    assert command.review_reasons == ()  # a skipped null is told in the ACK, not reviewed


def test_merge(standards):
    """If the IPF ITI-8 A40 is planned, then MRG-1's patient merges into PID-3's."""
    (command,) = plan_adt(sample(standards, "pix-pdq/iti-8.hl7"), DOMAINS).commands
    assert command == Merge((LocalIdentifier(HIMSS, "PDQ113XX35"),),
                            LocalIdentifier(HIMSS, "PDQ113XX03"))


def test_merge_with_an_unqualified_mrg_repetition(standards):
    """If MRG-1 repeats a number with no assigning authority, then 101 at its CX.4."""
    plan = plan_adt(sample(standards, "pix-pdq/iti8-a40.hl7"), DOMAINS)
    assert [(e.code, e.location) for e in plan.errors] == [(101, "MRG^1^1^1^4")]
