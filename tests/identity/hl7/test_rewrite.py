"""
The ``identity:`` step's PID-3 rewrite: qualified INS first, then the target domains.
"""
from __future__ import annotations

from dataclasses import replace

from identity.hl7.rewrite import TargetDomains, person_of, rewrite_pid3
from identity.model import INS, INS_NIR, IdentityStatus, LocalIdentifier, Sex, Traits
from identity.service import PersonRecord
from mappings.message import HL7Message
from tests.identity.fakes import MemoryIdentityService
from tests.identity.hl7.conformance import CHU, GHT
from tests.identity.hl7.messages import adt, ipp, pid_segment

MATRICULE = "248096343012736"
QUALIFIED = Traits("CHASSAGNE", ("MARIE",), "19480921", Sex.FEMALE,
                   ins=INS(MATRICULE, INS_NIR, IdentityStatus.QUALIFIED))
PERSON = PersonRecord("P1", (LocalIdentifier(CHU, "1"), LocalIdentifier(GHT, "7"),
                             LocalIdentifier(INS_NIR, MATRICULE)), QUALIFIED)


def pid3_after(person, target):
    message = adt("A01", pid_segment(ipp("1")), "PV1|1|I")
    result = rewrite_pid3(message, person, target)
    text = message.to_text()
    reparsed = HL7Message.parse(text).segment("PID")
    return result, [(reparsed.get(3, r, 1), reparsed.get(3, r, 4, 2), reparsed.get(3, r, 5))
                    for r in range(1, len(reparsed.repetitions(3)) + 1)], message


def test_qualified_ins_first_then_the_territory_identifier():
    """If the person has a qualified INS, then PID-3 is INS, then the GHT number."""
    result, pid3, _ = pid3_after(PERSON, TargetDomains((GHT,)))
    assert pid3 == [(MATRICULE, INS_NIR.oid, "INS"), ("7", GHT.oid, "PI")]
    assert result.problem is None and len(result.written) == 2


def test_unqualified_ins_is_never_written():
    """If the INS is only recovered, then PID-3 holds the target domains alone."""
    person = replace(PERSON, traits=replace(QUALIFIED, ins=replace(QUALIFIED.ins,
                                                                  status=IdentityStatus.RECOVERED)))
    _, pid3, _ = pid3_after(person, TargetDomains((GHT, CHU)))
    assert [value for value, _, _ in pid3] == ["7", "1"]


def test_order_follows_the_step_and_others_can_be_kept():
    """If the step lists CHU then keeps others, then CHU, then GHT, without the INS first."""
    _, pid3, _ = pid3_after(PERSON, TargetDomains((CHU,), ins_first=False, keep_others=True))
    assert [value for value, _, _ in pid3] == ["1", "7"]


def test_nothing_usable_leaves_pid3_and_says_why():
    """If the person has neither a qualified INS nor a target number, then PID-3 is untouched."""
    person = PersonRecord("P2", (LocalIdentifier(CHU, "1"),), replace(QUALIFIED, ins=None))
    result, pid3, message = pid3_after(person, TargetDomains((GHT,)))
    assert pid3 == [("1", CHU.oid, "PI")] and "P2" in result.problem
    assert message.segment("PID").changed is False


def test_person_of_asks_local_identifiers_in_order():
    """If PID-3 is unknown IPP, known GHT number, INS, then the GHT number names the person."""
    service = MemoryIdentityService()
    service.add_person(PERSON)
    found = []
    person_of(service, [LocalIdentifier(CHU, "404"), LocalIdentifier(GHT, "7")]).addCallback(found.append)
    alone = []
    person_of(service, [LocalIdentifier(INS_NIR, MATRICULE)]).addCallback(alone.append)
    assert (found, alone) == ([PERSON], [None])
