"""Tests for engine.store.writer.GroupCommitWriter: group commits on a real database."""
from __future__ import annotations

import dataclasses
import functools
import sqlite3
import threading
import time

import psycopg
from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError
from twisted.internet import defer, reactor
from twisted.trial import unittest

from engine import status as st
from engine.store.records import IngestResult
from engine.store.schema import deliveries, journal, messages
from engine.store.writer import GroupCommitWriter, WriteOp
from tests.store.storecase import StoreCase, inbound, transformed


class WriterTests(StoreCase):
    """Group commits through the store's writer, or through a second store's whose batch is
    arranged by queueing before it starts."""

    def count(self, table) -> int:
        with self.store.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(table)).scalar_one()

    @defer.inlineCallbacks
    def test_submissions_are_batched(self):
        """If 1000 items are submitted in one go, then they are committed in far fewer
        batches than items, and each Deferred gets its own item's result, in order."""
        records = [inbound(str(n)) for n in range(1000)]
        results = yield self.ingest_all(records)
        writer = self.store.writer
        self.assertEqual(writer.items, 1000)
        self.assertLessEqual(writer.batches, 50)
        ids = [r.message_id for r in results]
        self.assertEqual(ids, sorted(ids))
        self.assertEqual(len(set(ids)), 1000)
        with self.store.engine.connect() as conn:
            stored = dict(conn.execute(select(messages.c.id, messages.c.control_id)).all())
        self.assertEqual([stored[i] for i in ids], [str(n) for n in range(1000)])

    @defer.inlineCallbacks
    def test_poisoned_item_fails_alone(self):
        """If one item of a batch violates a constraint (raw is NULL), then its Deferred
        fails with the database error and the others of the batch commit."""
        store = self.queued_store()
        good = [inbound(str(n)) for n in range(5)]
        poisoned = dataclasses.replace(inbound("bad"), raw=None)
        items = good[:2] + [poisoned] + good[2:]
        ds = [store.ingest(item) for item in items]
        with self.writer_log() as records:
            store.start()  # everything is queued: one batch
            outcomes = yield defer.DeferredList(ds, consumeErrors=True)
        self.assertEqual([ok for ok, _ in outcomes], [True, True, False, True, True, True])
        # SQLAlchemy's wrapper, or the driver's own error where ops use the cursor directly
        outcomes[2][1].trap(IntegrityError, sqlite3.IntegrityError, psycopg.IntegrityError)
        self.assertEqual(store.writer.batches, 1)
        self.assertIn("retrying them one by one", records[0].getMessage())
        with self.store.engine.connect() as conn:
            stored = sorted(conn.execute(select(messages.c.control_id)).scalars())
        self.assertEqual(stored, ["0", "1", "2", "3", "4"])

    @defer.inlineCallbacks
    def test_then_gets_each_outcome_without_a_deferred(self):
        """If items are submitted with ``then`` (the MLLP intake's way), then no Deferred is
        returned, and each ``then`` is called once, on the reactor thread, with True and its
        item's result, or False and the exception of an item that could not be written;
        one ``then`` that raises is logged and the items after it are answered all the
        same."""
        store = self.queued_store()
        items = [inbound("0"), dataclasses.replace(inbound("bad"), raw=None), inbound("2"),
                 inbound("3")]
        answers: list = []
        all_answered = defer.Deferred()

        def then(index, ok, result):
            answers.append((index, ok, result, threading.current_thread()))
            if index == 2:
                raise RuntimeError("a broken reply")
            if len(answers) == len(items):
                all_answered.callback(None)

        returned = [store.ingest(item, functools.partial(then, n))
                    for n, item in enumerate(items)]
        with self.writer_log() as records:
            store.start()  # everything is queued: one batch
            yield all_answered
        self.assertEqual(returned, [None] * 4)
        self.assertEqual([(index, ok) for index, ok, _, _ in answers],
                         [(0, True), (1, False), (2, True), (3, True)])
        self.assertIsInstance(answers[0][2], IngestResult)
        self.assertIsInstance(answers[1][2], Exception)
        self.assertEqual({thread for _, _, _, thread in answers}, {threading.main_thread()})
        self.assertIn("answering a committed item failed",
                      [r.getMessage() for r in records])

    @defer.inlineCallbacks
    def test_stop_commits_what_is_queued(self):
        """If stop() is called with items still queued, then they are committed and their
        Deferreds have fired before stop's Deferred fires."""
        store = self.queued_store(batch_max=7)
        store.start()
        fired = []
        for n in range(50):
            store.ingest(inbound(str(n))).addCallback(fired.append)
        yield store.stop()
        self.assertEqual(len(fired), 50)
        self.assertEqual(self.count(messages), 50)
        self.assertGreaterEqual(store.writer.batches, 8)  # 50 items, at most 7 a batch

    @defer.inlineCallbacks
    def test_finish_completes_results_after_the_commit(self):
        """If an op finishes its results (``finish``), then it does so once its batch has
        committed, and each Deferred gets the finished result."""
        writer = GroupCommitWriter(self.store.engine, reactor)
        ds = [writer.submit(Finishing(self.store.engine), n) for n in range(3)]
        writer.start()
        results = yield defer.gatherResults(ds)
        yield writer.stop()
        self.assertEqual(results, [(0, 3), (1, 3), (2, 3)])

    @defer.inlineCallbacks
    def test_a_failing_finish_does_not_write_the_batch_again(self):
        """If an op's ``finish`` fails after its batch committed, then the batch is not
        written again (one by one or whole): each Deferred gets what ``apply`` returned, and
        the rows are there once."""
        writer = GroupCommitWriter(self.store.engine, reactor)
        op = FailingFinish(self.store.engine)
        ds = [writer.submit(op, n) for n in range(3)]
        with self.writer_log() as records:
            writer.start()
            results = yield defer.gatherResults(ds)
            yield writer.stop()
        self.assertEqual(results, [0, 1, 2])
        self.assertEqual(op.applied, 1)
        self.assertEqual(self.count(journal), 3)
        self.assertIn("completing the results", records[0].getMessage())

    @defer.inlineCallbacks
    def test_after_commit_hook_gets_results(self):
        """If a batch commits, then the after-commit hook sees each (op, item, result or
        exception), as Store.on_commit documents."""
        seen = []
        self.store.on_commit(seen.extend)
        record = inbound("1")
        result = yield self.store.ingest(record)
        op, item, outcome = seen[0]
        self.assertTrue(self.store.is_ingest(op))
        self.assertIs(item, record)
        self.assertEqual(outcome, result)
        self.assertIsInstance(outcome, IngestResult)

    @defer.inlineCallbacks
    def test_ingest_and_first_processing_in_one_batch(self):
        """If a batch holds a new message and a processing result that needs a fresh block of
        delivery ids, then it commits at once as one batch (on SQLite the block reservation
        must not wait for the batch's own write lock)."""
        first = yield self.store.ingest(inbound("1"))
        store = self.queued_store()  # its id allocators start without a block
        ds = [store.ingest(inbound("2")),
              store.record_decision(transformed(first.message_id, "archive"))]
        began = time.monotonic()
        with self.writer_log() as records:
            store.start()
            second, decided = yield defer.gatherResults(ds)
        self.assertLess(time.monotonic() - began, 10)
        self.assertEqual([r.getMessage() for r in records], [])  # no retry one by one
        self.assertEqual(second.status, st.RECEIVED)
        self.assertEqual(len(decided.delivery_ids), 1)
        self.assertEqual(self.count(deliveries), 1)


    @defer.inlineCallbacks
    def test_a_refused_batch_goes_again_on_the_same_connection(self):
        """If an op's batch fails and the op asks for it again (``again``, as the intake's
        lean batch holding a copy of a stored message does on PostgreSQL), then the whole
        batch is written once more on the writer's connection: its rows are there once,
        each Deferred gets its result, nothing is retried one by one nor logged."""
        writer = GroupCommitWriter(self.store.engine, reactor)
        checkouts = []
        event.listen(self.store.engine, "checkout", lambda *_: checkouts.append(1))
        op = RefusedOnce(self.store.engine)
        ds = [writer.submit(op, n) for n in range(3)]
        with self.writer_log() as records:
            writer.start()
            results = yield defer.gatherResults(ds)
            yield writer.stop()
        self.assertEqual((records, len(checkouts), writer.batches), ([], 1, 1))
        self.assertEqual((results, op.applied, self.count(journal)), ([0, 1, 2], 2, 3))

    @defer.inlineCallbacks
    def test_ops_that_are_not_durable_commit_apart_without_waiting_for_the_disk(self):
        """If a batch holds ops that need not be durable (delivery outcomes) and others,
        then on PostgreSQL the others commit first, answered first, as the server has
        ``synchronous_commit``, and the rest in a group commit of their own that does not
        wait for the disk; on SQLite (no such commit) the batch is one group commit."""
        store = self.queued_store()
        seen, answered = [], []
        lazy, durable = Noted(False, seen), Noted(True, seen)
        ds = [store.writer.submit(lazy, 1), store.writer.submit(durable, 2),
              store.writer.submit(lazy, 3)]
        for d, n in zip(ds, (1, 2, 3)):
            d.addCallback(lambda result, n=n: answered.append(n) or result)
        store.start()
        results = yield defer.gatherResults(ds)
        self.assertEqual(results, [1, 2, 3])
        if self.backend == "postgresql":
            self.assertEqual(seen, [(True, [2], "on"), (False, [1, 3], "off")])
            self.assertEqual((store.writer.batches, answered), (2, [2, 1, 3]))
        else:
            self.assertEqual(sorted(seen), [(False, [1, 3], None), (True, [2], None)])
            self.assertEqual(store.writer.batches, 1)


