"""Tests for engine.store.pgbulk: a batch's rows in one statement on PostgreSQL."""
from __future__ import annotations

import math

import pytest
from sqlalchemy import Boolean, Column, MetaData, Table, select, text
from sqlalchemy.dialects import postgresql, sqlite

from engine import status as st
from engine.store import pgbulk
from engine.store.rawsql import RawStatements, cursor, execute_all, execute_many, fetch_all
from engine.store.schema import counts, deliveries, journal, messages

ODD_TEXT = "tab\there\nnew\\line \\N \"q\" {a,b} NULL é ✓ 𝄞"


def test_arrays_read_back_exactly(pg_engine):
    """If columns of every type the hot tables use (NULLs, an all-NULL column, the extremes
    of the integers, infinities, odd text, every byte value) go as encoded arrays, then
    PostgreSQL reads back each value as it was."""
    types = [kind for _, kind in pgbulk._ARRAY_TYPES]  # int8, int4, float8, bytea, text
    rows = [(2 ** 63 - 1, 2 ** 31 - 1, math.inf, bytes(range(256)), ODD_TEXT, None),
            (-2 ** 63, -2 ** 31, -0.5, b"", "", None),
            (None, None, None, None, None, None)]
    columns = list(zip(*rows))
    arrays = ", ".join(f"%b::{kind.name}" for kind in (*types, types[4]))
    with pg_engine.connect() as conn:
        cur = cursor(conn)
        pgbulk.register(cur)
        charset = cur.connection.info.encoding
        cur.execute(f"SELECT * FROM unnest({arrays})",
                    [pgbulk.EncodedArray(kind.encode(column, charset))
                     for kind, column in zip((*types, types[4]), columns)])
        back = [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
                for row in cur.fetchall()]
    assert back == rows


