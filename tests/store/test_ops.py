"""Tests for engine.store.ops through the Store: ingest, processing results, delivery updates."""
from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select
from twisted.internet import defer
from twisted.trial import unittest

from engine import status as st
from engine.store import ops
from engine.store.records import Decision, DeliveryUpdate, NewDelivery
from engine.store.schema import deliveries, messages
from tests.store.storecase import StoreCase, calls_of, decided, inbound, transformed


class IngestTests(StoreCase):
    """Store.ingest: inbound messages committed with their first journal line."""

    @defer.inlineCallbacks
    def test_ids_increase(self):
        """If messages are ingested one after the other, then their ids increase."""
        ids = []
        for n in range(5):
            result = yield self.store.ingest(inbound(str(n)))
            self.assertEqual(result.status, st.RECEIVED)
            ids.append(result.message_id)
        self.assertEqual(ids, sorted(set(ids)))

    @defer.inlineCallbacks
    def test_message_stored_as_received(self):
        """If a message is ingested, then its row holds the raw bytes and header fields and
        one RECEIVED journal line is written."""
        record = inbound("A1", raw=b"MSH|^~\\&|HIS|HOSP\r\xe9")
        result = yield self.store.ingest(record)
        detail = yield self.detail(result.message_id)
        self.assertEqual(bytes(detail["raw"]), record.raw)
        self.assertEqual((detail["channel"], detail["sender"], detail["control_id"],
                          detail["status"], detail["node"], detail["peer"]),
                         ("adt-in", "HIS|HOSP", "A1", st.RECEIVED, "node-1", "127.0.0.1:40000"))
        self.assertEqual([(j["status"], j["delivery_id"]) for j in detail["journal"]],
                         [(st.RECEIVED, None)])

    @defer.inlineCallbacks
    def test_duplicate_across_batches(self):
        """If a message repeats channel, sender and control id of an earlier one, then it is
        stored as DUPLICATE naming the first; another channel or sender is not a duplicate."""
        first = yield self.store.ingest(inbound("X"))
        again = yield self.store.ingest(inbound("X"))
        self.assertEqual((again.status, again.duplicate_of), (st.DUPLICATE, first.message_id))
        other_sender = yield self.store.ingest(inbound("X", sender="LAB|HOSP"))
        other_channel = yield self.store.ingest(inbound("X", channel="lab-in"))
        self.assertEqual([other_sender.status, other_channel.status], [st.RECEIVED] * 2)
        detail = yield self.detail(again.message_id)
        self.assertEqual((detail["status"], detail["duplicate_of"]),
                         (st.DUPLICATE, first.message_id))
        self.assertEqual([j["status"] for j in detail["journal"]], [st.DUPLICATE])

    @defer.inlineCallbacks
    def test_duplicate_within_one_batch(self):
        """If two copies of a message are in the same batch, then the second is DUPLICATE of
        the first."""
        store = self.queued_store()
        ds = [store.ingest(inbound("D")), store.ingest(inbound("D")), store.ingest(inbound("E"))]
        with self.writer_log() as problems:
            store.start()
            first, second, third = yield defer.gatherResults(ds)
        self.assertEqual(store.writer.batches, 1)
        self.assertEqual(problems, [])  # decided in the batch, not by a unique violation
        self.assertEqual(first.status, st.RECEIVED)
        self.assertEqual((second.status, second.duplicate_of), (st.DUPLICATE, first.message_id))
        self.assertEqual(third.status, st.RECEIVED)

    @defer.inlineCallbacks
    def test_dedupe_off(self):
        """If a record asks for no dedupe, then a repeated control id is RECEIVED again."""
        yield self.store.ingest(inbound("N", dedupe=False))
        again = yield self.store.ingest(inbound("N", dedupe=False))
        self.assertEqual(again.status, st.RECEIVED)

    @defer.inlineCallbacks
    def test_error_record(self):
        """If an unreadable message is ingested as ERROR, then its error text is stored and
        journalled, it has no dedupe key, and a second copy is not a duplicate."""
        bad = inbound("Z", status=st.ERROR, raw=b"garbage", error="the first segment is 'gar'")
        first = yield self.store.ingest(bad)
        second = yield self.store.ingest(bad)
        self.assertEqual([first.status, second.status], [st.ERROR, st.ERROR])
        self.assertIsNone(second.duplicate_of)
        with self.store.engine.connect() as conn:
            row = conn.execute(select(messages.c.error, messages.c.dedupe_key)
                               .where(messages.c.id == first.message_id)).one()
        self.assertEqual(tuple(row), ("the first segment is 'gar'", None))
        detail = yield self.detail(first.message_id)
        self.assertEqual([(j["status"], j["detail"]) for j in detail["journal"]],
                         [(st.ERROR, "the first segment is 'gar'")])
        # A later readable copy is not a duplicate of an unreadable one either.
        good = yield self.store.ingest(inbound("Z"))
        self.assertEqual(good.status, st.RECEIVED)


