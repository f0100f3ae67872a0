"""
The group commit's hot statements, run on the DBAPI cursor of the batch's connection.

Why not plain ``conn.execute(table.insert(), rows)``: SQLAlchemy Core adds its own work to
every statement (cache key, compiled-context setup, parameter processing), several times
sqlite3's (bench/statement_cost.py measures it), and a busy group commit runs eight to ten
statements per batch. The SQL text is generated once from the Core ``Table`` definitions in
schema.py (one definition of every column list), with the driver's positional placeholder, and
executed with ``cursor.executemany`` on tuples inside the transaction the writer opened. On
PostgreSQL the row writes are instead one statement per batch, on arrays (engine.store.pgbulk).

test-case-name: tests.store.test_rawsql
"""
from __future__ import annotations

from typing import Any, Sequence

from sqlalchemy import Table

from engine.store import pgbulk

# SQL text, or on PostgreSQL a statement that writes all the rows at once
Statement = str | pgbulk.BulkStatement

_PLACEHOLDERS = {"qmark": "?", "format": "%s", "pyformat": "%s", "numeric": None, "named": None}


class RawStatements:
    """SQL text for one dialect, built once from the schema's tables."""

    def __init__(self, dialect: Any):
        mark = _PLACEHOLDERS.get(dialect.paramstyle)
        if mark is None:
            raise ValueError(f"unsupported DBAPI paramstyle {dialect.paramstyle!r}")
        self._mark = mark
        self.mark = mark  # the driver's positional placeholder
        self.dialect_name = dialect.name
        self._quote = dialect.identifier_preparer.quote
        self.quote = self._quote  # the dialect's quoting of a name
        # PostgreSQL: the row writes are one statement per batch (engine.store.pgbulk)
        self._bulk = pgbulk.supported(dialect)
        self.bulk = self._bulk

    def insert(self, table: Table, columns: Sequence[str]) -> Statement:
        if self._bulk:
            return pgbulk.insert(table, columns, self._quote)
        names = ", ".join(self._quote(c) for c in columns)
        marks = ", ".join(self._mark for _ in columns)
        return f"INSERT INTO {self._quote(table.name)} ({names}) VALUES ({marks})"

    def update(self, table: Table, assigned: Sequence[str], keys: Sequence[str]) -> Statement:
        sets = ", ".join(f"{self._quote(c)} = {self._mark}" for c in assigned)
        where = " AND ".join(f"{self._quote(c)} = {self._mark}" for c in keys)
        one_by_one = f"UPDATE {self._quote(table.name)} SET {sets} WHERE {where}"
        if self._bulk:
            return pgbulk.update(table, assigned, keys, self._quote, one_by_one)
        return one_by_one

    def insert_or_add(self, table: Table, keys: Sequence[str], column: str) -> Statement:
        """Insert a row, or add its ``column`` to the existing row's (SQLite 3.24+, PG 9.5+)."""
        names = ", ".join(self._quote(c) for c in (*keys, column))
        marks = ", ".join(self._mark for _ in (*keys, column))
        conflict = ", ".join(self._quote(c) for c in keys)
        name, target = self._quote(column), self._quote(table.name)
        one_by_one = (f"INSERT INTO {target} ({names}) VALUES ({marks}) ON CONFLICT "
                      f"({conflict}) DO UPDATE SET {name} = {target}.{name} + excluded.{name}")
        if self._bulk:
            return pgbulk.insert_or_add(table, keys, column, self._quote, one_by_one)
        return one_by_one

    def select_in(self, table: Table, columns: Sequence[str], key: str, count: int,
                  extra: str = "") -> str:
        names = ", ".join(self._quote(c) for c in columns)
        marks = ", ".join(self._mark for _ in range(count))
        where = f"{self._quote(key)} IN ({marks})" + (f" AND {extra}" if extra else "")
        return f"SELECT {names} FROM {self._quote(table.name)} WHERE {where}"

    def equals_constant(self, column: str, value: str) -> str:
        """``column = 'value'`` for a constant of the code (a status name, never user input)."""
        if not value.isalnum():
            raise ValueError(f"not a constant name: {value!r}")
        return f"{self._quote(column)} = '{value}'"


