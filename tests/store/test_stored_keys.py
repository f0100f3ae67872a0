"""Tests for the duplicate check left to the unique index (engine.store.ops.IngestOp with
``keys_checked_by_index``, what the Store does on PostgreSQL): a batch holding a copy of a
stored message is written again with the look-up, and stores what the look-up first stores
on SQLite, ids included."""
from __future__ import annotations

import dataclasses

from sqlalchemy import select
from twisted.internet import defer
from twisted.trial import unittest

from engine import status as st
from engine.store import ops
from engine.store.records import Decision, NewDelivery
from engine.store.schema import deliveries, id_blocks, messages
from tests.store.storecase import StoreCase, inbound


def routed(control_id: str):
    """An inbound message decided before its commit: TRANSFORMED, one delivery."""
    return dataclasses.replace(inbound(control_id), decision=Decision(
        st.TRANSFORMED, deliveries=(NewDelivery("out"),)))


class StoredKeyTests(StoreCase):

    def rows(self, store) -> tuple[list, list]:
        with store.engine.connect() as conn:
            stored = conn.execute(select(messages.c.id, messages.c.control_id,
                                         messages.c.status, messages.c.duplicate_of)
                                  .order_by(messages.c.id)).all()
            queued = conn.execute(select(deliveries.c.id, deliveries.c.message_id)
                                  .order_by(deliveries.c.id)).all()
        return stored, queued

    @defer.inlineCallbacks
    def test_copy_of_a_stored_message_in_a_batch(self):
        """If a batch holds a copy of a message stored earlier, between new ones, then it is
        stored DUPLICATE naming the first, the others as decided, all in one group commit
        with no error logged, with message and delivery ids from the first of the block on,
        none skipped, and the next batch goes on right after them."""
        first = yield self.store.ingest(routed("X"))
        store = self.queued_store()  # ids from a block of its own, starting here:
        with store.engine.connect() as conn:
            starts = dict(conn.execute(select(id_blocks.c.name, id_blocks.c.next_value)).all())
        ds = [store.ingest(routed(c)) for c in ("A", "X", "B")]
        with self.writer_log() as problems:
            store.start()
            results = yield defer.gatherResults(ds)
        self.assertEqual((store.writer.batches, problems), (1, []))
        a, copy, b = results
        self.assertEqual((a.message_id, a.delivery_ids[0]),
                         (starts["messages"], starts["deliveries"]))
        later = yield store.ingest(routed("C"))
        self.assertEqual([r.message_id - a.message_id for r in (copy, b, later)], [1, 2, 3])
        self.assertEqual([r.status for r in results + [later]],
                         [st.TRANSFORMED, st.DUPLICATE, st.TRANSFORMED, st.TRANSFORMED])
        stored, queued = self.rows(store)
        self.assertEqual(stored[1:], [(a.message_id, "A", st.TRANSFORMED, None),
                                      (copy.message_id, "X", st.DUPLICATE, first.message_id),
                                      (b.message_id, "B", st.TRANSFORMED, None),
                                      (later.message_id, "C", st.TRANSFORMED, None)])
        base = a.delivery_ids[0]
        self.assertEqual(queued[1:], [(base, a.message_id), (base + 1, b.message_id),
                                      (base + 2, later.message_id)])

    @defer.inlineCallbacks
    def test_copy_and_poisoned_item_in_one_batch(self):
        """If a batch holds a copy of a stored message and an item the database refuses
        (raw is NULL), then the writer goes one by one as before: the refused item fails
        alone, the copy is stored DUPLICATE, the new message as decided."""
        first = yield self.store.ingest(routed("X"))
        store = self.queued_store()
        poisoned = dataclasses.replace(routed("P"), raw=None)
        ds = [store.ingest(item) for item in (routed("X"), poisoned, routed("N"))]
        with self.writer_log() as problems:
            store.start()
            outcomes = yield defer.DeferredList(ds, consumeErrors=True)
        self.assertEqual([ok for ok, _ in outcomes], [True, False, True])
        self.assertIn("retrying them one by one", problems[0].getMessage())
        copy, new = outcomes[0][1], outcomes[2][1]
        self.assertEqual((copy.status, copy.duplicate_of, new.status),
                         (st.DUPLICATE, first.message_id, st.TRANSFORMED))


class StoredKeyTestsSQLite(StoredKeyTests, unittest.TestCase):
    backend = "sqlite"


class StoredKeyTestsPostgreSQL(StoredKeyTests, unittest.TestCase):
    backend = "postgresql"

    def test_store_leaves_the_check_to_the_index(self):
        """If the store is PostgreSQL with pipelined transactions, then its ingest writes
        without the look-up first (and SQLite's looks up, see the class above)."""
        self.assertTrue(self.store._ingest._keys_checked_by_index)


def test_again_only_for_a_refused_messages_key(pg_engine):
    """If the error is PostgreSQL refusing a messages row for a unique key, then the op
    asks for the batch again; another error, or an op that looks keys up, does not."""
    import psycopg

    sql_op = ops.IngestOp(ops.IdAllocator(pg_engine, "messages"), "n", _sql(pg_engine),
                          ops.IdAllocator(pg_engine, "deliveries"), keys_checked_by_index=True)
    looking = ops.IngestOp(ops.IdAllocator(pg_engine, "messages"), "n", _sql(pg_engine))
    errors = {}
    with pg_engine.connect() as conn:
        cur = conn.connection.driver_connection.cursor()
        for name, sql in (("messages", "INSERT INTO messages (id, channel, received_at, node, "
                                       "status, raw) VALUES (1, 'c', 1, 'n', 'R', ''), "
                                       "(1, 'c', 1, 'n', 'R', '')"),
                          ("deliveries", "INSERT INTO id_blocks VALUES ('messages', 1)"),
                          ("null", "INSERT INTO messages (id) VALUES (2)")):
            try:
                cur.execute(sql)
            except psycopg.Error as exc:
                errors[name] = exc
            conn.connection.driver_connection.rollback()
    sql_op._marks = (sql_op._ids.mark(), None)
    assert [sql_op.again(errors[n]) for n in ("null", "deliveries")] == [False, False]
    assert (sql_op.again(errors["messages"]), looking.again(errors["messages"])) == (True, False)
    assert not sql_op.again(ZeroDivisionError())


def _sql(engine):
    from engine.store.rawsql import RawStatements

    return RawStatements(engine.dialect)
