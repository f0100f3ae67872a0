"""
The PIX Manager's ITI-9 query: the four cases of ITI TF-2a 3.9.4.2.2.6, each answer
validated by hl7apy (v2.5, strict), the query echoed, and an audit record for each.
"""
from __future__ import annotations

import pytest

from identity.hl7.audit import PIX_QUERY, query_audit
from identity.hl7.domains import DomainTable
from identity.hl7.pix import pix_answer, read_pix_query
from identity.hl7.response import Envelope
from identity.model import INS, INS_NIR, IdentifierDomain, IdentityStatus, LocalIdentifier, Sex, Traits
from identity.service import PersonRecord
from mappings.message import HL7Message
from tests.identity.hl7.conformance import CHU, DOMAINS, GHT, validation_problems

ENVELOPE = Envelope("R1", "20260320100001", "PIXMGR^1.2.250.1.999.9^ISO")
QPD3 = "00472318^^^CHU-EXEMPLE&1.2.250.1.999.1.1&ISO^PI"
GHT_DOMAIN = "^^^GHT-ARVERNE&1.2.250.1.999.2.1&ISO"
INS_DOMAIN = "^^^&1.2.250.1.213.1.4.8&ISO"
PERSON = PersonRecord("P1", (LocalIdentifier(CHU, "00472318"), LocalIdentifier(GHT, "7700215"),
                             LocalIdentifier(INS_NIR, "248096343012736")),
                      Traits("CHASSAGNE", ("MARIE-THÉRÈSE",), "19480921", Sex.FEMALE,
                             ins=INS("248096343012736", INS_NIR, IdentityStatus.QUALIFIED)))


def query(qpd3: str = QPD3, qpd4: str = "") -> HL7Message:
    """A QBP^Q23 as ITI-9 shapes it."""
    return HL7Message.parse(
        "MSH|^~\\&|DPI|CABINET|PIXMGR|GHT|20260320100000||QBP^Q23^QBP_Q21|Q1|P|2.5\r"
        f"QPD|IHE PIX Query|T1|{qpd3}|{qpd4}\rRCP|I\r")


def answer(message, person):
    read = read_pix_query(message, DOMAINS)
    result = pix_answer(message, read, person, ENVELOPE)
    assert validation_problems(result.text, "RSP_K23") == []
    response = HL7Message.parse(result.text)
    assert response.segment("QPD").text() == message.segment("QPD").text()  # echoed as received
    assert response.segment("MSA").get(2) == "Q1" and response.segment("QAK").get(1) == "T1"
    msh = response.msh
    assert (msh.get(3, 1, 1), msh.get(3, 1, 2), msh.get(5), msh.get(6)) == \
        ("PIXMGR", "1.2.250.1.999.9", "DPI", "CABINET")
    return result, response


def test_case_1_identifiers_in_the_wanted_domains():
    """If the person has identifiers in the QPD-4 domains, then AA/OK and PID-3 lists them."""
    result, response = answer(query(qpd4=f"{GHT_DOMAIN}~{INS_DOMAIN}"), PERSON)
    assert (response.segment("MSA").get(1), result.status) == ("AA", "OK")
    assert result.disclosed == PERSON.identifiers[1:]
    pid = response.segment("PID")
    assert [pid.get(3, r, 1) for r in (1, 2)] == ["7700215", "248096343012736"]
    assert (pid.get(3, 2, 4, 2), pid.get(3, 2, 5)) == ("1.2.250.1.213.1.4.8", "INS")
    assert pid.field(5) == "~^^^^^^S"  # no name disclosed: an empty one, then a pseudonym


def test_case_1_every_domain_when_qpd4_is_empty():
    """If QPD-4 is empty, then every other identifier is returned, never the asked one."""
    result, _ = answer(query(), PERSON)
    assert LocalIdentifier(CHU, "00472318") not in result.disclosed and len(result.disclosed) == 2


def test_case_2_known_but_nothing_in_the_domain():
    """If the person has no identifier in the wanted domain, then AA/NF and no PID."""
    alone = PersonRecord("P2", (LocalIdentifier(CHU, "00472318"),), PERSON.traits)
    result, response = answer(query(qpd4=GHT_DOMAIN), alone)
    assert (response.segment("MSA").get(1), result.status, response.segment("PID")) == ("AA", "NF", None)


@pytest.mark.parametrize("qpd3, person, location", [
    ("9^^^X&1.2.3.4&ISO^PI", None, "QPD^1^3^1^4"),  # domain not recognised
    (QPD3, None, "QPD^1^3^1^1"),  # identifier not recognised
    ("", None, "QPD^1^3"),  # no identifier at all
])
def test_case_3_unknown_domain_or_identifier(qpd3, person, location):
    """If QPD-3's domain or identifier is not recognised, then AE/AE with ERR at QPD-3."""
    result, response = answer(query(qpd3=qpd3), person)
    assert (response.segment("MSA").get(1), result.status, result.disclosed) == ("AE", "AE", ())
    err = response.segment("ERR")
    assert (err.get(2, 1, 1), err.get(2, 1, 2), err.get(2, 1, 3)) == ("QPD", "1", "3")
    assert "^".join(err.get(2, 1, c) for c in range(1, 6)).rstrip("^") == location
    assert err.get(3) == ("101" if qpd3 == "" else "204") and err.get(4) == "E"


def test_case_4_unknown_wanted_domain():
    """If a QPD-4 domain is not recognised, then AE/AE with 204 at QPD-4 and its repetition."""
    result, response = answer(query(qpd4=f"{GHT_DOMAIN}~^^^Y&1.2.3.9&ISO"), PERSON)
    err = response.segment("ERR")
    assert (result.status, err.get(3)) == ("AE", "204")
    assert [err.get(2, 1, c) for c in (1, 2, 3, 4)] == ["QPD", "1", "4", "2"]


def test_every_query_is_audited():
    """If a query is answered, then its audit record says who asked, what, and what left."""
    message = query(qpd4=GHT_DOMAIN)
    result, _ = answer(message, PERSON)
    record = query_audit(PIX_QUERY, message, result.status, ENVELOPE.timestamp, "127.0.0.1:4100",
                         [PERSON.person_id], result.disclosed)
    assert (record.requester, record.facility, record.control_id) == ("DPI", "CABINET", "Q1")
    assert (record.query_tag, record.outcome, record.persons) == ("T1", "OK", ("P1",))
    assert record.identifiers == (LocalIdentifier(GHT, "7700215"),)
    assert record.parameters == f"{QPD3}|{GHT_DOMAIN}"


def test_refused_query_is_audited_with_nothing_disclosed():
    """If a query is refused, then the audit says AE and disclosed nothing."""
    message = query(qpd3="9^^^X&1.2.3.4&ISO^PI")
    result, _ = answer(message, None)
    record = query_audit(PIX_QUERY, message, result.status, ENVELOPE.timestamp, "peer")
    assert (record.outcome, record.identifiers) == ("AE", ())


def test_ipf_sample_query_reads(standards):
    """If the IPF ITI-9 sample response's QPD is asked, then its domain is read (HZLN by name)."""
    text = (standards / "hl7v2" / "ipf" / "pix-query" / "nf-1_Response.hl7").read_text()
    hzln = IdentifierDomain("2.16.840.1.113883.3.37.4.1.1.2.411.1", "HZLN")
    read = read_pix_query(HL7Message.parse(text), DomainTable([hzln]))
    assert read.errors == () and read.identifier == LocalIdentifier(hzln, "79234")
