"""
Schema migrations: bring a database to the newest schema, or tell how far behind it is.

Alembic is driven from code (no alembic.ini) so that ``aiguillage db upgrade`` works from any
directory and the migrations travel inside the installed package.

test-case-name: tests.store.test_migrate
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import insert, inspect, select

from engine.store.schema import id_blocks

MIGRATIONS = Path(__file__).with_name("migrations")
ID_SEQUENCES = ("messages", "deliveries")


class SchemaOutOfDate(RuntimeError):
    """The database is at an older schema than this code needs."""


def _config(connection: Any) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The revision this code expects."""
    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


def current_revision(engine: Any) -> str | None:
    """The revision the database is at; None for an empty database."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Any) -> tuple[str | None, str]:
    """Migrate the database to the newest schema; return (revision before, revision after)."""
    before = current_revision(engine)
    with engine.begin() as conn:  # transaction boundary: the whole upgrade
        command.upgrade(_config(conn), "head")
        _seed_id_blocks(conn)
    return before, head_revision()


def _seed_id_blocks(conn: Any) -> None:
    present = set(conn.execute(select(id_blocks.c.name)).scalars())
    for name in ID_SEQUENCES:
        if name not in present:
            conn.execute(insert(id_blocks).values(name=name, next_value=1))


def _has_tables(engine: Any) -> bool:
    return bool(inspect(engine).get_table_names())


def ensure_current(engine: Any, *, create_if_empty: bool = True) -> None:
    """Create the schema in an empty database; refuse one at an older revision.

    An existing database is never migrated implicitly: an operator runs
    ``aiguillage db upgrade`` so that a schema change is a decision, not a side effect.
    """
    current = current_revision(engine)
    head = head_revision()
    if current == head:
        return
    if current is None and _has_tables(engine):
        raise SchemaOutOfDate(
            "the database has tables but no schema revision: it is not an Aiguillage store "
            "(or was created by hand); point store.url at an empty database")
    if current is None and create_if_empty:
        upgrade(engine)
        return
    raise SchemaOutOfDate(
        f"database schema is at revision {current or 'none'}, this engine needs {head}: "
        "run `aiguillage db upgrade`"
    )
