"""
Tests for migrations 0006 (engine/store/migrations/versions/0006_identity.py) and
0008_identity_audit: their tables come and go with upgrade and downgrade, and 0008 fills the
names of the persons already stored, on SQLite and PostgreSQL.
"""
from __future__ import annotations

from alembic import command
from sqlalchemy import inspect, select, text

from engine.store import migrate
from identity.store.schema import id_names, id_persons, id_review

IDENTITY_TABLES = {"id_domains", "id_persons", "id_identifiers", "id_traits", "id_blocking_keys",
                   "id_counts", "id_events", "id_review", "id_rejected_pairs"}


def test_downgrade_removes_the_identity_tables_and_upgrade_restores_them(engine):
    """If the store goes down to 0005, then the id_ tables are gone and the others stay;
    back at head, they are there again and usable."""
    with engine.begin() as conn:
        command.downgrade(migrate._config(conn), "0005")
    tables = set(inspect(engine).get_table_names())
    assert not tables & IDENTITY_TABLES and "messages" in tables
    migrate.upgrade(engine)
    assert IDENTITY_TABLES <= set(inspect(engine).get_table_names())
    with engine.begin() as conn:
        conn.execute(id_persons.insert().values(status="active", created_at=0, updated_at=0))


def test_0008_adds_the_audit_and_names_and_fills_names_for_stored_persons(engine):
    """If a store at 0007 holds a person, then upgrading to 0008 adds id_audit and id_names
    and files that person's folded names, so that the search finds persons stored before;
    downgrading removes both tables and the review items that propose nobody."""
    with engine.begin() as conn:
        command.downgrade(migrate._config(conn), "0007")
    tables = set(inspect(engine).get_table_names())
    assert not tables & {"id_audit", "id_names"} and "id_traits" in tables
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO id_traits (person_id, birth_name, used_name, first_names, sex, "
            "family_norm, profile) VALUES (7, 'Dupré', 'Le Gall', '[\"Émile\", \"Jean-Marc\"]', "
            "'M', 'DUPRE', '{}')"))
    migrate.upgrade(engine)
    with engine.connect() as conn:
        names = set(conn.execute(select(id_names.c.kind, id_names.c.folded, id_names.c.person_id)))
    assert names == {("F", "DUPRE", 7), ("F", "LE GALL", 7), ("G", "EMILE", 7), ("G", "JEAN MARC", 7)}
    with engine.begin() as conn:
        conn.execute(id_review.insert().values(person_id=7, candidate_id=None, reasons="doubt",
                                               status="open", opened_at=0, cause="message:1"))
        command.downgrade(migrate._config(conn), "0007")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM id_review")).scalar() == 0
