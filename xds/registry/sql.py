"""
The registry's hot statements on the DBAPI cursor, as the store's group
commit runs its own (engine/store/rawsql.py explains why: SQLAlchemy Core's
per-statement cost is several times sqlite3's). SQL text is built from the
Core tables of xds/registry/tables.py once per dialect and table; rows are
dicts turned into tuples by the table's column names, never by position.

Savepoints too: SQLAlchemy's ``begin_nested`` costs tens of times a raw
``SAVEPOINT``, and on SQLite (the sqlite3 driver in its default mode, which
begins a transaction only before an INSERT or UPDATE) a savepoint issued first
in the caller's transaction would be a transaction of its own, committed by
its RELEASE; :func:`savepoint` begins the caller's transaction first.

test-case-name: tests.xds.test_registry_register
"""
from __future__ import annotations

import itertools
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

from sqlalchemy import Table

from engine.store.rawsql import RawStatements, cursor, execute_many, fetch_all

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


_SAVEPOINT_NAMES = itertools.count(1)


@contextmanager
def savepoint(conn: Any) -> Iterator[None]:
    """A savepoint in the transaction *conn* is in: released when the block ends, rolled
    back to (and the exception raised again) when it raises."""
    raw = conn.connection.dbapi_connection
    if conn.dialect.name == "sqlite" and not raw.in_transaction:
        raw.execute("BEGIN")
    name = f"xds_{next(_SAVEPOINT_NAMES)}"
    cur = cursor(conn)
    try:
        cur.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            cur.execute(f"ROLLBACK TO SAVEPOINT {name}")
            cur.execute(f"RELEASE SAVEPOINT {name}")
            raise
        cur.execute(f"RELEASE SAVEPOINT {name}")
    finally:
        cur.close()
