"""
The registry's hot statements on the DBAPI cursor, as the store's group
commit runs its own (engine/store/rawsql.py explains why: SQLAlchemy Core's
per-statement cost is several times sqlite3's). SQL text is built from the
Core tables of xds/registry/tables.py once per dialect and table; rows are
dicts turned into tuples by the table's column names, never by position.

test-case-name: tests.xds.test_registry_register
"""
from __future__ import annotations

from typing import Any, Sequence

from sqlalchemy import Table

from engine.store.rawsql import RawStatements, execute_many, fetch_all

_INSERTS: dict[tuple[str, str], tuple[str, tuple[str, ...]]] = {}


def insert_rows(conn: Any, table: Table, rows: Sequence[dict]) -> None:
    """Insert *rows* (dicts with every column of *table*) in one executemany."""
    if not rows:
        return
    key = (conn.dialect.name, table.name)
    if key not in _INSERTS:
        columns = tuple(column.name for column in table.columns)
        _INSERTS[key] = (RawStatements(conn.dialect).insert(table, columns), columns)
    sql, columns = _INSERTS[key]
    execute_many(conn, sql, [tuple(row[name] for name in columns) for row in rows])


def select_in(conn: Any, table: Table, columns: Sequence[str], key: str,
              values: Sequence[str]) -> list[dict]:
    """The *columns* of the rows whose *key* is one of *values*, as dicts."""
    if not values:
        return []
    sql = RawStatements(conn.dialect).select_in(table, columns, key, len(values))
    return [dict(zip(columns, row)) for row in fetch_all(conn, sql, values)]