class Noted(WriteOp):
    """Notes each batch it applies: whether it is durable, its items, and whether its
    transaction waits for the disk (PostgreSQL's ``synchronous_commit``, None on SQLite)."""

    def __init__(self, durable, seen):
        self.durable = durable
        self.seen = seen

    def apply(self, conn, items):
        setting = (conn.exec_driver_sql("SHOW synchronous_commit").scalar()
                   if conn.dialect.name == "postgresql" else None)
        self.seen.append((self.durable, list(items), setting))
        return list(items)


class Finishing(WriteOp):
    """Writes a journal line per item; finishes each result with the lines another
    connection sees then (committed ones only)."""

    def __init__(self, engine):
        self.engine = engine

    def apply(self, conn, items):
        conn.execute(journal.insert(), [{"message_id": n, "status": st.RECEIVED, "at": 1.0}
                                        for n in items])
        return list(items)

    def finish(self, conn, results):
        with self.engine.connect() as other:
            seen = other.execute(select(func.count()).select_from(journal)).scalar_one()
        return [(n, seen) for n in results]


class WriterTestsSQLite(WriterTests, unittest.TestCase):
    backend = "sqlite"


class WriterTestsPostgreSQL(WriterTests, unittest.TestCase):
    backend = "postgresql"


class Refused(Exception):
    """What :class:`RefusedOnce` raises the first time."""