def test_columns_of_one_value_and_of_many_read_back_exactly(pg_engine):
    """If a batch's columns hold one value throughout (text, bytes, NULL), or many values
    without NULL (signed zeros and NaN among the floats, text of every length), then each
    row reads back as it was, in order (the columns are encoded whole, not value by value)."""
    types = [kind for _, kind in pgbulk._ARRAY_TYPES]  # int8, int4, float8, bytea, text
    count = 40
    columns = [
        [n - 20 for n in range(count)],
        [7] * count,
        [(-0.0, 0.0, math.nan, -math.inf, 1e-300)[n % 5] for n in range(count)],
        [bytes(range(n % 7)) * n for n in range(count)],
        [ODD_TEXT[:n % len(ODD_TEXT)] for n in range(count)],
        ["same text ✓"] * count,
        [b"same \x00 bytes"] * count,
        [None] * count,
    ]
    kinds = [*types, types[4], types[3], types[4]]
    arrays = ", ".join(f"%b::{kind.name}" for kind in kinds)
    with pg_engine.connect() as conn:
        cur = cursor(conn)
        pgbulk.register(cur)
        charset = cur.connection.info.encoding
        cur.execute(f"SELECT * FROM unnest({arrays}) WITH ORDINALITY",
                    [pgbulk.EncodedArray(kind.encode(tuple(column), charset))
                     for kind, column in zip(kinds, columns)])
        back = cur.fetchall()
    assert [row[-1] for row in back] == list(range(1, count + 1))
    floats = [row[2] for row in back]
    assert [math.copysign(1, f) for f in floats if f == 0] == [-1.0, 1.0] * (count // 5)
    assert sum(math.isnan(f) for f in floats) == count // 5
    same = lambda v: bytes(v) if isinstance(v, memoryview) else v  # noqa: E731
    assert [tuple(same(v) for v in row[:-1]) for row in back if row[2] == row[2]] == \
        [row for row in zip(*columns) if row[2] == row[2]]


def test_update_repeating_an_id_applies_rows_in_order(pg_engine):
    """If updates of one batch name the same delivery (retried, sent, then a late outcome),
    then they apply one after the other as executemany's would: the late one finds the
    delivery SENT and changes nothing."""
    sql = RawStatements(pg_engine.dialect)
    insert = sql.insert(deliveries, ("id", "message_id", "channel", "destination", "status",
                                     "created_at", "updated_at", "next_attempt_at"))
    update = sql.update(deliveries, ("status", "attempts"), ("id", "status"))
    with pg_engine.begin() as conn:
        execute_many(conn, insert, [(n, n, "c", "d", st.QUEUED, 1.0, 1.0, 1.0)
                                    for n in (1, 2)])
        execute_many(conn, update, [(st.QUEUED, 1, 1, st.QUEUED), (st.SENT, 2, 1, st.QUEUED),
                                    (st.ERROR, 3, 1, st.QUEUED), (st.ERROR, 1, 2, st.QUEUED)])
        stored = conn.execute(select(deliveries.c.id, deliveries.c.status,
                                     deliveries.c.attempts).order_by(deliveries.c.id)).all()
    assert stored == [(1, st.SENT, 2), (2, st.ERROR, 1)]


def test_update_changes_only_rows_matching_every_key(pg_engine):
    """If a bulk update's row names a delivery no longer in the status it expects, then that
    delivery is left as it is and the others change."""
    sql = RawStatements(pg_engine.dialect)
    insert = sql.insert(deliveries, ("id", "message_id", "channel", "destination", "status",
                                     "created_at", "updated_at", "next_attempt_at"))
    update = sql.update(deliveries, ("status", "last_error"), ("id", "status"))
    with pg_engine.begin() as conn:
        execute_many(conn, insert, [(1, 1, "c", "d", st.SENT, 1.0, 1.0, 1.0),
                                    (2, 2, "c", "d", st.QUEUED, 1.0, 1.0, 1.0)])
        execute_many(conn, update, [(st.ERROR, "late", 1, st.QUEUED),
                                    (st.ERROR, ODD_TEXT, 2, st.QUEUED)])
        stored = conn.execute(select(deliveries.c.status, deliveries.c.last_error)
                              .order_by(deliveries.c.id)).all()
    assert stored == [(st.SENT, None), (st.ERROR, ODD_TEXT)]


def test_upsert_adds_also_when_a_key_repeats(pg_engine):
    """If counts are added to twice, in one batch that names a key twice and in a later one,
    then each key holds the sum of what was added to it."""
    sql = RawStatements(pg_engine.dialect)
    add = sql.insert_or_add(counts, ("node", "channel", "destination", "status"), "count")
    with pg_engine.begin() as conn:
        execute_many(conn, add, [("n", "c", "", st.RECEIVED, 2), ("n", "c", "", st.RECEIVED, 3),
                                 ("n", "c", "d", st.QUEUED, 1)])
        execute_many(conn, add, [("n", "c", "", st.RECEIVED, -1), ("n", "c", "d", st.QUEUED, 4)])
        stored = conn.execute(select(counts.c.destination, counts.c.count)
                              .order_by(counts.c.destination)).all()
    assert stored == [("", 4), ("d", 5)]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_kinds_of_rows_written_together(backend, tmp_path, pg_engine):
    """If journal lines, counts (two rows naming one key, then added to again) and an update
    are written together (rawsql.execute_all: one statement for what may join on
    PostgreSQL), then every row is as the writes one after the other leave it, on both
    databases; on PostgreSQL the lines and the counts without a repeated key go as one
    statement."""
    from engine.store.store import make_engine
    from engine.store import migrate

    engine = pg_engine
    if backend == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path}/together.db")
        migrate.ensure_current(engine)
    sql = RawStatements(engine.dialect)
    line = sql.insert(journal, ("message_id", "status", "at", "detail"))
    add = sql.insert_or_add(counts, ("node", "channel", "destination", "status"), "count")
    insert = sql.insert(deliveries, ("id", "message_id", "channel", "destination", "status",
                                     "created_at", "updated_at", "next_attempt_at"))
    update = sql.update(deliveries, ("status",), ("id", "status"))
    joined = []
    if backend == "postgresql":
        real = pgbulk.execute_together
        pgbulk.execute_together = lambda cur, writes: (joined.append(len(writes)),
                                                       real(cur, writes))
    try:
        with engine.begin() as conn:
            execute_many(conn, insert, [(1, 1, "c", "d", st.QUEUED, 1.0, 1.0, 1.0)])
            execute_all(conn, [(update, [(st.SENT, 1, st.QUEUED)]),
                               (line, [(1, st.SENT, 2.0, None), (1, st.SENT, 3.0, ODD_TEXT)]),
                               (add, [("n", "c", "", st.SENT, 2), ("n", "c", "", st.SENT, 3)]),
                               (line, [])])
            execute_all(conn, [(line, [(2, st.ERROR, 4.0, "x")]),
                               (add, [("n", "c", "", st.SENT, -1), ("n", "c", "d", st.SENT, 7)])])
            stored = (conn.execute(select(journal.c.message_id, journal.c.detail)
                                   .order_by(journal.c.at)).all(),
                      conn.execute(select(counts.c.destination, counts.c.count)
                                   .order_by(counts.c.destination)).all(),
                      conn.execute(select(deliveries.c.status)).scalars().all())
    finally:
        if backend == "postgresql":
            pgbulk.execute_together = real
        else:
            engine.dispose()
    assert stored == ([(1, None), (1, ODD_TEXT), (2, "x")], [("", 4), ("d", 7)], [st.SENT])
    assert joined == ([] if backend == "sqlite" else [3, 2])


