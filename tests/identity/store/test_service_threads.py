"""
The store's index service in its real thread (identity/store/service.py): calls from the
reactor run in the index's thread, one transaction each, and refusals are errbacks, on
SQLite and PostgreSQL.
"""
from __future__ import annotations

from twisted.internet import defer, reactor
from twisted.trial import unittest

from engine.store import migrate
from engine.store.store import make_engine
from identity.service import Registered, SearchCriteria, UnknownIdentifier
from identity.store.service import StoreIdentityService
from tests.dbs import open_database
from tests.identity.cast import PEOPLE
from tests.identity.store.test_service_contract import ident


class ThreadedServiceCase:
    backend = "sqlite"

    def setUp(self):
        self.engine = make_engine(open_database(self, self.backend))
        migrate.ensure_current(self.engine)
        self.addCleanup(self.engine.dispose)
        self.service = StoreIdentityService(self.engine, reactor)
        self.service.start()
        self.addCleanup(self.service.stop)

    @defer.inlineCallbacks
    def test_register_merge_and_search_in_the_thread(self):
        """If two persons are registered by two messages and merged, then a search finds
        one, holding both identifiers."""
        a = yield self.service.for_message(1).register([ident("1")], PEOPLE["father"])
        yield self.service.for_message(2).register([ident("2")], PEOPLE["mother"])
        survivor = yield self.service.for_message(3).merge([ident("1")], ident("2"))
        page = yield self.service.search(SearchCriteria(family_name="moreau"), 0, 10)
        self.assertEqual((a.outcome, survivor), (Registered.CREATED, a.person_id))
        self.assertEqual([r.person_id for r in page.records], [a.person_id])
        self.assertEqual(set(page.records[0].identifiers), {ident("1"), ident("2")})

    @defer.inlineCallbacks
    def test_a_refusal_is_an_errback(self):
        """If a merge names nobody, then its Deferred fails with UnknownIdentifier."""
        with self.assertRaises(UnknownIdentifier):
            yield self.service.for_message(1).merge([ident("1")], ident("2"))


class SQLiteThreadedService(ThreadedServiceCase, unittest.TestCase):
    backend = "sqlite"


class PostgreSQLThreadedService(ThreadedServiceCase, unittest.TestCase):
    backend = "postgresql"
