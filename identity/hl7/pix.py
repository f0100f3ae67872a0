"""
The PIX Manager's query (IHE ITI-9): ``QBP^Q23`` in, ``RSP^K23`` out, purely.

QPD-3 is the person identifier asked about (CX with its assigning authority),
QPD-4 the domains the consumer wants identifiers in (all domains when empty).
The answer follows ITI TF-2a 3.9.4.2.2.6:

* case 1, identifiers found: MSA ``AA``, QAK ``OK``, one PID whose PID-3 lists
  the person's identifiers in the wanted domains, the one asked about left out;
* case 2, the person is known but has no identifier in the wanted domains:
  ``AA``, ``NF``, no PID;
* case 3, QPD-3's domain or identifier is not recognised: ``AE``, ``AE``, ERR
  ``204`` at ``QPD^1^3^1^4`` (domain) or ``QPD^1^3^1^1`` (identifier);
* case 4, a QPD-4 domain is not recognised: ``AE``, ``AE``, ERR ``204`` at
  ``QPD^1^4^n`` for each such repetition ``n``.

test-case-name: tests.identity.hl7.test_pix
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from identity.hl7.domains import DomainTable
from identity.hl7.pid import read_identifiers
from identity.hl7.pidwriter import write_identifiers, write_pseudonym_name
from identity.hl7.response import Envelope, new_response, wire_text
from identity.model import IdentifierDomain, LocalIdentifier
from identity.service import PersonRecord
from mappings.message import HL7Message
from mllp.ack import HL7Error
from mllp.codes import (
    APPLICATION_ACCEPT,
    APPLICATION_ERROR,
    REQUIRED_FIELD_MISSING,
    SEGMENT_SEQUENCE,
    UNKNOWN_KEY,
)

PIX_RESPONSE_TYPE = "RSP^K23^RSP_K23"
FOUND, NOT_FOUND, ERROR = "OK", "NF", "AE"


@dataclass(frozen=True, slots=True)
class PixQuery:
    """A read ITI-9 query: the identifier asked about and the domains wanted, or errors."""

    tag: str
    identifier: LocalIdentifier | None
    wanted: tuple[IdentifierDomain, ...]
    errors: tuple[HL7Error, ...] = ()


@dataclass(frozen=True, slots=True)
class PixAnswer:
    """The RSP^K23 text, its QAK-2 status, and the identifiers it disclosed."""

    text: str
    status: str
    disclosed: tuple[LocalIdentifier, ...]


def read_pix_query(message: HL7Message, domains: DomainTable) -> PixQuery:
    """The query ``message`` (QBP^Q23) asks; unknown domains are errors (cases 3 and 4)."""
    qpd = message.segment("QPD")
    if qpd is None:
        return PixQuery("", None, (), (HL7Error(SEGMENT_SEQUENCE, "QBP^Q23 without QPD", "QPD"),))
    found, errors, _ = read_identifiers(qpd, 3, domains, "QPD^1")
    if not qpd.field(3):
        errors.append(HL7Error(REQUIRED_FIELD_MISSING, "QPD-3: no person identifier", "QPD^1^3"))
    wanted = []
    for rep in range(1, len(qpd.repetitions(4)) + 1):
        namespace, oid = qpd.get(4, rep, 4, 1), qpd.get(4, rep, 4, 2)
        domain = domains.find(namespace, oid)
        if domain is None:
            named = "&".join(p for p in (namespace, oid) if p) or "an empty domain"
            errors.append(HL7Error(UNKNOWN_KEY, f"QPD-4: unknown domain {named}", f"QPD^1^4^{rep}"))
        else:
            wanted.append(domain)
    return PixQuery(qpd.get(2), found[0] if found else None, tuple(wanted), tuple(errors))


def pix_answer(message: HL7Message, query: PixQuery, person: PersonRecord | None,
               envelope: Envelope) -> PixAnswer:
    """RSP^K23 for ``query`` given the person holding its identifier (None: unknown)."""
    if query.errors:
        return _refused(message, query.errors, envelope)
    if person is None:
        identifier = query.identifier
        error = HL7Error(UNKNOWN_KEY, f"QPD-3: no patient {identifier.value} in "
                         f"{identifier.domain.oid}", "QPD^1^3^1^1")
        return _refused(message, (error,), envelope)
    disclosed = tuple(other_identifiers(person.identifiers, query))
    status = FOUND if disclosed else NOT_FOUND
    response = new_response(message, PIX_RESPONSE_TYPE, APPLICATION_ACCEPT, status, (), envelope)
    if disclosed:
        pid = response.add_segment(None, "PID")
        pid.set(1, "1")
        write_identifiers(pid, 3, disclosed)
        write_pseudonym_name(pid)
    return PixAnswer(wire_text(response), status, disclosed)


def other_identifiers(identifiers: Sequence[LocalIdentifier],
                      query: PixQuery) -> list[LocalIdentifier]:
    """The person's identifiers in the wanted domains (all when none named), bar the asked one."""
    return [i for i in identifiers if i != query.identifier
            and (not query.wanted or i.domain in query.wanted)]


def _refused(message: HL7Message, errors: Sequence[HL7Error], envelope: Envelope) -> PixAnswer:
    response = new_response(message, PIX_RESPONSE_TYPE, APPLICATION_ERROR, ERROR, errors, envelope)
    return PixAnswer(wire_text(response), ERROR, ())
