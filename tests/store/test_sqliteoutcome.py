"""Tests for engine.store.sqliteoutcome: a SQLite outcome batch written without a read."""
from __future__ import annotations

from sqlalchemy import select, update
from twisted.internet import defer
from twisted.trial import unittest

from engine import status as st
from engine.store import counters, sqliteoutcome
from engine.store.records import DeliveryUpdate
from engine.store.schema import deliveries, journal
from tests.store.storecase import StoreCase, calls_of, inbound, transformed


def sent(delivery_id: int, message_id: int, tried: int = 0, **fields) -> DeliveryUpdate:
    return DeliveryUpdate(delivery_id, message_id, st.SENT, tried + 1, 1.0, tried=tried,
                          **fields)


class OutcomeUpdateTests(StoreCase, unittest.TestCase):
    """DeliveryUpdateOp on SQLite with outcomes that say what their lane read."""

    backend = "sqlite"

    @defer.inlineCallbacks
    def queued(self, count: int, destination: str = "archive"):
        """``count`` messages each with one QUEUED delivery: [(message id, delivery id)]."""
        found = []
        for n in range(count):
            message = yield self.store.ingest(inbound(f"{destination}{n}"))
            decision = yield self.store.record_decision(
                transformed(message.message_id, destination))
            found.append((message.message_id, decision.delivery_ids[0]))
        return found

    def rows(self, ids):
        def read(conn):
            query = select(deliveries.c.id, deliveries.c.status, deliveries.c.attempts,
                           deliveries.c.last_error).where(deliveries.c.id.in_(ids))
            return {row.id: tuple(row[1:]) for row in conn.execute(query)}
        return self.store.read(read)

    def written_lines(self, delivery_id):
        """The journal lines written (not implied) of ``delivery_id``: (status, detail)."""
        def read(conn):
            query = select(journal.c.status, journal.c.detail).where(
                journal.c.delivery_id == delivery_id).order_by(journal.c.id)
            return [tuple(row) for row in conn.execute(query)]
        return self.store.read(read)

    def reads(self):
        """The calls of the read-then-write way's read, from now on."""
        return calls_of(self.store._delivery._counts, "delivery_moves")

    @defer.inlineCallbacks
    def assert_counts_exact(self):
        diff = yield self.store.read(counters.differences)
        self.assertEqual(diff, {})

    def test_supported_on_this_sqlite(self):
        """If the SQLite library has UPDATE FROM and RETURNING, then the op uses them (this
        test machine's library does: else the tests below would prove nothing)."""
        self.assertTrue(sqliteoutcome.supported("sqlite"))
        self.assertFalse(sqliteoutcome.supported("postgresql"))
        self.assertIsNotNone(self.store._delivery._returning)

    @defer.inlineCallbacks
    def test_a_batch_is_written_without_reading_its_rows(self):
        """If a lane records SENT, a retry and a parking, each with the attempts it read,
        then the rows move, the counts match a recount, and the rows are not read first."""
        (m1, d1), (m2, d2), (m3, d3) = yield self.queued(3)
        reads = self.reads()
        yield self.store.record_deliveries([
            sent(d1, m1, response=b"ok"),
            DeliveryUpdate(d2, m2, st.QUEUED, 1, 9.0, "down", tried=0),
            DeliveryUpdate(d3, m3, st.ERROR, 1, 1.0, "AR: refused", tried=0)])
        rows = yield self.rows([d1, d2, d3])
        self.assertEqual(rows, {d1: (st.SENT, 1, None), d2: (st.QUEUED, 1, "down"),
                                d3: (st.ERROR, 1, "AR: refused")})
        self.assertEqual(reads, [])
        yield self.assert_counts_exact()
        lines = yield defer.gatherResults([self.written_lines(d) for d in (d1, d2, d3)])
        # the SENT line is implied by the row it moved; the others are written
        self.assertEqual(lines, [[], [(st.QUEUED, "down")], [(st.ERROR, "AR: refused")]])

    @defer.inlineCallbacks
    def test_an_outcome_for_a_delivery_no_longer_queued_changes_nothing(self):
        """If a delivery was recorded SENT by another process meanwhile, then a late
        outcome for it changes nothing and is not counted; the others of its batch move."""
        (m1, d1), (m2, d2) = yield self.queued(2)
        yield self.store.record_deliveries([sent(d1, m1, response=b"first")])
        yield self.store.record_deliveries([
            DeliveryUpdate(d1, m1, st.ERROR, 1, 1.0, "late", tried=0), sent(d2, m2)])
        rows = yield self.rows([d1, d2])
        self.assertEqual(rows, {d1: (st.SENT, 1, None), d2: (st.SENT, 1, None)})
        yield self.assert_counts_exact()
        lines = yield self.written_lines(d1)
        self.assertEqual(lines, [(st.ERROR, "late")])  # journalled, the row unchanged
        totals = yield self.store.read(counters.totals)
        self.assertEqual(totals[("adt-in", "archive", st.SENT)], 2)
        self.assertNotIn(("adt-in", "archive", st.ERROR), totals)

    @defer.inlineCallbacks
    def test_a_delivery_queued_again_with_other_attempts_is_read_then_written(self):
        """If a delivery is QUEUED with other attempts than its lane read (parked by another
        process, then queued again by a replay), then the outcome applies as it did before
        (the row is QUEUED) and is counted from what the row held."""
        (m1, d1), (m2, d2) = yield self.queued(2)
        yield self.store.record_deliveries([
            DeliveryUpdate(d1, m1, st.QUEUED, 3, 1.0, "down", tried=0)])  # RETRYING now
        reads = self.reads()
        yield self.store.record_deliveries([sent(d1, m1, tried=0), sent(d2, m2)])
        rows = yield self.rows([d1, d2])
        self.assertEqual(rows, {d1: (st.SENT, 1, None), d2: (st.SENT, 1, None)})
        self.assertEqual(len(reads), 1)
        yield self.assert_counts_exact()

    @defer.inlineCallbacks
    def test_a_delivery_named_twice_in_a_batch_goes_the_read_then_write_way(self):
        """If a retry and the next attempt's success land in one write, then both apply in
        order and the counts match a recount."""
        ((m1, d1),) = yield self.queued(1)
        reads = self.reads()
        yield self.store.record_deliveries([
            DeliveryUpdate(d1, m1, st.QUEUED, 1, 9.0, "down", tried=0), sent(d1, m1, tried=1)])
        rows = yield self.rows([d1])
        self.assertEqual(rows, {d1: (st.SENT, 2, None)})
        self.assertEqual(len(reads), 1)
        yield self.assert_counts_exact()

    @defer.inlineCallbacks
    def test_outcomes_without_the_attempts_read_go_the_read_then_write_way(self):
        """If an outcome does not say what its lane read (``tried`` None), then the rows are
        read first, as before."""
        ((m1, d1),) = yield self.queued(1)
        reads = self.reads()
        yield self.store.record_deliveries([DeliveryUpdate(d1, m1, st.SENT, 1, 1.0)])
        rows = yield self.rows([d1])
        self.assertEqual(rows, {d1: (st.SENT, 1, None)})
        self.assertEqual(len(reads), 1)
        yield self.assert_counts_exact()

    @defer.inlineCallbacks
    def test_a_batch_larger_than_a_statement_is_written_in_chunks(self):
        """If a batch holds more outcomes than one statement takes, then every one is
        written and counted, one of them no longer QUEUED left alone."""
        self.patch(sqliteoutcome, "SIZES", (2,))
        queued = yield self.queued(5, "lab")
        gone = queued[3][1]

        def park(conn):
            conn.execute(update(deliveries).where(deliveries.c.id == gone)
                         .values(status=st.ERROR))
            counters.repair(conn)
        yield self.store.transact(park)
        yield self.store.record_deliveries([sent(d, m) for m, d in queued])
        rows = yield self.rows([d for _, d in queued])
        self.assertEqual([rows[d][0] for _, d in queued],
                         [st.SENT, st.SENT, st.SENT, st.ERROR, st.SENT])
        yield self.assert_counts_exact()


def test_a_batch_is_cut_into_statements_of_a_few_sizes():
    """If batches of any size are written, then their statements take a few sizes only
    (each prepared once by the writer's connection), the largest first."""
    assert sqliteoutcome.sizes(8) == [8]
    assert sqliteoutcome.sizes(100) == [64, 32, 4]
    assert sqliteoutcome.sizes(128) == [128]
    assert sqliteoutcome.sizes(300) == [128, 128, 32, 12]
    assert sqliteoutcome.sizes(0) == []
    assert {size for n in range(1, 1000) for size in sqliteoutcome.sizes(n)} \
        == set(range(1, 16)) | {16, 32, 64, 128}
