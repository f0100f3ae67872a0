"""
The PDQ Supplier's ITI-21 query: demographic search, domains, limits and continuation,
each answer validated by hl7apy (v2.5, strict), and each bad query refused where it is.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from identity.hl7.audit import PDQ_QUERY, query_audit
from identity.hl7.pdq import pdq_answer, read_pdq_query
from identity.hl7.pid import read_pid
from identity.hl7.response import Envelope
from identity.model import LocalIdentifier, Sex, Traits
from identity.service import PersonRecord
from mappings.message import HL7Message
from tests.identity.fakes import MemoryIdentityService
from tests.identity.hl7.conformance import CHU, DOMAINS, GHT, validation_problems

ENVELOPE = Envelope("R1", "20260320100001")
GHT_DOMAIN = "^^^GHT-ARVERNE&1.2.250.1.999.2.1&ISO"
SAMPLES = Path(__file__).resolve().parents[3] / "samples" / "adt-pam-fr"


def index() -> MemoryIdentityService:
    """Five DUPONTs (one also known to the GHT) and a MARTIN."""
    service = MemoryIdentityService()
    for n in range(5):
        ids = [LocalIdentifier(CHU, f"10{n}")] + ([LocalIdentifier(GHT, "77")] if n == 2 else [])
        traits = Traits("DUPONT", (f"Jean{'ne' * (n % 2)}",), f"198001{n + 10}",
                        Sex.FEMALE if n % 2 else Sex.MALE, birth_place="63113",
                        address="1 rue Haute", postcode="63000", city="Clermont-Ferrand")
        service.add_person(_record(f"P{n}", ids, traits))
    service.add_person(_record("P9", [LocalIdentifier(CHU, "900")], Traits("MARTIN", ("Paul",), "19700101")))
    return service


def _record(person_id, ids, traits):
    return PersonRecord(person_id, tuple(ids), traits)


def query(qpd3: str, qpd8: str = "", rcp2: str = "", dsc: str = "") -> HL7Message:
    text = ("MSH|^~\\&|DPI|CABINET|PDQ|GHT|20260320100000||QBP^Q22^QBP_Q21|Q7|P|2.5\r"
            f"QPD|IHE PDQ Query|T7|{qpd3}|||||{qpd8}\rRCP|I|{rcp2}\r")
    return HL7Message.parse(text + (f"DSC|{dsc}|I\r" if dsc else ""))


def ask(service, message, limit=50):
    """Read, search (when the query reads) and answer; check the answer is valid."""
    read = read_pdq_query(message, DOMAINS, limit)
    page = None
    if not read.errors:
        found = []
        service.search(read.criteria, read.offset, read.count).addCallback(found.append)
        page = found[0]
    result = pdq_answer(message, read, page, ENVELOPE)
    assert validation_problems(result.text, "RSP_K21") == []
    response = HL7Message.parse(result.text)
    assert response.segment("QPD").text() == message.segment("QPD").text()
    return result, response


def test_demographic_search_answers_one_pid_per_match():
    """If DUPONT born 19800111 is asked, then one PID with every PAM France trait."""
    result, response = ask(index(), query("@PID.5.1^dupont~@PID.7^19800111"))
    assert result.status == "OK" and [p.person_id for p in result.disclosed] == ["P1"]
    pid = response.segment("PID")
    assert (pid.get(3, 1, 1), pid.get(5, 1, 1), pid.get(5, 1, 7), pid.get(7), pid.get(8)) == \
        ("101", "DUPONT", "L", "19800111", "F")
    assert (pid.get(11, 2, 7), pid.get(11, 2, 9)) == ("BDL", "63113")
    qak = response.segment("QAK")
    assert [qak.get(n) for n in (2, 4, 5, 6)] == ["OK", "1", "1", "0"]


def test_nothing_found_is_nf():
    """If nobody matches, then AA/NF and no PID."""
    result, response = ask(index(), query("@PID.5.1^DURAND"))
    assert (response.segment("MSA").get(1), result.status, response.segment("PID")) == ("AA", "NF", None)


def test_qpd8_limits_persons_and_identifiers_to_the_domain():
    """If QPD-8 names the GHT, then only the person it knows, with only its GHT number."""
    result, response = ask(index(), query("@PID.5.1.1^DUPONT", qpd8=GHT_DOMAIN))
    (person,) = result.disclosed
    assert person.identifiers == (LocalIdentifier(GHT, "77"),)
    assert response.segment("PID").field(3).startswith("77^^^GHT-ARVERNE")


def test_limit_and_continuation_walk_every_match_once():
    """If RCP-2 asks 2 at a time, then three pages with DSC pointers give the five DUPONTs."""
    service, seen, dsc, pages = index(), [], "", 0
    while True:
        result, response = ask(service, query("@PID.5.1^DUPONT", rcp2="2^RD", dsc=dsc))
        pages += 1
        seen += [p.person_id for p in result.disclosed]
        pointer = response.segment("DSC")
        if pointer is None:
            break
        assert pointer.get(2) == "I"
        dsc = pointer.get(1)
    assert (pages, seen) == (3, ["P0", "P1", "P2", "P3", "P4"])


def test_supplier_limit_caps_the_consumer():
    """If RCP-2 asks more than the supplier allows, then the supplier's limit holds."""
    result, response = ask(index(), query("@PID.5.1^DUPONT", rcp2="100^RD"), limit=3)
    assert len(result.disclosed) == 3 and response.segment("QAK").get(6) == "2"


