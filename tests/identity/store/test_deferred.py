"""
Tests for the reactor-side wrapper (identity/store/deferred.py): operations run in a
thread, each in a transaction, on SQLite and PostgreSQL.
"""
from __future__ import annotations

from twisted.internet import defer, reactor, threads
from twisted.trial import unittest

from engine.store import migrate
from engine.store.store import make_engine
from identity.store import IdentityError, history
from identity.store.deferred import DeferredIdentityIndex
from tests.dbs import open_database
from tests.identity.cast import PEOPLE
from tests.identity.store.test_service import OPERATOR, ident


class DeferredCase:
    backend = "sqlite"

    def setUp(self):
        self.engine = make_engine(open_database(self, self.backend))
        migrate.ensure_current(self.engine)
        self.addCleanup(self.engine.dispose)
        self.index = DeferredIdentityIndex(self.engine, reactor)
        self.index.start()
        self.addCleanup(self.index.stop)

    @defer.inlineCallbacks
    def test_resolve_then_merge_in_threads(self):
        """If two persons are resolved then merged through the wrapper, then the history
        holds the merge, committed (read on a fresh connection)."""
        a = yield self.index.resolve(PEOPLE["father"], "message:1", ident("a"))
        b = yield self.index.resolve(PEOPLE["mother"], "message:2", ident("b"))
        yield self.index.merge(a.person_id, b.person_id, OPERATOR)

        def read():
            with self.engine.connect() as conn:
                return [e["kind"] for e in history(conn, b.person_id)]

        kinds = yield threads.deferToThread(read)
        self.assertEqual(kinds[-1], "merge")

    @defer.inlineCallbacks
    def test_a_failure_is_an_errback(self):
        """If an operation is refused, then its Deferred fails with IdentityError."""
        with self.assertRaises(IdentityError):
            yield self.index.unmerge(12345, OPERATOR)


class SQLiteDeferred(DeferredCase, unittest.TestCase):
    backend = "sqlite"


class PostgreSQLDeferred(DeferredCase, unittest.TestCase):
    backend = "postgresql"
