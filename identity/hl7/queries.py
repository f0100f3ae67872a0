"""
Answering one PIX or PDQ query on the index service, with its audit record.

The only non-pure step of a query is the service call between reading the
query and writing the answer; this module makes that one call, so that the
MLLP source of the PIX Manager / PDQ Supplier hands over a parsed message and
gets back the response text and the :class:`AuditRecord` to persist, both in
one Deferred. A query that does not read is answered without calling the
service, and audited too.

test-case-name: tests.identity.hl7.test_queries
"""
from __future__ import annotations

from dataclasses import dataclass

from twisted.internet import defer

from identity.hl7.audit import PDQ_QUERY, PIX_QUERY, AuditRecord, query_audit
from identity.hl7.domains import DomainTable
from identity.hl7.pdq import DEFAULT_LIMIT, pdq_answer, read_pdq_query
from identity.hl7.pix import pix_answer, read_pix_query
from identity.hl7.response import Envelope
from identity.service import IdentityService
from mappings.message import HL7Message


@dataclass(frozen=True, slots=True)
class Answered:
    """The response to send (text; the wire encodes it in MSH-18's charset) and its audit."""

    text: str
    audit: AuditRecord


@defer.inlineCallbacks
def answer_pix(service: IdentityService, message: HL7Message, domains: DomainTable,
               envelope: Envelope, peer: str):
    """ITI-9: a Deferred of the :class:`Answered` RSP^K23."""
    query = read_pix_query(message, domains)
    person = None
    if not query.errors:
        person = yield service.person(query.identifier)
    answer = pix_answer(message, query, person, envelope)
    persons = [person.person_id] if person is not None and answer.disclosed else []
    audit = query_audit(PIX_QUERY, message, answer.status, envelope.timestamp, peer, persons,
                        answer.disclosed)
    return Answered(answer.text, audit)


@defer.inlineCallbacks
def answer_pdq(service: IdentityService, message: HL7Message, domains: DomainTable,
               envelope: Envelope, peer: str, limit: int = DEFAULT_LIMIT):
    """ITI-21: a Deferred of the :class:`Answered` RSP^K22 (one page of it)."""
    query = read_pdq_query(message, domains, limit)
    page = None
    if not query.errors:
        page = yield service.search(query.criteria, query.offset, query.count)
    answer = pdq_answer(message, query, page, envelope)
    audit = query_audit(PDQ_QUERY, message, answer.status, envelope.timestamp, peer,
                        [p.person_id for p in answer.disclosed],
                        [i for p in answer.disclosed for i in p.identifiers])
    return Answered(answer.text, audit)
