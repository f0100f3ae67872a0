"""
Tests for the identity audit trail (identity/store/audit.py): records kept as the HL7 side
builds them, listed newest first, by transaction, by person, page by page, on SQLite and
PostgreSQL.
"""
from __future__ import annotations

import pytest

from identity.hl7.audit import PDQ_QUERY, PIX_FEED, PIX_QUERY, AuditRecord
from identity.store.audit import list_audit, write_audit
from tests.identity.store.test_service_contract import CHS, ident


def record(transaction: str, control_id: str, persons=(), identifiers=(), outcome="OK"):
    return AuditRecord(transaction, "20260320100001+0100", "DPI", "CABINET", "10.0.0.5:4100",
                       control_id, "T1", "DUP^^^^^^F", outcome, tuple(persons), tuple(identifiers))


@pytest.fixture
def trail(engine):
    with engine.begin() as conn:
        write_audit(conn, record(PIX_FEED, "C1", ["1"], outcome="AA"))
        write_audit(conn, record(PIX_QUERY, "Q1", ["1"], [ident("77", CHS)]))
        write_audit(conn, record(PDQ_QUERY, "Q2", ["1", "2"], [ident("1"), ident("2")]))
        write_audit(conn, record(PDQ_QUERY, "Q3", outcome="NF"))
    return engine


def controls(entries) -> list[str]:
    return [e["control_id"] for e in entries]


def test_the_trail_keeps_every_field(trail):
    """If a record is written, then it reads back with every field as the HL7 side gave it."""
    with trail.connect() as conn:
        newest, query = list_audit(conn, limit=2)
    assert newest["outcome"] == "NF" and newest["persons"] == [] and newest["identifiers"] == []
    assert {k: query[k] for k in ("transaction", "answered_at", "requester", "facility", "peer",
                                  "control_id", "query_tag", "parameters", "outcome", "persons")} == {
        "transaction": "ITI-21", "answered_at": "20260320100001+0100", "requester": "DPI",
        "facility": "CABINET", "peer": "10.0.0.5:4100", "control_id": "Q2", "query_tag": "T1",
        "parameters": "DUP^^^^^^F", "outcome": "OK", "persons": ["1", "2"]}
    assert query["identifiers"] == [{"domain": "1.2.250.1.999.1.1", "value": "1"},
                                    {"domain": "1.2.250.1.999.1.1", "value": "2"}]
    assert query["recorded_at"] > 0


def test_the_trail_by_transaction_person_and_page(trail):
    """If the trail is asked for one transaction, one person or the next page, then it
    answers those records, newest first."""
    with trail.connect() as conn:
        assert controls(list_audit(conn)) == ["Q3", "Q2", "Q1", "C1"]
        assert controls(list_audit(conn, transaction=PDQ_QUERY)) == ["Q3", "Q2"]
        assert controls(list_audit(conn, person="2")) == ["Q2"]
        assert controls(list_audit(conn, person="1", limit=2)) == ["Q2", "Q1"]
        first = list_audit(conn, limit=2)
        assert controls(list_audit(conn, limit=2, before=first[-1]["id"])) == ["Q1", "C1"]


def test_an_outcome_that_is_not_a_status_is_refused(engine):
    """If a record's outcome is not a short status code, then it is refused, naming it."""
    with engine.begin() as conn, pytest.raises(ValueError, match="audit outcome"):
        write_audit(conn, record(PIX_QUERY, "Q1", outcome="NOT-A-STATUS"))
