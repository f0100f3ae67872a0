"""
One PIX and one PDQ query answered on the in-memory index, end to end but for the socket.
"""
from __future__ import annotations

from identity.hl7.queries import answer_pdq, answer_pix
from identity.hl7.response import Envelope
from identity.model import LocalIdentifier, Sex, Traits
from identity.service import PersonRecord
from mappings.message import HL7Message
from tests.identity.fakes import MemoryIdentityService
from tests.identity.hl7.conformance import CHU, DOMAINS, GHT, validation_problems

ENVELOPE = Envelope("R9", "20260320100001")
PERSON = PersonRecord("P1", (LocalIdentifier(CHU, "1"), LocalIdentifier(GHT, "7")),
                      Traits("DUPONT", ("Jean",), "19800101", Sex.MALE))


def service() -> MemoryIdentityService:
    index = MemoryIdentityService()
    index.add_person(PERSON)
    return index


def fired(deferred):
    results = []
    deferred.addBoth(results.append)
    return results[0]


def message(kind: str, qpd3: str) -> HL7Message:
    structure = "QBP^Q23^QBP_Q21" if kind == "pix" else "QBP^Q22^QBP_Q21"
    return HL7Message.parse(f"MSH|^~\\&|DPI|CAB|MPI|GHT|20260320||{structure}|Q1|P|2.5\r"
                            f"QPD|IHE Query|T1|{qpd3}\rRCP|I\r")


def test_pix_query_answers_and_audits():
    """If the CHU number is asked, then the GHT number is sent and the audit says so."""
    answered = fired(answer_pix(service(), message("pix", "1^^^&1.2.250.1.999.1.1&ISO"),
                                DOMAINS, ENVELOPE, "127.0.0.1:5000"))
    assert validation_problems(answered.text, "RSP_K23") == []
    assert "7^^^GHT-ARVERNE" in answered.text
    assert (answered.audit.outcome, answered.audit.persons, answered.audit.peer) == \
        ("OK", ("P1",), "127.0.0.1:5000")


def test_unknown_pix_identifier_discloses_nothing():
    """If nobody holds the number, then AE and the audit records nothing disclosed."""
    answered = fired(answer_pix(service(), message("pix", "2^^^&1.2.250.1.999.1.1&ISO"),
                                DOMAINS, ENVELOPE, "peer"))
    assert (answered.audit.outcome, answered.audit.persons, answered.audit.identifiers) == \
        ("AE", (), ())


def test_pdq_query_answers_and_audits():
    """If DUPONT is asked, then one PID and the audit names the person and both numbers."""
    answered = fired(answer_pdq(service(), message("pdq", "@PID.5.1^DUPONT"), DOMAINS,
                                ENVELOPE, "peer"))
    assert validation_problems(answered.text, "RSP_K21") == []
    assert answered.audit.persons == ("P1",) and len(answered.audit.identifiers) == 2
