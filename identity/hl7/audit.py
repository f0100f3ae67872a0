"""
The audit record of every identity query and disclosure, as plain data.

Who asked (the requesting application and facility from MSH-3/4, and the
network peer the wiring knows), what was asked (the transaction, the query
tag and parameters as written), what was answered (the QAK-2 status) and what
was disclosed (the persons and identifiers sent back), and when. The record
is built purely from the query and its answer; persisting it (and sending it
on as an ATNA message) is the store's and the wiring's job.

test-case-name: tests.identity.store.test_audit
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from identity.model import LocalIdentifier
from mappings.message import HL7Message

PIX_QUERY = "ITI-9"
PDQ_QUERY = "ITI-21"
PIX_FEED = "ITI-8"


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One query or disclosure: who, what was asked, what was disclosed, when."""

    transaction: str
    when: str  # the answer's timestamp (MSH-7 of the response)
    requester: str  # MSH-3 of the query, as written
    facility: str  # MSH-4 of the query
    peer: str  # the network address the query came from, as the wiring gives it
    control_id: str  # MSH-10 of the query
    query_tag: str  # QPD-2
    parameters: str  # QPD-3 and beyond, as written
    outcome: str  # QAK-2 (OK, NF, AE) or MSA-1 for a feed
    persons: tuple[str, ...] = ()  # ids of the persons disclosed
    identifiers: tuple[LocalIdentifier, ...] = ()  # every identifier disclosed


def query_audit(transaction: str, query: HL7Message, outcome: str, when: str, peer: str,
                persons: Sequence[str] = (),
                identifiers: Sequence[LocalIdentifier] = ()) -> AuditRecord:
    """The record of one answered query (``transaction``: :data:`PIX_QUERY`, :data:`PDQ_QUERY`)."""
    msh, qpd = query.msh, query.segment("QPD")
    parameters = ""
    tag = ""
    if qpd is not None:
        tag = qpd.get(2)
        fields = range(3, qpd.field_count() + 1)
        parameters = query.delimiters.field.join(qpd.field(n) for n in fields)
    return AuditRecord(transaction, when, msh.field(3), msh.field(4), peer, msh.get(10), tag,
                       parameters, outcome, tuple(persons), tuple(identifiers))


def feed_audit(message: HL7Message, outcome: str, when: str, peer: str,
               persons: Sequence[str] = ()) -> AuditRecord:
    """The record of one ADT message applied to the index (ITI-8): who changed whom."""
    msh = message.msh
    return AuditRecord(PIX_FEED, when, msh.field(3), msh.field(4), peer, msh.get(10), "",
                       msh.field(9), outcome, tuple(persons))
