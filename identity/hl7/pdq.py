"""
The PDQ Supplier (IHE ITI-21): ``QBP^Q22`` in, ``RSP^K22`` out, purely.

QPD-3 repeats ``@PID.n[.c[.s]]^value`` pairs (``@PID.5.1^DUPONT~@PID.7^19800101``),
each a demographic field that must agree; QPD-8 names the domains whose
identifiers the answer may disclose (every known domain when empty); RCP-2
(``10^RD``) caps the records of one answer, and the supplier's own ``limit``
caps it again.

Continuation is stateless: when more records remain, DSC-1 carries a pointer
``offset.digest`` where the digest covers the query's QPD-3 and QPD-8, and the
consumer sends the same query again with that DSC. A pointer whose digest does
not match the query (another query, or one forged) is refused, 204 at DSC-1.
Records added or removed between two pages can shift the pages: the order is
the service's stable order, not a snapshot.

Each PID is followed by a QRI (required by v2.5's RSP_K21; IHE makes it optional):
confidence 1, as every criterion matched, and the table 0392 reasons used.

Errors: an unsupported field, an empty query, a value that cannot be read:
AE with ERR at ``QPD^1^3^n``; an unknown QPD-8 domain: AE, ``204`` at
``QPD^1^8^n^4`` (ITI TF-2a 3.21.4.2.2.8, case 3).

test-case-name: tests.identity.hl7.test_pdq
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

from identity.hl7.domains import DomainTable
from identity.hl7.pidwriter import write_identifiers, write_traits
from identity.hl7.response import Envelope, new_response, wire_text
from identity.model import IdentifierDomain, LocalIdentifier
from identity.service import PersonRecord, SearchCriteria, SearchPage
from mappings.message import HL7Message
from mllp.ack import HL7Error
from mllp.codes import (
    APPLICATION_ACCEPT,
    APPLICATION_ERROR,
    DATA_TYPE,
    REQUIRED_FIELD_MISSING,
    SEGMENT_SEQUENCE,
    TABLE_VALUE_NOT_FOUND,
    UNKNOWN_KEY,
)

PDQ_RESPONSE_TYPE = "RSP^K22^RSP_K21"
FOUND, NOT_FOUND, ERROR = "OK", "NF", "AE"
DEFAULT_LIMIT = 50
INCREMENTAL = "I"

FIELDS = {
    "PID.5": "family_name", "PID.5.1": "family_name", "PID.5.1.1": "family_name",
    "PID.5.2": "given_name", "PID.7": "birth_date", "PID.7.1": "birth_date", "PID.8": "sex",
    "PID.11.3": "city", "PID.11.5": "postcode", "PID.3.1": "identifier", "PID.3": "identifier",
    "PID.3.4.2": "identifier_domain", "PID.3.4.1": "identifier_namespace",
}
"""The QPD-3 field names this supplier searches on, and the criterion each fills."""


@dataclass(frozen=True, slots=True)
class PdqQuery:
    """A read ITI-21 query: criteria, domains to disclose, page asked, or errors."""

    tag: str
    criteria: SearchCriteria
    wanted: tuple[IdentifierDomain, ...]
    offset: int = 0
    count: int = DEFAULT_LIMIT
    digest: str = ""
    errors: tuple[HL7Error, ...] = ()


@dataclass(frozen=True, slots=True)
class PdqAnswer:
    """The RSP^K22 text, its QAK-2 status, and the persons it disclosed."""

    text: str
    status: str
    disclosed: tuple[PersonRecord, ...]


def read_pdq_query(message: HL7Message, domains: DomainTable,
                   limit: int = DEFAULT_LIMIT) -> PdqQuery:
    """The query ``message`` (QBP^Q22) asks, with the page its RCP and DSC name."""
    qpd = message.segment("QPD")
    if qpd is None:
        error = HL7Error(SEGMENT_SEQUENCE, "QBP^Q22 without QPD", "QPD")
        return PdqQuery("", SearchCriteria(), (), errors=(error,))
    criteria, errors = _criteria(qpd, domains)
    wanted = []
    for rep in range(1, len(qpd.repetitions(8)) + 1):
        namespace, oid = qpd.get(8, rep, 4, 1), qpd.get(8, rep, 4, 2)
        domain = domains.find(namespace, oid)
        if domain is None:
            named = "&".join(p for p in (namespace, oid) if p) or "an empty domain"
            errors.append(HL7Error(UNKNOWN_KEY, f"QPD-8: unknown domain {named}",
                                   f"QPD^1^8^{rep}^4"))
        else:
            wanted.append(domain)
    criteria = replace(criteria, in_domains=tuple(wanted))
    if criteria.empty() and not errors:
        errors.append(HL7Error(REQUIRED_FIELD_MISSING, "QPD-3: no search parameter", "QPD^1^3"))
    digest = query_digest(qpd.field(3), qpd.field(8))
    offset, count = _page(message, digest, limit, errors)
    return PdqQuery(qpd.get(2), criteria, tuple(wanted), offset, count, digest, tuple(errors))


def query_digest(parameters: str, domains: str) -> str:
    """What a continuation pointer is bound to: the query's QPD-3 and QPD-8 as written."""
    return hashlib.sha256(f"{parameters}\x00{domains}".encode()).hexdigest()[:16]


