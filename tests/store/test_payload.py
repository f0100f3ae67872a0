"""Tests for a delivery's own payload: deliveries.payload, written by IngestOp, read by
fetch_due (falling back to the message's raw bytes), and added by migration 0002."""
from __future__ import annotations

from dataclasses import replace

from alembic import command
from sqlalchemy import column, insert, inspect, select, table
from twisted.internet import defer
from twisted.trial import unittest

from engine import status as st
from engine.store import migrate, queries
from engine.store.records import Decision, NewDelivery
from engine.store.schema import deliveries, messages
from engine.store.store import make_engine
from tests.store.storecase import StoreCase, inbound, decided


class PayloadTests(StoreCase):
    """A delivery carrying its own payload is sent that payload; others the raw message."""

    @defer.inlineCallbacks
    def test_payload_written_and_fetched(self):
        """If a processing result gives one delivery a payload and another none, then
        fetch_due returns the payload for the first and the message's raw bytes for the
        second, and only the first row stores bytes."""
        record = inbound("P1")
        ingested = yield self.store.ingest(record)
        mapped = b"MSH|^~\\&|MAPPED\rPID|1||X\r"
        result = decided(ingested.message_id, st.TRANSFORMED, deliveries=(
            NewDelivery("dpi", 0, mapped), NewDelivery("archive")))
        recorded = yield self.store.record_decision(result)
        self.assertEqual(len(recorded.delivery_ids), 2)
        dpi = yield self.store.read(queries.fetch_due, "adt-in", "dpi", 0, 10)
        archive = yield self.store.read(queries.fetch_due, "adt-in", "archive", 0, 10)
        self.assertEqual([bytes(d.raw) for d in dpi], [mapped])
        self.assertEqual([bytes(d.raw) for d in archive], [record.raw])
        self.assertEqual((dpi[0].control_id, dpi[0].charset), ("P1", "UNICODE UTF-8"))
        detail = yield self.detail(ingested.message_id)
        stored = {d["destination"]: d["payload"] for d in detail["deliveries"]}
        self.assertEqual((bytes(stored["dpi"]), stored["archive"]), (mapped, None))

    @defer.inlineCallbacks
    def test_routed_message_has_no_payload(self):
        """If a message is routed (decided before its commit, no steps), then its deliveries
        store no payload and are sent the raw message."""
        base = inbound("R1")
        record = replace(base, decision=Decision(st.TRANSFORMED,
                                                 deliveries=(NewDelivery("dpi"),)))
        ingested = yield self.store.ingest(record)
        due = yield self.store.read(queries.fetch_due, "adt-in", "dpi", 0, 10)
        self.assertEqual([bytes(d.raw) for d in due], [record.raw])
        detail = yield self.detail(ingested.message_id)
        self.assertIsNone(detail["deliveries"][0]["payload"])


    @defer.inlineCallbacks
    def test_byte_budget_counts_the_payload_sent(self):
        """If deliveries carry their own payloads, longer than their messages, then the byte
        budget of a read counts those payloads: the first always, the next only if both
        fit, and the read says it left some out."""
        mapped = b"MSH|^~\\&|MAPPED\r" + b"NTE|1||" + b"x" * 4000 + b"\r"
        for control_id in ("B1", "B2", "B3"):
            ingested = yield self.store.ingest(inbound(control_id))
            yield self.store.record_decision(decided(
                ingested.message_id, st.TRANSFORMED,
                deliveries=(NewDelivery("dpi", 0, mapped),)))
        one = yield self.store.read(queries.fetch_due, "adt-in", "dpi", 0, 10, len(mapped) + 100)
        self.assertEqual(([bytes(d.raw) for d in one], one.cut), ([mapped], True))
        two = yield self.store.read(queries.fetch_due, "adt-in", "dpi", 0, 10, 2 * len(mapped))
        self.assertEqual((len(two), two.cut), (2, True))
        every = yield self.store.read(queries.fetch_due, "adt-in", "dpi", 0, 10, 3 * len(mapped))
        self.assertEqual((len(every), every.cut), (3, False))


class PayloadTestsSQLite(PayloadTests, unittest.TestCase):
    backend = "sqlite"


class PayloadTestsPostgreSQL(PayloadTests, unittest.TestCase):
    backend = "postgresql"


def test_migration_0002_adds_payload_keeping_rows(db_url):
    """If a database at revision 0001 holding a queued delivery is upgraded, then
    deliveries gain a nullable payload column, the delivery keeps it NULL and is still
    fetched with the message's raw bytes."""
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            command.upgrade(migrate._config(conn), "0001")
            migrate._seed_id_blocks(conn)
            assert "payload" not in {c["name"] for c in inspect(conn).get_columns("deliveries")}
            conn.execute(insert(messages).values(
                id=1, channel="c", received_at=1.0, node="n", status=st.TRANSFORMED,
                raw=b"MSH|^~\\&|A\r"))
            old_deliveries = table("deliveries", *(column(c.name) for c in deliveries.c
                                                   if c.name != "payload"))
            conn.execute(insert(old_deliveries).values(
                id=1, message_id=1, channel="c", destination="d", lane=0, status=st.QUEUED,
                attempts=0, created_at=1.0, updated_at=1.0, next_attempt_at=1.0))
        assert migrate.upgrade(engine) == ("0001", migrate.head_revision())
        columns = {c["name"]: c for c in inspect(engine).get_columns("deliveries")}
        assert columns["payload"]["nullable"]
        with engine.connect() as conn:
            assert conn.execute(select(deliveries.c.payload)).scalar_one() is None
            due = queries.fetch_due(conn, "c", "d", 0, 10)
        assert [bytes(d.raw) for d in due] == [b"MSH|^~\\&|A\r"]
    finally:
        engine.dispose()