class RefusedOnce(Finishing):
    """Writes as :class:`Finishing` does, counting its applies; the first time, its batch
    is refused once written, and it asks for it again."""

    applied = 0

    def apply(self, conn, items):
        self.applied += 1
        results = super().apply(conn, items)
        if self.applied == 1:
            raise Refused()
        return results

    def again(self, error):
        return isinstance(error, Refused)

    def finish(self, conn, results):
        return results


class FailingFinish(Finishing):
    """Writes as :class:`Finishing` does, counting its applies; its ``finish`` fails."""

    applied = 0

    def apply(self, conn, items):
        self.applied += 1
        return super().apply(conn, items)

    def finish(self, conn, results):
        raise RuntimeError("the commit's answer could not be read")


def test_only_the_delivery_outcomes_commit_without_waiting_for_the_disk():
    """An accepted message's write is durable before its ACK; only a delivery's outcome,
    whose loss means a resend, may commit lazily (docs/operations.md), and the rate events,
    statistics that may lose their last second (engine.store.pendingrates)."""
    from engine.store import nodes, ops, pendingrates

    ops_ = (ops.IngestOp, ops.DeliveryUpdateOp, pendingrates.FlushRatesOp, nodes.HeartbeatOp,
            nodes.LeaveOp)
    assert [op.durable for op in ops_] == [True, False, False, True, True]
