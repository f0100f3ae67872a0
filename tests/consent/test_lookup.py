"""Tests for engine.consent.lookup: an opposition found through any identifier of the person
the identity index knows, on SQLite and PostgreSQL, and never on the reactor thread."""
from __future__ import annotations

import threading

import pytest
from twisted.python import threadable

from engine.consent.lookup import OnReactorThread, StoreConsentLookup, history_in, opposition_in
from engine.store import consent
from engine.store.consent import SHARED_RECORD
from identity.model import IdentifierDomain, LocalIdentifier
from identity.store import link, resolve
from tests.identity.cast import PEOPLE

CHU = IdentifierDomain("1.2.250.1.999.1.1", "CHU-NORD")
LAB = IdentifierDomain("1.2.250.1.999.1.2", "LABO")


def test_an_opposition_under_one_identifier_covers_the_persons_others(engine):
    """If the patient opposed under the hospital's number and the index links the lab's
    number to the same person, then a message carrying only the lab's number finds it."""
    with engine.begin() as conn:
        person = resolve(conn, PEOPLE["father"], "message:1",
                         LocalIdentifier(CHU, "000003")).person_id
        link(conn, LocalIdentifier(LAB, "L-77"), person, "operator:alice")
        consent.oppose(conn, CHU.oid, "000003", SHARED_RECORD, "operator:alice")
    with engine.connect() as conn:
        found = opposition_in(conn, [(LAB.oid, "L-77")], SHARED_RECORD)
        assert found is not None and (found.domain, found.value) == (CHU.oid, "000003")
        assert [o.value for o in history_in(conn, [(LAB.oid, "L-77")])] == ["000003"]
        assert opposition_in(conn, [(LAB.oid, "OTHER")], SHARED_RECORD) is None


def test_an_identifier_unknown_to_the_index_or_without_an_oid_is_looked_up_as_it_is(engine):
    """If the index knows no person for the identifier (or its domain is a namespace), then
    the opposition recorded under that very identifier is still found."""
    with engine.begin() as conn:
        consent.oppose(conn, "HOSP", "12", SHARED_RECORD, "operator:alice")
        consent.oppose(conn, LAB.oid, "99", SHARED_RECORD, "operator:alice")
    with engine.connect() as conn:
        assert opposition_in(conn, [("HOSP", "12")], SHARED_RECORD).value == "12"
        assert opposition_in(conn, [(LAB.oid, "99")], SHARED_RECORD).value == "99"


def test_the_lookup_runs_in_a_thread_and_refuses_the_reactor_thread(engine, monkeypatch):
    """If the lookup is asked from a worker thread, then it reads the store; if asked on the
    reactor thread, then it refuses (OnReactorThread) without touching the database."""
    with engine.begin() as conn:
        consent.oppose(conn, CHU.oid, "5", SHARED_RECORD, "operator:alice")
    lookup = StoreConsentLookup(engine)
    found = []
    worker = threading.Thread(target=lambda: found.append(
        lookup.opposition([(CHU.oid, "5")], SHARED_RECORD)))
    worker.start()
    worker.join(30)
    assert found and found[0].value == "5"
    monkeypatch.setattr(threadable, "isInIOThread", lambda: True)
    with pytest.raises(OnReactorThread):
        lookup.opposition([(CHU.oid, "5")], SHARED_RECORD)
