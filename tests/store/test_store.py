"""Tests for engine.store.store: the engine settings per database, and the Store's life."""
from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import text
from twisted.internet import defer, reactor
from twisted.trial import unittest

from engine.store import migrate, queries
from engine.store.store import Store, make_engine
from tests.dbs import sqlite_url
from tests.store.storecase import StoreCase, inbound


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_in_memory_sqlite_refused(url):
    """If the URL names an in-memory SQLite, then make_engine refuses it (one per thread)."""
    with pytest.raises(ValueError, match="file database"):
        make_engine(url)


def test_sqlite_synchronous_checked(tmp_path):
    """If the synchronous setting is not FULL or NORMAL, then make_engine refuses it."""
    with pytest.raises(ValueError, match="synchronous"):
        make_engine(sqlite_url(tmp_path), sqlite_synchronous="OFF")


@pytest.mark.parametrize("synchronous,expected", [("FULL", 2), ("NORMAL", 1)])
def test_sqlite_pragmas(tmp_path, synchronous, expected):
    """If a SQLite engine connects, then the database is in WAL mode with the asked
    synchronous level and a busy timeout."""
    engine = make_engine(sqlite_url(tmp_path), sqlite_synchronous=synchronous)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA synchronous")).scalar() == expected
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 30000
    finally:
        engine.dispose()


class StoreLifeTests(StoreCase):

    @defer.inlineCallbacks
    def test_stop_then_data_survives(self):
        """If a store is stopped right after a write, then a new store on the same database
        reads it back."""
        result = yield self.store.ingest(inbound("1"))
        yield self.store.stop()
        again = Store(self.url, reactor)
        again.start(create_if_empty=False)
        self.addCleanup(again.stop)
        detail = yield again.read(queries.message_detail, result.message_id)
        self.assertEqual(detail["control_id"], "1")

    @defer.inlineCallbacks
    def test_read_ends_its_transaction_and_keeps_prepared_statements(self):
        """If the store reads, on the DBAPI cursor or through SQLAlchemy, then the read's
        connection goes back to the pool outside any transaction, and on PostgreSQL a read
        run again and again is prepared once and stays prepared: a rollback (what the pool
        does to a connection left in a transaction) makes psycopg forget every statement it
        prepared, and a lane's read of its queue was then parsed and planned every time."""
        connections, prepared = set(), []

        def probe(conn):
            connections.add(conn.connection.dbapi_connection)
            if self.backend == "postgresql":  # on this connection, before the read
                cur = conn.connection.cursor()
                cur.execute("SELECT count(*) FROM pg_prepared_statements "  # not itself
                            "WHERE statement LIKE concat('%FROM deliveries', ' d%')")
                prepared.append(cur.fetchone()[0])
                cur.close()
            return queries.fetch_due(conn, "adt-in", "archive", 0, 10)

        for _ in range(20):  # psycopg prepares a statement at its fifth run on a connection
            yield self.store.read(probe)
            yield self.store.read(queries.status_counts)  # through SQLAlchemy
        for connection in connections:
            if self.backend == "postgresql":
                self.assertEqual(connection.info.transaction_status,
                                 psycopg.pq.TransactionStatus.IDLE)
            else:
                self.assertFalse(connection.in_transaction)
        if self.backend == "postgresql":
            self.assertLessEqual(len(connections), 3)  # the pool's: each ran it 6 times or more
            self.assertEqual(prepared[-1], 1)

    def test_start_refuses_old_schema(self):
        """If the database is not at the code's schema, then start raises SchemaOutOfDate
        before any thread runs."""
        with self.store.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = 'old'"))
        store = Store(self.url, reactor)
        self.addCleanup(store.stop)
        self.assertRaises(migrate.SchemaOutOfDate, store.start)


class StoreLifeTestsSQLite(StoreLifeTests, unittest.TestCase):
    backend = "sqlite"


class StoreLifeTestsPostgreSQL(StoreLifeTests, unittest.TestCase):
    backend = "postgresql"