def _criteria(qpd, domains: DomainTable) -> tuple[SearchCriteria, list[HL7Error]]:
    """QPD-3 pairs into :class:`SearchCriteria`; each unusable pair is an error where it is."""
    found: dict[str, str] = {}
    errors = []
    for rep in range(1, len(qpd.repetitions(3)) + 1):
        name, value, here = qpd.get(3, rep, 1).lstrip("@"), qpd.get(3, rep, 2), f"QPD^1^3^{rep}"
        key = FIELDS.get(name)
        if key is None:
            errors.append(HL7Error(TABLE_VALUE_NOT_FOUND, f"QPD-3: cannot search on {name!r}",
                                   f"{here}^1"))
        elif not value:
            errors.append(HL7Error(REQUIRED_FIELD_MISSING, f"QPD-3: no value for {name}",
                                   f"{here}^2"))
        else:
            found[key] = value
    identifier = _identifier(found, domains, errors)
    birth_date = found.get("birth_date")
    if birth_date is not None and not birth_date[:8].isdigit():
        errors.append(HL7Error(DATA_TYPE, f"QPD-3: birth date {birth_date!r} is not YYYYMMDD",
                               "QPD^1^3"))
    return SearchCriteria(family_name=found.get("family_name"), given_name=found.get("given_name"),
                          birth_date=birth_date[:8] if birth_date else None, sex=found.get("sex"),
                          postcode=found.get("postcode"), city=found.get("city"),
                          identifier=identifier), errors


def _identifier(found: dict[str, str], domains: DomainTable,
                errors: list[HL7Error]) -> LocalIdentifier | None:
    """``@PID.3.1`` with ``@PID.3.4.2`` (or ``.4.1``): one identifier in a known domain."""
    value = found.get("identifier")
    namespace, oid = found.get("identifier_namespace", ""), found.get("identifier_domain", "")
    if value is None:
        return None
    domain = domains.find(namespace, oid)
    if domain is None:
        errors.append(HL7Error(UNKNOWN_KEY, f"QPD-3: identifier {value} in an unknown domain "
                               f"{namespace or oid or '(none given)'}", "QPD^1^3"))
        return None
    return LocalIdentifier(domain, value)


def _page(message: HL7Message, digest: str, limit: int, errors: list[HL7Error]) -> tuple[int, int]:
    """(offset, count): RCP-2 capped by ``limit``; the offset a DSC-1 pointer names."""
    rcp = message.segment("RCP")
    asked = rcp.get(2) if rcp is not None else ""
    count = min(int(asked), limit) if asked.isdigit() and int(asked) > 0 else limit
    dsc = message.segment("DSC")
    pointer = dsc.get(1) if dsc is not None else ""
    if not pointer:
        return 0, count
    offset, _, bound = pointer.partition(".")
    if not offset.isdigit() or bound != digest:
        errors.append(HL7Error(UNKNOWN_KEY, f"DSC-1: continuation pointer {pointer!r} is not one "
                               "of this query", "DSC^1^1"))
        return 0, count
    return int(offset), count


def pdq_answer(message: HL7Message, query: PdqQuery, page: SearchPage | None,
               envelope: Envelope) -> PdqAnswer:
    """RSP^K22 for ``query`` given the page the service found (None when the query failed)."""
    if query.errors or page is None:
        response = new_response(message, PDQ_RESPONSE_TYPE, APPLICATION_ERROR, ERROR,
                                query.errors, envelope)
        return PdqAnswer(wire_text(response), ERROR, ())
    shown = [disclosed(person, query) for person in page.records]
    shown = tuple(person for person in shown if person.identifiers)
    remaining = max(page.total - query.offset - len(page.records), 0)
    status = FOUND if shown else NOT_FOUND
    response = new_response(message, PDQ_RESPONSE_TYPE, APPLICATION_ACCEPT, status, (), envelope,
                            counts=(page.total, len(shown), remaining))
    for sequence, person in enumerate(shown, start=1):
        pid = response.add_segment(None, "PID")
        pid.set(1, str(sequence))
        write_identifiers(pid, 3, person.identifiers)
        write_traits(pid, person.traits)
        _add_match_reasons(response, query.criteria)
    if remaining:
        dsc = response.add_segment(None, "DSC")
        dsc.set(1, f"{query.offset + len(page.records)}.{query.digest}")
        dsc.set(2, INCREMENTAL)
    return PdqAnswer(wire_text(response), status, shown)


def _add_match_reasons(response: HL7Message, criteria: SearchCriteria) -> None:
    """QRI after each PID, which v2.5's RSP_K21 requires: every criterion matched, so
    confidence 1, and the table 0392 reasons (NA name, DB birth date) the query used."""
    qri = response.add_segment(None, "QRI")
    qri.set(1, "1")
    reasons = [code for code, asked in (("NA", criteria.family_name or criteria.given_name),
                                        ("DB", criteria.birth_date)) if asked]
    for rep, code in enumerate(reasons, start=1):
        qri.set(2, code, rep)


def disclosed(person: PersonRecord, query: PdqQuery) -> PersonRecord:
    """``person`` with only the identifiers in the wanted domains (all when none named)."""
    if not query.wanted:
        return person
    return replace(person, identifiers=tuple(i for i in person.identifiers
                                             if i.domain in query.wanted))
