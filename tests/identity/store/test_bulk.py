"""
Tests for the bulk load (identity/store/bulk.py): the same index as one by one.
"""
from __future__ import annotations

from sqlalchemy import select

from identity.model import Traits
from identity.store import create_person, resolve
from identity.store.bulk import bulk_load
from identity.store.index import StoreCandidateIndex
from identity.store.persons import identifiers_of
from identity.store.schema import id_blocking_keys, id_counts, id_persons
from tests.identity.cast import MARTINS, PEOPLE, seen
from tests.identity.store.test_service import CHS, OPERATOR, ident

RECORDS = [(ident(name), traits) for name, traits in {**PEOPLE, **MARTINS}.items()]


def snapshot(conn) -> tuple[list, list]:
    """Blocking keys (person as its rank of creation) and counts."""
    first = min(conn.execute(select(id_persons.c.id)).scalars())
    keys = sorted((row.key, row.person_id - first) for row in conn.execute(select(id_blocking_keys)))
    return keys, sorted(tuple(row) for row in conn.execute(select(id_counts)))


def test_bulk_load_indexes_as_create_person_does(engine):
    """If persons are bulk loaded, then their keys and counts are those of one-by-one creation."""
    with engine.connect() as conn:
        with conn.begin() as transaction:
            assert bulk_load(conn, RECORDS, OPERATOR) == len(RECORDS)
            bulk = snapshot(conn)
            transaction.rollback()
        with conn.begin():
            for identifier, traits in RECORDS:
                create_person(conn, traits, OPERATOR, identifier)
            assert snapshot(conn) == bulk


def test_resolution_after_a_bulk_load(engine):
    """If persons are bulk loaded, then resolution finds them and new persons get fresh ids."""
    with engine.begin() as conn:
        bulk_load(conn, RECORDS, OPERATOR)
        assert StoreCandidateIndex(conn).person_count() == len(RECORDS)
        again = resolve(conn, seen("father"), "message:1", ident("f2", CHS))
        assert again.outcome == "linked" and (CHS.oid, "f2") in identifiers_of(conn, again.person_id)
        fresh = resolve(conn, Traits("NOUVEAU", ("Zoé",), "20200101"), "message:2")
        assert fresh.outcome == "new" and fresh.person_id == len(RECORDS) + 1
