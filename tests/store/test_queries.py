"""Tests for engine.store.queries: what the lanes, the processor and the CLI read."""
from __future__ import annotations

import time

from twisted.internet import defer
from twisted.trial import unittest

from engine import status as st
from engine.store import queries
from engine.store.records import DeliveryUpdate, DueDelivery
from engine.store.schema import deliveries
from tests.store.storecase import StoreCase, inbound, transformed, decided


class QueryTests(StoreCase):
    """Reads on a store filled through its own write API."""

    @defer.inlineCallbacks
    def message(self, control_id, *destinations, **kwargs):
        """Ingest a message and, if destinations are given, record it TRANSFORMED to them;
        (message id, [delivery ids])."""
        result = yield self.store.ingest(inbound(control_id, **kwargs))
        ids = []
        if destinations:
            decided_ = yield self.store.record_decision(transformed(
                result.message_id, *destinations, channel=kwargs.get("channel", "adt-in")))
            ids = list(decided_.delivery_ids)
        return result.message_id, ids

    def deliver(self, message_id, delivery_id, status, attempts=1, error=None):
        return self.store.record_delivery(DeliveryUpdate(
            delivery_id, message_id, status, attempts, time.time() + 30, error))

    @defer.inlineCallbacks
    def test_fetch_due_per_lane_in_order(self):
        """If deliveries of several lanes, destinations and channels are queued, then
        fetch_due returns only the QUEUED ones of the asked lane, oldest first, with the
        message's payload and header fields."""
        m1, (a1, d1) = yield self.message("1", "archive", ("dpi", 1))
        m2, (a2, d2) = yield self.message("2", "archive", ("dpi", 0))
        m3, (a3,) = yield self.message("3", "archive")
        yield self.message("4", "archive", channel="lab-in")
        yield self.deliver(m2, a2, st.SENT)
        due = yield self.store.read(queries.fetch_due, "adt-in", "archive", 0, 100)
        self.assertEqual([d.delivery_id for d in due], [a1, a3])
        self.assertEqual([d.message_id for d in due], [m1, m3])
        first = due[0]
        self.assertIsInstance(first, DueDelivery)
        self.assertEqual((first.attempts, first.control_id, first.message_type, first.charset),
                         (0, "1", "ADT^A01^ADT_A01", "UNICODE UTF-8"))
        self.assertTrue(bytes(first.raw).startswith(b"MSH|^~\\&|HIS|HOSP"))
        lane1 = yield self.store.read(queries.fetch_due, "adt-in", "dpi", 1, 100)
        lane0 = yield self.store.read(queries.fetch_due, "adt-in", "dpi", 0, 100)
        self.assertEqual(([d.delivery_id for d in lane1], [d.delivery_id for d in lane0]),
                         ([d1], [d2]))

    @defer.inlineCallbacks
    def test_fetch_due_from_the_start_with_a_limit(self):
        """If a limit is given, then fetch_due returns at most that many rows from the start of
        the queue, whatever was read before (no cursor: a delivery committed late by another
        node may have a smaller id); retries still QUEUED are included with their attempts,
        what is SENT is not."""
        made = []
        for n in range(5):
            message_id, (delivery_id,) = yield self.message(str(n), "archive")
            made.append((message_id, delivery_id))
        yield self.deliver(*made[0], st.SENT)
        yield self.deliver(*made[2], st.QUEUED, attempts=2, error="timeout")
        ids = [d for _, d in made]
        due = yield self.store.read(queries.fetch_due, "adt-in", "archive", 0, 2)
        self.assertEqual([d.delivery_id for d in due], ids[1:3])
        self.assertEqual(due[1].attempts, 2)
        rest = yield self.store.read(queries.fetch_due, "adt-in", "archive", 0, 100)
        self.assertEqual([d.delivery_id for d in rest], ids[1:])

    @defer.inlineCallbacks
    def test_fetch_due_within_a_byte_budget(self):
        """If a byte budget is given, then fetch_due returns the first deliveries whose payloads
        fit in it, says that it left some out, and always returns the first one, even when it
        is larger than the budget."""
        ids = []
        for n in range(5):
            _, (delivery_id,) = yield self.message(str(n), "archive")
            ids.append(delivery_id)
        every = yield self.store.read(queries.fetch_due, "adt-in", "archive", 0, 100)
        size = len(bytes(every[0].raw))
        self.assertFalse(every.cut)
        two = yield self.store.read(queries.fetch_due, "adt-in", "archive", 0, 100,
                                    2 * size + size // 2)
        self.assertEqual([d.delivery_id for d in two], ids[:2])
        self.assertTrue(two.cut)
        one = yield self.store.read(queries.fetch_due, "adt-in", "archive", 0, 100, 1)
        self.assertEqual([d.delivery_id for d in one], ids[:1])
        self.assertTrue(one.cut)
        enough = yield self.store.read(queries.fetch_due, "adt-in", "archive", 0, 100,
                                       5 * size)
        self.assertEqual([d.delivery_id for d in enough], ids)
        self.assertFalse(enough.cut)
        none = yield self.store.read(queries.fetch_due, "adt-in", "nowhere", 0, 100, 10)
        self.assertEqual(none, [])

    @defer.inlineCallbacks
    def test_received_messages(self):
        """If some messages are processed and some are not, then received_messages lists the
        RECEIVED ones after the cursor, oldest first."""
        m1, _ = yield self.message("1")
        m2, _ = yield self.message("2", "archive")
        m3, _ = yield self.message("3")
        m4, _ = yield self.message("4")
        rows = yield self.store.read(queries.received_messages, 0, 100)
        self.assertEqual([r.id for r in rows], [m1, m3, m4])
        self.assertEqual(rows[0].channel, "adt-in")
        rows = yield self.store.read(queries.received_messages, m1, 1)
        self.assertEqual([r.id for r in rows], [m3])

    @defer.inlineCallbacks
    def test_status_counts(self):
        """If messages and deliveries are in every status, then status_counts reports each
        channel's and destination's numbers and the rates over the last minute."""
        now = time.time()
        m1, (a1, d1) = yield self.message("1", "archive", "dpi")
        m2, (a2, d2) = yield self.message("2", "archive", "dpi")
        m3, (a3, d3) = yield self.message("3", "archive", "dpi", received_at=now - 3600)
        yield self.message("4")  # pending
        yield self.message("1")  # duplicate of m1
        yield self.store.ingest(inbound(None, status=st.ERROR, raw=b"junk", error="no MSH"))
        filtered = yield self.store.ingest(inbound("5"))
        yield self.store.record_decision(decided(filtered.message_id, st.FILTERED))
        yield self.message("9", "archive", channel="lab-in")
        yield self.deliver(m1, a1, st.SENT)
        yield self.deliver(m2, a2, st.SENT)
        yield self.deliver(m1, d1, st.QUEUED, attempts=1, error="refused")
        yield self.deliver(m2, d2, st.ERROR, attempts=10, error="refused")
        yield self.store.flush_rates()  # the writer's rate events, held up to a second
        report = yield self.store.read(queries.status_counts, now + 1)
        adt = report["adt-in"]
        self.assertEqual(
            {k: adt[k] for k in ("received", "pending", "filtered", "duplicates", "errored",
                                 "queued", "sent")},
            {"received": 7, "pending": 1, "filtered": 1, "duplicates": 1,
             "errored": 1 + 1,  # one unreadable message, one parked delivery
             "queued": 1 + 2, "sent": 2})
        self.assertAlmostEqual(adt["rate"], round(6 / 60, 2))
        self.assertEqual(
            adt["destinations"]["archive"],
            {"received": 3, "queued": 1, "sent": 2, "errored": 0, "filtered": 0,
             "retrying": 0, "rate": round(2 / 60, 2)})
        self.assertEqual(
            adt["destinations"]["dpi"],
            {"received": 3, "queued": 2, "sent": 0, "errored": 1, "filtered": 0,
             "retrying": 1, "rate": 0.0})
        self.assertEqual(report["lab-in"]["destinations"]["archive"]["queued"], 1)
        self.assertEqual(sorted(report), ["adt-in", "lab-in"])

    @defer.inlineCallbacks
    def test_list_messages_filters(self):
        """If list_messages is given a channel, status, time range or control id, then it
        returns only the matching messages, newest first, without payloads."""
        m1, _ = yield self.message("1", received_at=1000.0)
        m2, _ = yield self.message("2", "archive", received_at=2000.0)
        m3, _ = yield self.message("3", received_at=3000.0, channel="lab-in")
        m4, _ = yield self.message("4", received_at=4000.0)

        @defer.inlineCallbacks
        def ids(**filters):
            rows = yield self.store.read(queries.list_messages, **filters)
            return [row["id"] for row in rows]

        self.assertEqual((yield ids()), [m4, m3, m2, m1])
        self.assertEqual((yield ids(channel="adt-in")), [m4, m2, m1])
        self.assertEqual((yield ids(status=st.TRANSFORMED)), [m2])
        self.assertEqual((yield ids(since=2000.0, until=4000.0)), [m3, m2])
        self.assertEqual((yield ids(control_id="3")), [m3])
        self.assertEqual((yield ids(channel="adt-in", status=st.RECEIVED, since=1500.0)), [m4])
        self.assertEqual((yield ids(limit=2)), [m4, m3])
        rows = yield self.store.read(queries.list_messages, control_id="1")
        self.assertNotIn("raw", rows[0])
        self.assertNotIn("dedupe_key", rows[0])
        self.assertEqual((rows[0]["channel"], rows[0]["status"], rows[0]["received_at"]),
                         ("adt-in", st.RECEIVED, 1000.0))

    @defer.inlineCallbacks
    def test_message_detail(self):
        """If a message has deliveries, then message_detail returns it with its payload, its
        deliveries in id order and its journal in order; an unknown id gives None."""
        m1, (a1, d1) = yield self.message("1", "archive", "dpi")
        yield self.deliver(m1, a1, st.SENT)
        detail = yield self.detail(m1)
        self.assertEqual(detail["id"], m1)
        self.assertIn(b"PID|1||P1", bytes(detail["raw"]))
        self.assertEqual([(d["id"], d["status"]) for d in detail["deliveries"]],
                         [(a1, st.SENT), (d1, st.QUEUED)])
        self.assertEqual([j["status"] for j in detail["journal"]],
                         [st.RECEIVED, st.TRANSFORMED, st.QUEUED, st.QUEUED, st.SENT])
        missing = yield self.detail(m1 + 1000)
        self.assertIsNone(missing)


class QueryTestsSQLite(QueryTests, unittest.TestCase):
    backend = "sqlite"


class QueryTestsPostgreSQL(QueryTests, unittest.TestCase):
    backend = "postgresql"


def test_a_lanes_read_is_one_round_trip(pg_engine):
    """If a lane reads its queue on PostgreSQL (Store.read of queries.fetch_due), then the
    client sends its one statement with one Sync after the pool's ping, and no BEGIN nor
    COMMIT (a simple Query each, a round trip each), and the connection goes back to the
    pool as it came: not in autocommit, no transaction open."""
    from types import SimpleNamespace

    import psycopg
    from sqlalchemy import select

    from engine.store.store import Store
    from tests.store.test_pgoutcome import queued
    from tests.store.test_pgpipeline import traced

    ids = queued(pg_engine, 3)
    with pg_engine.connect() as conn:  # the pool's one connection, traced from now on
        lane = conn.execute(select(deliveries.c.lane)).scalars().first()
        conn.commit()
        stop = traced(conn)
    due = Store._read(SimpleNamespace(engine=pg_engine), queries.fetch_due,
                      ("adt-in", "out", lane, 10), {})
    sent = stop(in_order=True)
    assert [d.delivery_id for d in due] == [i for i, _ in ids]
    # the pool's ping (pool_pre_ping) at checkout, then the statement; no BEGIN, no COMMIT
    assert sent == ["Query", "Parse", "Bind", "Describe", "Execute", "Sync"]
    with pg_engine.connect() as conn:
        driver = conn.connection.driver_connection
        assert not driver.autocommit
        assert driver.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