BAD = {
    "unknown QPD-8 domain": (dict(qpd3="@PID.5.1^DUPONT", qpd8="^^^Z&1.2.3.9&ISO"), 204,
                             ["QPD", "1", "8", "1", "4"]),
    "unsupported field": (dict(qpd3="@PID.5.1^DUPONT~@PID.19^1234"), 103, ["QPD", "1", "3", "2", "1"]),
    "empty value": (dict(qpd3="@PID.5.1"), 101, ["QPD", "1", "3", "1", "2"]),
    "no parameter": (dict(qpd3=""), 101, ["QPD", "1", "3"]),
    "bad date": (dict(qpd3="@PID.7^1980-01-01"), 102, ["QPD", "1", "3"]),
    "identifier in unknown domain": (dict(qpd3="@PID.3.1^1~@PID.3.4.2^1.2.3.9"), 204, ["QPD", "1", "3"]),
    "foreign pointer": (dict(qpd3="@PID.5.1^DUPONT", dsc="2.0123456789abcdef"), 204, ["DSC", "1", "1"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_query_is_refused_where_it_is(case):
    """If a query cannot be answered, then AE/AE with the code at the place, nothing disclosed."""
    kwargs, code, location = BAD[case]
    result, response = ask(index(), query(**kwargs))
    err = response.segment("ERR")
    assert (response.segment("MSA").get(1), result.status, result.disclosed) == ("AE", "AE", ())
    assert (err.get(3), [err.get(2, 1, c) for c in range(1, len(location) + 1)]) == (str(code), location)


def test_pointer_of_another_query_is_refused():
    """If a page's DSC pointer is replayed with another query, then it is refused."""
    _, response = ask(index(), query("@PID.5.1^DUPONT", rcp2="2^RD"))
    pointer = response.segment("DSC").get(1)
    result, _ = ask(index(), query("@PID.5.1^MARTIN", rcp2="2^RD", dsc=pointer))
    assert result.status == "AE"


def test_ipf_maximal_query_reads(standards):
    """If the IPF maximal PDQ query is read, then its fields become criteria (and QPD-8 a 204)."""
    text = (standards / "hl7v2" / "ipf" / "pdq" / "PDQ_Maximal_Query.hl7").read_text()
    read = read_pdq_query(HL7Message.parse(text), DOMAINS)
    assert (read.criteria.family_name, read.criteria.given_name, read.criteria.birth_date,
            read.criteria.sex) == ("Heidi", "MARY", "19400101", "F")
    assert [(e.code, e.location) for e in read.errors] == [(103, "QPD^1^3^5^1"),
                                                           (204, "QPD^1^8^1^4")]


def test_every_disclosure_is_audited():
    """If PDQ discloses persons, then the audit names each of them and their identifiers."""
    message = query("@PID.5.1^DUPONT", qpd8=GHT_DOMAIN)
    result, _ = ask(index(), message)
    record = query_audit(PDQ_QUERY, message, result.status, ENVELOPE.timestamp, "peer",
                         [p.person_id for p in result.disclosed],
                         [i for p in result.disclosed for i in p.identifiers])
    assert (record.transaction, record.persons, record.identifiers) == \
        ("ITI-21", ("P2",), (LocalIdentifier(GHT, "77"),))


def test_pam_france_identity_round_trips_through_a_pdq_answer():
    """If the A40 sample's patient is found by PDQ, then its PID reads back to the same
    identifiers and traits (qualified INS with PID-32 included), and the answer validates."""
    text = (SAMPLES / "a40-merge.hl7").read_text(encoding="utf-8")
    identity = read_pid(HL7Message.parse(text).segment("PID"), DOMAINS)
    service = MemoryIdentityService()
    service.add_person(PersonRecord("P1", identity.identifiers, identity.traits))
    _, response = ask(service, query("@PID.5.1^chassagne~@PID.8^F"))
    again = read_pid(response.segment("PID"), DOMAINS)
    assert (again.identifiers, again.traits, again.errors) == (identity.identifiers,
                                                               identity.traits, ())


def test_values_with_delimiters_are_escaped():
    """If a name holds a delimiter, then the answer escapes it and it reads back whole."""
    service = MemoryIdentityService()
    service.add_person(PersonRecord("P1", (LocalIdentifier(CHU, "1"),),
                                    Traits("DUPONT&FILS", ("A^B",), "19800101")))
    _, response = ask(service, query("@PID.5.1^DUPONT"))
    pid = response.segment("PID")
    assert "DUPONT\\T\\FILS" in pid.field(5)
    assert (pid.get(5, 1, 1), pid.get(5, 1, 2)) == ("DUPONT&FILS", "A^B")