class ProcessingTests(StoreCase):
    """Store.record_decision: a RECEIVED message's decision and its queued deliveries."""

    @defer.inlineCallbacks
    def test_transformed_queues_deliveries(self):
        """If a TRANSFORMED result is recorded, then the message moves RECEIVED -> TRANSFORMED,
        one QUEUED delivery per destination is inserted on its lane, and each is journalled."""
        message = yield self.store.ingest(inbound("1"))
        result = yield self.store.record_decision(
            transformed(message.message_id, "archive", ("dpi", 3)))
        ids = result.delivery_ids
        self.assertEqual((result.message_id, result.status, len(ids)),
                         (message.message_id, st.TRANSFORMED, 2))
        detail = yield self.detail(message.message_id)
        self.assertEqual(detail["status"], st.TRANSFORMED)
        self.assertEqual(
            [(d["id"], d["destination"], d["lane"], d["status"], d["attempts"], d["channel"])
             for d in detail["deliveries"]],
            [(ids[0], "archive", 0, st.QUEUED, 0, "adt-in"), (ids[1], "dpi", 3, st.QUEUED, 0,
                                                              "adt-in")])
        self.assertEqual(
            [(j["status"], j["delivery_id"], j["detail"]) for j in detail["journal"]],
            [(st.RECEIVED, None, None), (st.TRANSFORMED, None, None),
             (st.QUEUED, ids[0], "archive"), (st.QUEUED, ids[1], "dpi")])

    @defer.inlineCallbacks
    def test_a_new_delivery_is_written_without_what_an_attempt_fills(self):
        """If a message is committed with its decision, then its delivery's row is inserted
        naming none of the columns an attempt fills (fewer values bound per delivery), and
        reads as a new delivery: no attempt, no error, no response, its three times equal."""
        record = replace(inbound("7"), decision=Decision(
            st.TRANSFORMED, deliveries=(NewDelivery("archive", 1),)))
        result = yield self.store.ingest(record)
        self.assertTrue(set(ops.UNTRIED).isdisjoint(ops.DELIVERY_COLUMNS))
        self.assertEqual(set(ops.UNTRIED) | set(ops.DELIVERY_COLUMNS),
                         {c.name for c in deliveries.c})
        [delivery] = (yield self.detail(result.message_id))["deliveries"]
        self.assertEqual(
            (delivery["id"], delivery["status"], delivery["lane"], delivery["attempts"],
             delivery["last_error"], delivery["response"], delivery["payload"]),
            (result.delivery_ids[0], st.QUEUED, 1, 0, None, None, None))
        self.assertEqual({delivery["created_at"], delivery["updated_at"],
                          delivery["next_attempt_at"]}, {record.received_at})

    @defer.inlineCallbacks
    def test_a_batch_takes_its_delivery_ids_at_once_in_its_order(self):
        """If one group commit records several decisions, then their deliveries' ids are
        taken from the allocator in one go and increase in the batch's order."""
        first, second, third = yield self.ingest_all([inbound(n) for n in "123"])
        store = self.queued_store()
        takes = calls_of(store._ingest._delivery_ids, "take")
        ds = [store.record_decision(transformed(first.message_id, "a", "b")),
              store.record_decision(transformed(second.message_id, "a")),
              store.record_decision(transformed(third.message_id, "a", "b"))]
        store.start()
        results = yield defer.gatherResults(ds)
        self.assertEqual(store.writer.batches, 1)
        self.assertEqual(len(takes), 1)
        ids = [i for result in results for i in result.delivery_ids]
        self.assertEqual((len(ids), ids), (5, sorted(set(ids))))

    @defer.inlineCallbacks
    def test_second_result_ignored(self):
        """If a second result arrives for a message already processed, then it is ignored:
        None, and no further deliveries."""
        message = yield self.store.ingest(inbound("1"))
        yield self.store.record_decision(transformed(message.message_id, "archive"))
        again = yield self.store.record_decision(transformed(message.message_id, "archive"))
        self.assertIsNone(again)
        detail = yield self.detail(message.message_id)
        self.assertEqual(len(detail["deliveries"]), 1)

    @defer.inlineCallbacks
    def test_second_result_in_same_batch_ignored(self):
        """If two results for one message land in the same batch, then only the first counts."""
        message = yield self.store.ingest(inbound("1"))
        store = self.queued_store()
        ds = [store.record_decision(transformed(message.message_id, "a")),
              store.record_decision(transformed(message.message_id, "a", "b"))]
        store.start()
        first, second = yield defer.gatherResults(ds)
        self.assertEqual(store.writer.batches, 1)
        self.assertEqual(len(first.delivery_ids), 1)
        self.assertIsNone(second)
        detail = yield self.detail(message.message_id)
        self.assertEqual(len(detail["deliveries"]), 1)

    @defer.inlineCallbacks
    def test_error_and_filtered_results(self):
        """If the result is ERROR or FILTERED, then the message takes that status, with the
        error text, and no delivery is queued."""
        failed = yield self.store.ingest(inbound("1"))
        dropped = yield self.store.ingest(inbound("2"))
        yield self.store.record_decision(decided(failed.message_id, st.ERROR, error="KeyError: 'PID'"))
        yield self.store.record_decision(decided(dropped.message_id, st.FILTERED, detail="not for us"))
        failed_detail = yield self.detail(failed.message_id)
        dropped_detail = yield self.detail(dropped.message_id)
        self.assertEqual((failed_detail["status"], failed_detail["error"]),
                         (st.ERROR, "KeyError: 'PID'"))
        self.assertEqual(failed_detail["journal"][-1]["detail"], "KeyError: 'PID'")
        self.assertEqual(dropped_detail["status"], st.FILTERED)
        self.assertEqual(dropped_detail["journal"][-1]["detail"], "not for us")
        self.assertEqual(failed_detail["deliveries"] + dropped_detail["deliveries"], [])

    @defer.inlineCallbacks
    def test_illegal_transition_refused(self):
        """If a result asks for a status RECEIVED may not move to, then it fails with
        IllegalTransition and the message stays RECEIVED without deliveries."""
        message = yield self.store.ingest(inbound("1"))
        for status in (st.DUPLICATE, st.RECEIVED, st.SENT):
            d = self.store.record_decision(decided(message.message_id, status, deliveries=transformed(0, "a").decision.deliveries))
            yield self.assertFailure(d, st.IllegalTransition)
        detail = yield self.detail(message.message_id)
        self.assertEqual((detail["status"], detail["deliveries"]), (st.RECEIVED, []))

    @defer.inlineCallbacks
    def test_duplicate_message_not_processed(self):
        """If a result is recorded for a DUPLICATE message, then it is ignored (None)."""
        yield self.store.ingest(inbound("1"))
        copy = yield self.store.ingest(inbound("1"))
        result = yield self.store.record_decision(transformed(copy.message_id, "a"))
        self.assertIsNone(result)


