"""Tests for engine.store.migrate: creating, checking and upgrading the schema, on both backends."""
from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text

from engine.store import migrate
from engine.store.schema import id_blocks, metadata
from engine.store.store import make_engine
import identity.store.schema  # noqa: F401  the identity tables live on the same metadata


@pytest.fixture
def empty_engine(db_url):
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def _id_blocks(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(select(id_blocks.c.name, id_blocks.c.next_value)).all())


def _stamp(engine, revision: str) -> None:
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})


def test_ensure_current_creates_schema_in_empty_database(empty_engine):
    """If the database is empty, then ensure_current creates every table at the head
    revision and seeds one id block row per sequence, starting at 1."""
    assert migrate.current_revision(empty_engine) is None
    migrate.ensure_current(empty_engine)
    assert migrate.current_revision(empty_engine) == migrate.head_revision()
    tables = set(inspect(empty_engine).get_table_names())
    assert {"messages", "deliveries", "journal", "id_blocks", "alembic_version"} <= tables
    assert _id_blocks(empty_engine) == {"messages": 1, "deliveries": 1}


def test_migrations_produce_the_schema_the_code_reads(empty_engine):
    """If the migrations have run, then the database matches schema.py (no autogenerate diff)."""
    migrate.upgrade(empty_engine)
    with empty_engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_ensure_current_on_current_database_changes_nothing(empty_engine):
    """If the database is at head, then ensure_current leaves the id blocks alone."""
    migrate.ensure_current(empty_engine)
    with empty_engine.begin() as conn:
        conn.execute(id_blocks.update().values(next_value=500))
    migrate.ensure_current(empty_engine)
    assert _id_blocks(empty_engine) == {"messages": 500, "deliveries": 500}


def test_empty_database_refused_when_creation_not_allowed(empty_engine):
    """If the database is empty and create_if_empty is False, then SchemaOutOfDate names
    `aiguillage db upgrade` and nothing is created."""
    with pytest.raises(migrate.SchemaOutOfDate, match="aiguillage db upgrade"):
        migrate.ensure_current(empty_engine, create_if_empty=False)
    assert "messages" not in inspect(empty_engine).get_table_names()


def test_older_revision_refused(empty_engine, monkeypatch):
    """If the database is at an older revision than the code's head, then ensure_current
    raises SchemaOutOfDate naming both revisions and `aiguillage db upgrade`."""
    migrate.ensure_current(empty_engine)
    old = migrate.head_revision()
    monkeypatch.setattr(migrate, "head_revision", lambda: "9999")
    with pytest.raises(migrate.SchemaOutOfDate) as raised:
        migrate.ensure_current(empty_engine)
    message = str(raised.value)
    assert f"revision {old}" in message and "9999" in message
    assert "run `aiguillage db upgrade`" in message


def test_unknown_revision_refused(empty_engine):
    """If the database names a revision this code does not know, then ensure_current raises
    SchemaOutOfDate instead of touching it."""
    migrate.ensure_current(empty_engine)
    _stamp(empty_engine, "0000deadbeef")
    with pytest.raises(migrate.SchemaOutOfDate, match="0000deadbeef.*aiguillage db upgrade"):
        migrate.ensure_current(empty_engine)
    assert migrate.current_revision(empty_engine) == "0000deadbeef"


def test_upgrade_twice_is_a_no_op(empty_engine):
    """If upgrade runs on a database already at head, then it reports (head, head) and keeps
    the tables and the id blocks as they were."""
    head = migrate.head_revision()
    assert migrate.upgrade(empty_engine) == (None, head)
    with empty_engine.begin() as conn:
        conn.execute(id_blocks.update().where(id_blocks.c.name == "messages")
                     .values(next_value=42))
    tables = sorted(inspect(empty_engine).get_table_names())
    assert migrate.upgrade(empty_engine) == (head, head)
    assert sorted(inspect(empty_engine).get_table_names()) == tables
    assert _id_blocks(empty_engine) == {"messages": 42, "deliveries": 1}


def test_tables_without_revision_refused(empty_engine):
    """If the database already has tables but no schema revision (not an Aiguillage store),
    then ensure_current refuses it with a message saying so, and creates nothing."""
    with empty_engine.begin() as conn:
        conn.execute(text("CREATE TABLE patients (id INTEGER PRIMARY KEY)"))
    with pytest.raises(migrate.SchemaOutOfDate, match="not an Aiguillage store"):
        migrate.ensure_current(empty_engine)
    assert inspect(empty_engine).get_table_names() == ["patients"]