class DBAPITransaction:
    """One group commit's transaction on ``conn`` (a context manager), begun and committed
    on its DBAPI connection (SQLite's sqlite3).

    Not SQLAlchemy's ``conn.begin()``: its per-transaction bookkeeping (transaction object,
    events, reset agent) is not needed, the batch's statements run on the DBAPI cursor anyway.
    Nor sqlite3's own implicit ``BEGIN`` and ``commit()``: sqlite3 prepares both statements
    anew at every transaction, where ``BEGIN IMMEDIATE`` and ``COMMIT`` run here as
    statements of the connection, kept prepared in its statement cache. ``IMMEDIATE``: the
    write lock is taken as the transaction begins (waiting on the busy timeout, as the
    first write did), so a batch that reads before it writes (a decision recorded later,
    delivery outcomes) reads what no other writer can change before its commit.

    A write that went through SQLAlchemy (``conn.execute``: a consent change, a heartbeat)
    began SQLAlchemy's own transaction around the same DBAPI one; that one is then
    committed or rolled back through SQLAlchemy, so that it does not stay open. A failed
    batch is rolled back by sqlite3's ``rollback()`` (a rare path). A class rather than a
    ``contextmanager`` generator: it is entered once per group commit.
    """

    __slots__ = ("_conn", "_dbapi", "_cursor")

    def __init__(self, conn: Any):
        self._conn = conn
        self._dbapi: Any = None
        self._cursor: Any = None  # that of our BEGIN, for the COMMIT

    def __enter__(self) -> None:
        dbapi = self._dbapi = self._conn.connection.dbapi_connection
        if not dbapi.in_transaction:  # else one left open: this batch joins it
            self._cursor = dbapi.execute(BEGIN)
        return None

    def __exit__(self, kind: type | None, error: BaseException | None, _trace: Any) -> None:
        conn, dbapi = self._conn, self._dbapi
        if conn.in_transaction():  # SQLAlchemy's, around the DBAPI one
            ended = conn.rollback if kind is not None else conn.commit
        elif kind is None and self._cursor is not None and dbapi.in_transaction:
            self._cursor.execute(COMMIT)  # the common end, a statement kept prepared
            return
        else:
            ended = dbapi.rollback if kind is not None else dbapi.commit
        ended()  # an error raised by the body goes on (None returned)


# the group commit's own transaction statements (DBAPITransaction), cached by sqlite3
BEGIN = "BEGIN IMMEDIATE"
COMMIT = "COMMIT"


def cursor(conn: Any) -> Any:
    """The DBAPI cursor of an SQLAlchemy connection, inside its current transaction: made by
    the DBAPI connection itself, as the pool's proxy would (without its call's packing of
    arguments: a group commit makes one or more)."""
    return conn.connection.dbapi_connection.cursor()


def execute_many(conn: Any, sql: Statement, rows: Sequence[tuple], cur: Any = None) -> None:
    """Run ``sql`` for each of ``rows`` (nothing when there are none), on ``cur`` if given
    (a batch's statements share one cursor), else on a cursor of its own."""
    if not rows:
        return
    if cur is not None:
        _run_many(cur, sql, rows)
        return
    cur = cursor(conn)
    try:
        _run_many(cur, sql, rows)
    finally:
        cur.close()


def _run_many(cur: Any, sql: Statement, rows: Sequence[tuple]) -> None:
    if isinstance(sql, pgbulk.BulkStatement):
        sql.execute(cur, rows)
    else:
        cur.executemany(sql, rows)


def execute_all(conn: Any, writes: Sequence[tuple[Statement, Sequence[tuple]]],
                cur: Any = None) -> None:
    """Several writes of one transaction, each a statement with its rows (empty ones are
    skipped), into tables that do not depend on each other's rows: on PostgreSQL the bulk
    statements go as one (pgbulk.execute_together), the others first; elsewhere in order.
    On ``cur`` if given (the batch's cursor), else on cursors of their own (one for them all
    when none is a bulk statement)."""
    bulk = [(sql, rows) for sql, rows in writes if rows and isinstance(sql, pgbulk.BulkStatement)]
    if not bulk:  # SQLite's: in order, on one cursor (a group commit's, once per batch)
        on = cursor(conn) if cur is None else cur
        try:
            for sql, rows in writes:
                if rows:
                    on.executemany(sql, rows)
        finally:
            if cur is None:
                on.close()
        return
    writes = [(sql, rows) for sql, rows in writes if rows]
    if len(bulk) < 2:
        for sql, rows in writes:
            execute_many(conn, sql, rows, cur)
        return
    for sql, rows in writes:
        if not isinstance(sql, pgbulk.BulkStatement):
            execute_many(conn, sql, rows, cur)
    if cur is not None:
        pgbulk.execute_together(cur, bulk)
        return
    cur = cursor(conn)
    try:
        pgbulk.execute_together(cur, bulk)
    finally:
        cur.close()


def fetch_all(conn: Any, sql: str, params: Sequence[Any]) -> list[tuple]:
    cur = cursor(conn)
    try:
        if pgbulk.supported(conn.dialect):
            pgbulk.look_up(cur, sql, params)  # planned for its own keys (see there)
        else:
            cur.execute(sql, tuple(params))
        return cur.fetchall()
    finally:
        cur.close()