class DeliveryUpdateTests(StoreCase):
    """Store.record_delivery: attempts recorded as SENT, QUEUED again, or ERROR."""

    @defer.inlineCallbacks
    def queued(self, control_id="1"):
        message = yield self.store.ingest(inbound(control_id))
        decided_ = yield self.store.record_decision(transformed(message.message_id, "archive"))
        (delivery_id,) = decided_.delivery_ids
        return message.message_id, delivery_id

    @defer.inlineCallbacks
    def test_retry_then_sent(self):
        """If an attempt fails and the next succeeds, then the delivery keeps the retry's
        attempt count, error and time, then becomes SENT with the response, all journalled."""
        message_id, delivery_id = yield self.queued()
        yield self.store.record_delivery(DeliveryUpdate(
            delivery_id, message_id, st.QUEUED, 1, 12345.5, "connection refused"))
        detail = yield self.detail(message_id)
        (row,) = detail["deliveries"]
        self.assertEqual((row["status"], row["attempts"], row["next_attempt_at"],
                          row["last_error"]), (st.QUEUED, 1, 12345.5, "connection refused"))
        yield self.store.record_delivery(DeliveryUpdate(
            delivery_id, message_id, st.SENT, 2, 12350.0, None, b"MSH|ACK"))
        detail = yield self.detail(message_id)
        (row,) = detail["deliveries"]
        self.assertEqual((row["status"], row["attempts"], bytes(row["response"])),
                         (st.SENT, 2, b"MSH|ACK"))
        self.assertEqual(
            [(j["status"], j["delivery_id"], j["detail"]) for j in detail["journal"][-2:]],
            [(st.QUEUED, delivery_id, "connection refused"), (st.SENT, delivery_id, None)])

    @defer.inlineCallbacks
    def test_a_success_with_a_note_is_journalled_with_it(self):
        """If a delivery is SENT with a note (a registry's warnings), then its SENT line is
        written with the note while the row keeps no error; a plain SENT writes no line."""
        message_id, delivery_id = yield self.queued()
        yield self.store.record_delivery(DeliveryUpdate(
            delivery_id, message_id, st.SENT, 1, 1.0, None, b"<Success/>",
            "Success (warnings: XDSRegistryMetadataError: sourceId is no OID)"))
        detail = yield self.detail(message_id)
        (row,) = detail["deliveries"]
        self.assertEqual((row["status"], row["last_error"]), (st.SENT, None))
        written = [(j["status"], j["detail"]) for j in detail["journal"]
                   if j["delivery_id"] == delivery_id]
        self.assertEqual(written[-1], (st.SENT, "Success (warnings: XDSRegistryMetadataError: "
                                                "sourceId is no OID)"))

    @defer.inlineCallbacks
    def test_parked(self):
        """If a delivery is parked, then it is ERROR with its last error."""
        message_id, delivery_id = yield self.queued()
        yield self.store.record_delivery(DeliveryUpdate(
            delivery_id, message_id, st.ERROR, 3, 1.0, "AR: unknown patient"))
        detail = yield self.detail(message_id)
        (row,) = detail["deliveries"]
        self.assertEqual((row["status"], row["last_error"]), (st.ERROR, "AR: unknown patient"))

    @defer.inlineCallbacks
    def test_illegal_delivery_status_refused(self):
        """If an update names a status a delivery cannot take, then it fails with
        IllegalTransition and the delivery is unchanged."""
        message_id, delivery_id = yield self.queued()
        d = self.store.record_delivery(DeliveryUpdate(
            delivery_id, message_id, st.TRANSFORMED, 1, 1.0))
        yield self.assertFailure(d, st.IllegalTransition)
        detail = yield self.detail(message_id)
        self.assertEqual(detail["deliveries"][0]["status"], st.QUEUED)

    @defer.inlineCallbacks
    def test_a_batch_of_outcomes_commits_together_or_not_at_all(self):
        """If a lane records a batch's outcomes in one write, then all are committed and
        journalled; if one of them is illegal, then the write fails and none is."""
        first, first_delivery = yield self.queued()
        second, second_delivery = yield self.queued("2")
        yield self.store.record_deliveries([
            DeliveryUpdate(first_delivery, first, st.SENT, 1, 1.0, None, b"a"),
            DeliveryUpdate(second_delivery, second, st.QUEUED, 1, 9.0, "down")])
        rows = []
        for message_id in (first, second):
            detail = yield self.detail(message_id)
            rows.append(detail["deliveries"][0])
        self.assertEqual([(r["status"], r["attempts"]) for r in rows],
                         [(st.SENT, 1), (st.QUEUED, 1)])
        d = self.store.record_deliveries([
            DeliveryUpdate(second_delivery, second, st.SENT, 2, 1.0),
            DeliveryUpdate(second_delivery, second, st.TRANSFORMED, 2, 1.0)])
        yield self.assertFailure(d, st.IllegalTransition)
        detail = yield self.detail(second)
        self.assertEqual((detail["deliveries"][0]["status"], detail["deliveries"][0]["attempts"]),
                         (st.QUEUED, 1))


class IngestTestsSQLite(IngestTests, unittest.TestCase):
    backend = "sqlite"


class IngestTestsPostgreSQL(IngestTests, unittest.TestCase):
    backend = "postgresql"


class ProcessingTestsSQLite(ProcessingTests, unittest.TestCase):
    backend = "sqlite"


class ProcessingTestsPostgreSQL(ProcessingTests, unittest.TestCase):
    backend = "postgresql"


class DeliveryUpdateTestsSQLite(DeliveryUpdateTests, unittest.TestCase):
    backend = "sqlite"


class DeliveryUpdateTestsPostgreSQL(DeliveryUpdateTests, unittest.TestCase):
    backend = "postgresql"
