"""Tests for engine.store.rawsql's group-commit transaction on the DBAPI connection (SQLite)."""
from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import create_engine, text

from engine.store.rawsql import DBAPITransaction, cursor, execute_many


@pytest.fixture
def engine(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path}/t.db")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (a INTEGER, b TEXT)"))
    yield engine
    engine.dispose()


def rows(engine):
    with engine.connect() as conn:
        return conn.execute(text("SELECT a, b FROM t ORDER BY a")).fetchall()


def test_the_batch_is_committed(engine):
    with engine.connect() as conn:
        with DBAPITransaction(conn):
            execute_many(conn, "INSERT INTO t VALUES (?, ?)", [(1, "x"), (2, None)])
        assert not conn.in_transaction()
    assert rows(engine) == [(1, "x"), (2, None)]


def test_a_failure_rolls_the_batch_back(engine):
    with engine.connect() as conn:
        with pytest.raises(RuntimeError):
            with DBAPITransaction(conn):
                cur = cursor(conn)
                execute_many(conn, "INSERT INTO t VALUES (?, ?)", [(1, "x")], cur)
                raise RuntimeError("the batch fails")
        with DBAPITransaction(conn):  # the connection is usable again
            execute_many(conn, "INSERT INTO t VALUES (?, ?)", [(3, "z")])
    assert rows(engine) == [(3, "z")]


@pytest.mark.parametrize("fails", [False, True])
def test_a_write_through_sqlalchemy_ends_with_the_batch(engine, fails):
    """A statement run with conn.execute (it begins SQLAlchemy's own transaction) is
    committed or rolled back with the batch, and leaves no transaction open."""
    with engine.connect() as conn:
        try:
            with DBAPITransaction(conn):
                execute_many(conn, "INSERT INTO t VALUES (?, ?)", [(1, "raw")])
                conn.execute(text("INSERT INTO t VALUES (2, 'core')"))
                if fails:
                    raise RuntimeError("the batch fails")
        except RuntimeError:
            pass
        assert not conn.in_transaction()
    assert rows(engine) == ([] if fails else [(1, "raw"), (2, "core")])


def test_the_batch_holds_the_write_lock_from_its_start(engine, tmp_path):
    """BEGIN IMMEDIATE: before the batch's first write, another connection cannot write
    (so what the batch reads first stays as read until its commit), and can once it ends."""
    other = sqlite3.connect(tmp_path / "t.db", timeout=0)
    try:
        with engine.connect() as conn:
            with DBAPITransaction(conn):
                with pytest.raises(sqlite3.OperationalError, match="locked"):
                    other.execute("INSERT INTO t VALUES (9, 'other')")
                execute_many(conn, "INSERT INTO t VALUES (?, ?)", [(1, "batch")])
            assert not conn.connection.dbapi_connection.in_transaction
        other.execute("INSERT INTO t VALUES (9, 'other')")
        other.commit()
    finally:
        other.close()
    assert rows(engine) == [(1, "batch"), (9, "other")]
