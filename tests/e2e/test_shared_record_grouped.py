"""Group commit of ITI-41 through the shared record a real engine serves, on SQLite and
PostgreSQL: concurrent submissions share one commit, a refused one is rolled back alone, two
racing for one uniqueId in the same group give one stored and one
XDSDuplicateUniqueIdInRegistry, nobody is answered before the commit, and stored queries are
answered while the writer is busy."""
from __future__ import annotations

import threading

from sqlalchemy import func, select
from twisted.internet import defer
from twisted.trial import unittest

from tests.e2e.harness import wait_until
from tests.e2e.shared_record_support import SAMPLE_PATIENT, SharedRecordCase, post, sample_pnr
from tests.xds.registry_support import adhoc_query
from tests.xds.test_registry_query import FIND_DOCUMENTS
from xds.metadata import errors as codes
from xds.metadata.vocabulary import ACTION_STORED_QUERY, RESPONSE_FAILURE, RESPONSE_SUCCESS
from xds.namespaces import rim
from xds.registry import tables
from xds.registry.grouped import Queued
from xds.safexml import to_bytes
from xds.soap.envelope import request_envelope


def numbered(number: int) -> bytes:
    """The IHE sample with a document and submission set uniqueId of its own."""
    return sample_pnr().replace(b"2005.3.9999.32", b"2005.3.9999.32.%d" % number) \
        .replace(b"2005.3.9999.33", b"2005.3.9999.33.%d" % number)


def entries_stored(engine) -> int:
    with engine.store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(tables.document_entries)).scalar()


class GroupedSubmissionTests(SharedRecordCase):

    @defer.inlineCallbacks
    def hold_the_writer(self):
        """Occupy the registry's writers (each a group of one piece of work waiting on an
        event); the event that releases them."""
        release = threading.Event()
        self.addCleanup(release.set)
        threads = self.engine.shared_record.threads
        started = []

        def wait(conn):
            started.append(True)
            release.wait(60)
            return []

        for held in range(1, threads.writers + 1):  # one at a time: a writer takes all waiting
            threads.writer.queue(Queued(wait))
            yield wait_until(lambda: len(started) == held, 30, "a writer holds a blocking work")
        return release

    @defer.inlineCallbacks
    def test_concurrent_submissions_share_one_commit_a_refused_one_alone(self):
        """If the served engine did not group, then the queued submissions would take one
        commit each; if a refused one or a race were not rolled back alone, then the others
        of its group would be lost or answered wrongly; if anyone were answered before the
        commit, then an answer would arrive while the writer is held."""
        yield self.serve()
        threads = self.engine.shared_record.threads
        first = yield self.provide(numbered(0))  # stored before: its twin will be refused
        self.assertEqual(first.status, RESPONSE_SUCCESS)
        release = yield self.hold_the_writer()
        groups = threads.groups

        answers = []
        posts = [self.provide(numbered(n)) for n in range(1, 9)]   # 8 distinct
        posts += [self.provide(numbered(0))]                       # a duplicate of the stored
        posts += [self.provide(numbered(99)) for _ in range(2)]    # two racing for one uniqueId
        for d in posts:
            d.addCallback(lambda response: answers.append(response) or response)
        writer = threads.writer
        yield wait_until(lambda: writer._queue.qsize() == len(posts), 60,
                         "every submission waits for the writer")
        self.assertEqual(answers, [], "a submission was answered before its commit")
        self.assertEqual(entries_stored(self.engine), 1)
        release.set()

        responses = yield defer.gatherResults(posts, consumeErrors=True)
        # the held ones' groups, then the queued ones, all at once on SQLite (one writer)
        self.assertEqual(threads.writers, 1 if self.backend == "sqlite" else 3)
        self.assertLessEqual(threads.groups - groups, 2 * threads.writers)
        self.assertEqual([r.status for r in responses[:8]], [RESPONSE_SUCCESS] * 8)
        refused = responses[8]
        self.assertEqual((refused.status, [e.error_code for e in refused.errors]),
                         (RESPONSE_FAILURE, [codes.DUPLICATE_UNIQUE_ID_IN_REGISTRY]))
        race = sorted((r.status, tuple(sorted({e.error_code for e in r.errors})))
                      for r in responses[9:])
        self.assertEqual(race, [(RESPONSE_FAILURE, (codes.DUPLICATE_UNIQUE_ID_IN_REGISTRY,)),
                                (RESPONSE_SUCCESS, ())])
        self.assertEqual(entries_stored(self.engine), 1 + 8 + 1)

    @defer.inlineCallbacks
    def test_stored_queries_are_answered_while_the_writer_is_busy(self):
        """If ITI-18 ran on the writer, then it would wait behind the held group."""
        yield self.serve()
        stored = yield self.provide(numbered(1))
        self.assertEqual(stored.status, RESPONSE_SUCCESS)
        release = yield self.hold_the_writer()
        query = to_bytes(request_envelope(ACTION_STORED_QUERY, adhoc_query(FIND_DOCUMENTS, {
            "$XDSDocumentEntryPatientId": SAMPLE_PATIENT,
            "$XDSDocumentEntryStatus": ["urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"]}),
            self.registry))
        found = yield post(self.registry, query)
        release.set()
        found.assert_valid("query")
        self.assertEqual(found.body.get("status"), RESPONSE_SUCCESS)
        self.assertEqual(len(found.body.find(rim("RegistryObjectList"))), 1)

    @defer.inlineCallbacks
    def test_queued_submissions_are_committed_at_stop(self):
        """If stopping did not drain the writer, then a submission read before the stop would
        be answered with an error, or stored without an answer."""
        yield self.serve()
        release = yield self.hold_the_writer()
        posted = self.provide(numbered(5))
        writer = self.engine.shared_record.threads.writer
        yield wait_until(lambda: writer._queue.qsize() == 1, 60, "the submission waits")
        stopping = self.engine.shared_record.stop()
        release.set()
        response = yield posted
        yield stopping
        self.assertEqual(response.status, RESPONSE_SUCCESS)
        self.assertEqual(entries_stored(self.engine), 1)


class SQLiteGroupedSubmissionTests(GroupedSubmissionTests, unittest.TestCase):
    timeout = 180
    backend = "sqlite"


class PostgreSQLGroupedSubmissionTests(GroupedSubmissionTests, unittest.TestCase):
    timeout = 180
    backend = "postgresql"
