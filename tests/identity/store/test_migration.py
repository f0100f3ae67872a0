"""
Tests for migration 0006 (engine/store/migrations/versions/0006_identity.py): its tables
come and go with upgrade and downgrade, on SQLite and PostgreSQL.
"""
from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

from engine.store import migrate
from identity.store.schema import id_persons

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
