"""
The audit trail of the index: every identity query, disclosure and feed, kept in ``id_audit``.

The HL7 side builds an :class:`identity.hl7.audit.AuditRecord` from the query and its
answer (who asked, what, what was disclosed, the outcome); :func:`write_audit`
stores it as it is, in the caller's transaction, and :func:`list_audit` reads the
trail back, newest first, for ``aiguillage identity audit`` and for an auditor's
export. The record is taken by its fields (:class:`AuditFacts`), so that the store
does not import the HL7 side.

test-case-name: tests.identity.store.test_audit
"""
from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy import select

from identity.model import LocalIdentifier
from identity.store.schema import id_audit

OUTCOME_WIDTH = 8


class AuditFacts(Protocol):
    """The fields of :class:`identity.hl7.audit.AuditRecord` the trail keeps."""

    transaction: str
    when: str
    requester: str
    facility: str
    peer: str
    control_id: str
    query_tag: str
    parameters: str
    outcome: str
    persons: Sequence[str]
    identifiers: Sequence[LocalIdentifier]


def write_audit(conn: Any, record: AuditFacts) -> int:
    """Store one audit record in the caller's transaction; its id in the trail."""
    if len(record.outcome) > OUTCOME_WIDTH:
        raise ValueError(f"audit outcome {record.outcome!r}: longer than {OUTCOME_WIDTH}")
    return conn.execute(id_audit.insert(), {
        "recorded_at": time.time(), "transaction": record.transaction,
        "answered_at": record.when, "requester": record.requester, "facility": record.facility,
        "peer": record.peer, "control_id": record.control_id, "query_tag": record.query_tag,
        "parameters": record.parameters, "outcome": record.outcome,
        "persons": json.dumps(list(record.persons)),
        "identifiers": json.dumps([[i.domain.oid, i.value] for i in record.identifiers]),
    }).inserted_primary_key[0]


def list_audit(conn: Any, *, transaction: str | None = None, person: str | None = None,
               limit: int = 100, before: int | None = None) -> list[dict[str, Any]]:
    """The trail, newest first: at most ``limit`` records, of one ``transaction`` (``ITI-9``…)
    and naming ``person`` when given, older than the record id ``before`` (the next page)."""
    query = select(id_audit).order_by(id_audit.c.id.desc())
    if transaction is not None:
        query = query.where(id_audit.c.transaction == transaction)
    if before is not None:
        query = query.where(id_audit.c.id < before)
    found: list[dict[str, Any]] = []
    for row in conn.execute(query).yield_per(limit) if person else conn.execute(query.limit(limit)):
        entry = _entry(row)
        if person is None or person in entry["persons"]:
            found.append(entry)
        if len(found) == limit:
            break
    return found


def _entry(row: Any) -> dict[str, Any]:
    entry = dict(row._mapping)
    entry["persons"] = json.loads(entry["persons"])
    entry["identifiers"] = [{"domain": d, "value": v} for d, v in json.loads(entry["identifiers"])]
    return entry
