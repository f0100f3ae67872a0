"""Tests for engine.store.pendingrates: a writer's rate events, held in memory and written into
``rate_buckets`` at most once a second, when it goes idle and when it stops; each once."""
from __future__ import annotations

import time

from sqlalchemy import func, select
from sqlalchemy.dialects import sqlite
from twisted.internet import defer, reactor
from twisted.trial import unittest

from engine import status as st
from engine.store import counters, migrate, ops
from engine.store.pendingrates import RATE_FLUSH_SECONDS, FlushRatesOp, PendingRates
from engine.store.rawsql import RawStatements
from engine.store.records import DeliveryUpdate
from engine.store.nodes import LeaveOp
from engine.store.schema import rate_buckets
from engine.store.store import Store, make_engine
from engine.store.writer import GroupCommitWriter, WriteOp
from tests.dbs import open_database
from tests.store.storecase import inbound, transformed


class Clock:
    """A clock the test moves (seconds)."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


A, B = ("adt", "", 7), ("adt", "out", 7)


def group_commit(rates: PendingRates, events: dict, *, flush: bool | None = None,
                 fails: bool = False) -> dict:
    """One group commit as the writer makes it: begin, stage ``events``, take the pending
    ones if due (or if ``flush`` says so), then commit (or fail); what it wrote."""
    rates.begin()
    rates.stage(events)
    written = rates.take() if (rates.due() if flush is None else flush) else {}
    if not fails:
        rates.committed()
    return dict(written)


# -- pure logic ---------------------------------------------------------------------------

def test_events_wait_for_the_interval_then_go_in_once():
    """If a writer commits batch after batch, then the first writes its events at once, the
    next ones within RATE_FLUSH_SECONDS keep theirs pending, and the first batch after the
    interval writes all of them and its own, once; the pending ones are then none."""
    clock = Clock()
    rates = PendingRates(clock)
    assert group_commit(rates, {A: 2}) == {A: 2}
    for _ in range(5):
        clock.now += RATE_FLUSH_SECONDS / 8
        assert group_commit(rates, {A: 1, B: 1}) == {}
    assert dict(rates.pending) == {A: 5, B: 5}
    clock.now += RATE_FLUSH_SECONDS / 2
    assert group_commit(rates, {A: 3}) == {A: 8, B: 5}
    assert dict(rates.pending) == {}
    clock.now += RATE_FLUSH_SECONDS / 2  # the interval counts from that write
    assert group_commit(rates, {B: 1}) == {}
    assert dict(rates.pending) == {B: 1}


def test_a_failed_transaction_keeps_the_pending_events_and_drops_its_own():
    """If a group commit that took the pending events fails, then they stay pending and its
    own are dropped (its items are written again, and stage again): the retry writes each
    event once."""
    clock = Clock()
    rates = PendingRates(clock)
    group_commit(rates, {A: 1})
    group_commit(rates, {A: 4})
    clock.now += RATE_FLUSH_SECONDS
    assert group_commit(rates, {A: 2, B: 1}, fails=True) == {A: 6, B: 1}
    assert dict(rates.pending) == {A: 4}
    assert group_commit(rates, {A: 2, B: 1}) == {A: 6, B: 1}  # the batch again
    assert dict(rates.pending) == {}


def test_events_staged_after_the_take_stay_pending():
    """If the ops of one group commit stage events after one of them took the pending ones
    (the intake, then delivery outcomes), then those stay pending; the second commit
    notice (each op's finish) changes nothing; a flush takes them whatever the time."""
    clock = Clock()
    rates = PendingRates(clock)
    rates.begin()
    rates.stage({A: 1})
    assert dict(rates.take()) == {A: 1}
    rates.stage({B: 2})
    rates.committed()
    rates.committed()
    assert dict(rates.pending) == {B: 2}
    assert group_commit(rates, {}, flush=True) == {B: 2}
    assert dict(rates.pending) == {}


def test_events_read_after_the_commit_are_pending():
    """If events are added once their transaction has committed (PostgreSQL's outcomes),
    then they are pending, for the next write."""
    clock = Clock()
    rates = PendingRates(clock)
    group_commit(rates, {A: 1})
    rates.add({B: 3})
    assert dict(rates.pending) == {B: 3}
    clock.now += RATE_FLUSH_SECONDS
    assert group_commit(rates, {B: 1}) == {B: 4}


def test_counters_give_rate_rows_and_the_prune_only_with_a_write_of_rates():
    """If a tally's events are not due, then Counters.rows gives the count rows alone;
    once due, the rate rows of everything pending and the prune with them."""
    clock = Clock()
    counts = counters.Counters(RawStatements(sqlite.dialect()), "n", clock)
    now = time.time()
    bucket = int(now // counters.BUCKET_SECONDS)
    first, second = counters.Tally(), counters.Tally()
    for tally in (first, second):
        tally.ingested("adt", st.TRANSFORMED, (), now)
    counts.rates.begin()
    counted, rated, prune = counts.rows(first)
    assert rated == [("n", "adt", "", bucket, 1)] and len(prune) == 1
    assert counted == [("n", "adt", "", st.TRANSFORMED, 1)]
    counts.rates.committed()
    counts.rates.begin()
    counted, rated, prune = counts.rows(second)
    assert (rated, prune) == ([], []) and counted == [("n", "adt", "", st.TRANSFORMED, 1)]
    counts.rates.committed()
    clock.now += RATE_FLUSH_SECONDS
    counts.rates.begin()
    assert counts.rows(counters.Tally())[1] == [("n", "adt", "", bucket, 1)]


# -- the writes, on a real SQLite store (no writer thread) ----------------------------------

def rated(engine) -> dict:
    """{(channel, destination): count} summed over the buckets."""
    with engine.connect() as conn:
        return {(c, d): n for c, d, n in conn.execute(
            select(rate_buckets.c.channel, rate_buckets.c.destination,
                   func.sum(rate_buckets.c.count))
            .group_by(rate_buckets.c.channel, rate_buckets.c.destination))}


def test_intake_outcomes_and_flush_write_each_event_once(tmp_path):
    """If the intake and delivery outcomes commit batches as the writer does (one Counters),
    one of them failing and going again, then rate_buckets lags while the clock stands
    still, holds every arrival and send once after the first batch past the interval, and
    once again after a flush (the writer's at idle or stop)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'rates.db'}")
    migrate.ensure_current(engine)
    clock = Clock()
    sql = RawStatements(engine.dialect)
    counts = counters.Counters(sql, "n", clock)
    intake = ops.IngestOp(ops.IdAllocator(engine, "messages"), "n", sql,
                          ops.IdAllocator(engine, "deliveries"), counts)
    outcomes, flush = ops.DeliveryUpdateOp(sql, "n", counts), FlushRatesOp(counts)
    conn = engine.connect()

    def commit(op, items, fails=False):
        op.prepare(items)
        try:
            with conn.begin():  # transaction boundary: one group commit, as the writer's
                results = op.apply(conn, items)
                if fails:
                    raise RuntimeError("the commit failed")
        except RuntimeError:
            return None
        return op.finish(conn, results)

    def records(n):
        return [inbound(f"{n}-{i}", channel="adt") for i in range(3)]

    try:
        made = commit(intake, records(0))  # the first batch writes at once
        assert rated(engine) == {("adt", ""): 3}
        for n in range(1, 5):
            made += commit(intake, records(n))
        decided = commit(intake, [transformed(m.message_id, "out", channel="adt")
                                  for m in made[:4]])
        commit(outcomes, [(DeliveryUpdate(d.delivery_ids[0], d.message_id, st.SENT, 1, 0.0),)
                          for d in decided[:3]])
        assert rated(engine) == {("adt", ""): 3}  # the clock stood still: all pending
        clock.now += RATE_FLUSH_SECONDS
        assert commit(intake, records(5), fails=True) is None
        assert rated(engine) == {("adt", ""): 3}
        commit(intake, records(5))
        assert rated(engine) == {("adt", ""): 18, ("adt", "out"): 3}
        commit(outcomes, [(DeliveryUpdate(decided[3].delivery_ids[0], decided[3].message_id,
                                          st.SENT, 1, 0.0),)])
        assert rated(engine) == {("adt", ""): 18, ("adt", "out"): 3}
        assert commit(flush, [None]) == [False]
        assert rated(engine) == {("adt", ""): 18, ("adt", "out"): 4}
        assert commit(flush, [None]) == [False]  # nothing left: nothing written again
        assert rated(engine) == {("adt", ""): 18, ("adt", "out"): 4}
    finally:
        conn.close()
        engine.dispose()


# -- the store: across a flush boundary and at stop, on both backends ----------------------

class PendingRatesStoreMixin:
    """A started Store whose writer times its rate writes by the test's clock."""

    backend = "sqlite"

    def setUp(self) -> None:
        self.url = open_database(self, self.backend)
        self.clock = Clock()
        self.store = Store(self.url, reactor, node="node-1", clock=self.clock)
        self.store.start()
        self.addCleanup(self.store.stop)

    def rated(self) -> dict:
        engine = make_engine(self.url)
        try:
            return rated(engine)
        finally:
            engine.dispose()

    @defer.inlineCallbacks
    def test_events_of_many_batches_are_in_rate_buckets_once(self):
        """If many group commits of arrivals and sends happen, the clock passing the flush
        interval in their midst, and the store then stops, then rate_buckets holds every
        one of them once: all of them after the first commit past the interval, and the
        rest after the stop (the writer's last flush)."""
        made = []
        for n in range(12):  # one group commit each (each waits for the one before)
            made.append((yield self.store.ingest(inbound(str(n)))))
        self.clock.now += RATE_FLUSH_SECONDS
        decided = yield defer.gatherResults([
            self.store.record_decision(transformed(m.message_id, "out")) for m in made])
        self.assertEqual(self.rated(), {("adt-in", ""): 12})
        for d in decided[:5]:
            yield self.store.record_delivery(
                DeliveryUpdate(d.delivery_ids[0], d.message_id, st.SENT, 1, 0.0))
        last = defer.gatherResults([  # not waited for: the stop commits them
            self.store.record_delivery(
                DeliveryUpdate(d.delivery_ids[0], d.message_id, st.SENT, 1, 0.0))
            for d in decided[5:9]] + [self.store.ingest(inbound("last"))])
        yield self.store.stop()
        yield last
        self.assertEqual(self.rated(), {("adt-in", ""): 13, ("adt-in", "out"): 9})

    @defer.inlineCallbacks
    def test_the_idle_task_writes_the_pending_events(self):
        """If the writer goes idle with rate events pending, then its idle task (run in
        the writer thread, here while it waits) queues their write, without a stop; with
        none pending, it queues nothing."""
        yield self.store.ingest(inbound("1"))  # written at once: the first
        yield self.store.ingest(inbound("2"))  # pending: the clock stands still
        self.assertEqual(self.rated(), {("adt-in", ""): 1})
        self.store._idle()
        yield self.store.writer.submit(LeaveOp(), "nobody")  # committed after the write
        self.assertEqual(self.rated(), {("adt-in", ""): 2})
        batches = self.store.writer.batches
        self.store._idle()  # nothing pending: nothing queued
        yield self.store.writer.submit(LeaveOp(), "nobody")
        self.assertEqual(self.store.writer.batches - batches, 1)  # the LeaveOp's alone


class SQLitePendingRatesTests(PendingRatesStoreMixin, unittest.TestCase):
    backend = "sqlite"


class PostgreSQLPendingRatesTests(PendingRatesStoreMixin, unittest.TestCase):
    backend = "postgresql"


class IdleWriterTests(unittest.TestCase):
    """The writer's idle task, which the store's flush of rate events relies on."""

    @defer.inlineCallbacks
    def test_a_write_the_idle_task_queues_commits_then_the_task_runs_again(self):
        """If the idle task queues a write, then the writer commits it, and runs the task
        once more when idle again (which, queueing nothing, lets it wait)."""
        engine = make_engine(open_database(self, "sqlite"))
        self.addCleanup(engine.dispose)
        seen: list[int] = []
        again = defer.Deferred()

        class Nothing(WriteOp):
            def apply(self, conn, items):
                return [None] * len(items)

        def idle():  # writer thread
            seen.append(writer.batches)
            if len(seen) == 1:
                writer.submit(Nothing(), None, lambda ok, result: None)
            elif len(seen) == 2:
                reactor.callFromThread(again.callback, None)

        writer = GroupCommitWriter(engine, reactor, on_idle=idle, idle_after=0.01)
        writer.start()
        yield again
        yield writer.stop()
        self.assertEqual(seen, [0, 1])
