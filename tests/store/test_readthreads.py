"""Tests for engine.store.readthreads: queries run in the store's read threads."""
from __future__ import annotations

from sqlalchemy import event, text
from twisted.internet import defer, reactor
from twisted.trial import unittest

from engine.store import migrate
from engine.store.readthreads import ReadThreads
from engine.store.store import make_engine
from tests.dbs import open_database


def one(conn, value):
    return conn.execute(text("SELECT :v"), {"v": value}).scalar_one()


def broken(conn):
    conn.execute(text("SELECT * FROM no_such_table"))


class ReadThreadsTests(unittest.TestCase):
    """ReadThreads on a SQLite file: answers, failures, kept connections."""

    def setUp(self):
        self.engine = make_engine(open_database(self, "sqlite"))
        migrate.ensure_current(self.engine, create_if_empty=True)
        self.addCleanup(self.engine.dispose)
        self.checkouts = []
        event.listen(self.engine, "checkout", lambda *args: self.checkouts.append(1))

    def threads(self, keep=True, count=1):
        reads = ReadThreads(self.engine, reactor, count, keep=keep)
        reads.start()
        self.addCleanup(reads.stop)
        return reads

    @defer.inlineCallbacks
    def test_a_thread_keeps_its_connection_from_read_to_read(self):
        """If one thread runs three reads, then each gets its answer and the connection is
        taken out of the pool once; without ``keep``, once per read."""
        reads = self.threads()
        answers = yield defer.gatherResults([reads.read(one, (n,), {}) for n in range(3)])
        self.assertEqual((answers, len(self.checkouts)), ([0, 1, 2], 1))
        del self.checkouts[:]
        pooled = self.threads(keep=False)
        for n in range(3):
            yield pooled.read(one, (n,), {})
        self.assertEqual(len(self.checkouts), 3)

    @defer.inlineCallbacks
    def test_a_failed_read_fails_its_deferred_and_the_next_opens_another_connection(self):
        """If a query raises, then its Deferred fails with the error, the thread's
        connection is closed, and the next read runs on a new one."""
        reads = self.threads()
        yield reads.read(one, (1,), {})
        yield self.assertFailure(reads.read(broken, (), {}), Exception)
        answer = yield reads.read(one, (2,), {})
        self.assertEqual((answer, len(self.checkouts)), (2, 2))

    @defer.inlineCallbacks
    def test_a_kept_connection_holds_no_snapshot_between_reads(self):
        """If a thread has read (on its kept connection), then a checkpoint may reset the
        whole WAL: no read transaction is left open."""
        reads = self.threads()
        with self.engine.begin() as conn:  # something in the WAL
            conn.execute(text("CREATE TABLE t (x)"))
        yield reads.read(lambda conn: conn.execute(text("SELECT * FROM t")).fetchall(), (),
                         {})
        with self.engine.connect() as conn:
            busy, _, _ = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
        self.assertEqual(busy, 0)

    @defer.inlineCallbacks
    def test_stop_answers_what_was_queued_then_refuses(self):
        """If the threads stop, then the reads queued before are answered and a read asked
        after fails at once."""
        reads = ReadThreads(self.engine, reactor, 2, keep=True)
        queued = [reads.read(one, (n,), {}) for n in range(4)]  # before start: they wait
        reads.start()
        reads.stop()
        answers = yield defer.gatherResults(queued)
        self.assertEqual(answers, [0, 1, 2, 3])
        yield self.assertFailure(reads.read(one, (5,), {}), RuntimeError)