def test_joined_statement_is_one_execute():
    """If several kinds of rows join, then the cursor runs one statement for them all, a
    WITH of the inserts; rows repeating a key, or an update, run on their own before it."""
    sql = RawStatements(postgresql.psycopg.dialect())
    line = sql.insert(journal, ("message_id", "status", "at"))
    add = sql.insert_or_add(counts, ("node", "channel", "destination", "status"), "count")
    update = sql.update(deliveries, ("status",), ("id", "status"))
    ran = []

    class Cursor:
        connection = type("C", (), {"info": type("I", (), {"encoding": "utf-8"})()})()
        adapters = None

        def execute(self, query, params, prepare=None):
            ran.append(query.split(" ")[0])

        def executemany(self, query, rows):
            ran.append("executemany")

    pgbulk._REGISTERED.add(Cursor.connection)
    pgbulk.execute_together(Cursor(), [(line, [(1, st.SENT, 1.0)]),
                                       (update, [(st.SENT, 1, st.QUEUED)]),
                                       (add, [("n", "c", "", st.SENT, 1)] * 2),
                                       (add, [("n", "c", "", st.SENT, 1)])])
    assert ran == ["UPDATE", "executemany", "WITH"]


def test_journal_lines_in_one_statement(pg_engine):
    """If a batch of journal lines is written on PostgreSQL, then it is one INSERT from
    unnest, and every line is stored."""
    sql = RawStatements(pg_engine.dialect)
    insert = sql.insert(journal, ("message_id", "delivery_id", "status", "at", "detail"))
    assert isinstance(insert, pgbulk.BulkStatement)
    assert "unnest(" in insert.sql
    lines = [(n, None if n % 2 else n, st.RECEIVED, float(n), ODD_TEXT if n % 3 else None)
             for n in range(50)]
    with pg_engine.begin() as conn:
        execute_many(conn, insert, lines)
        stored = conn.execute(select(journal.c.message_id, journal.c.delivery_id,
                                     journal.c.status, journal.c.at, journal.c.detail)
                              .order_by(journal.c.message_id)).all()
    assert [tuple(row) for row in stored] == lines


def test_column_type_without_array_is_refused():
    """If a table has a column of a type pgbulk does not know, then building its statement
    fails at once, naming the table and column."""
    table = Table("flags", MetaData(), Column("on", Boolean))
    with pytest.raises(TypeError, match=r"flags\.on"):
        pgbulk.insert(table, ("on",), postgresql.dialect().identifier_preparer.quote)


def test_sqlite_statements_stay_plain_sql():
    """If the database is SQLite, then the statements are the plain SQL text run with
    executemany, as before."""
    sql = RawStatements(sqlite.dialect())
    assert sql.insert(journal, ("message_id", "status")) == (
        "INSERT INTO journal (message_id, status) VALUES (?, ?)")
    assert sql.insert_or_add(counts, ("node", "status"), "count") == (
        "INSERT INTO counts (node, status, count) VALUES (?, ?, ?) ON CONFLICT (node, status) "
        "DO UPDATE SET count = counts.count + excluded.count")
    assert sql.update(deliveries, ("status",), ("id",)) == (
        "UPDATE deliveries SET status = ? WHERE id = ?")


def test_look_up_is_never_prepared(pg_engine):
    """If the duplicate check has run many times on a connection, then it is still not a
    prepared statement on the server: each run is planned for the table as it is then (the
    generic plan of a statement prepared while the table was small scans it whole)."""
    sql = RawStatements(pg_engine.dialect)
    look_up = sql.select_in(messages, ("dedupe_key", "id"), "dedupe_key", 2)
    add = sql.insert_or_add(counts, ("node", "channel", "destination", "status"), "count")
    prepared = text("SELECT statement FROM pg_prepared_statements WHERE NOT from_sql")
    with pg_engine.connect() as conn:
        for n in range(20):  # psycopg prepares a statement once it has run 5 times
            with conn.begin():
                found = fetch_all(conn, look_up, ["a", "b"])
                execute_many(conn, add, [("n", "c", "", st.RECEIVED, n)])
        statements = conn.execute(prepared).scalars().all()
    assert found == []
    assert [s.split(" (")[0] for s in statements] == ["INSERT INTO counts"]  # the only one
