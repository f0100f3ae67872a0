"""Tests for engine.store.history: the journal as read, its implied lines, and the writes that
leave them out (engine.store.ops) or write them before a status change (engine.store.replay)."""
from __future__ import annotations

from sqlalchemy import create_engine, select
from twisted.internet import defer
from twisted.trial import unittest

from engine import status as st
from engine.store import history
from engine.store.records import Decision, DeliveryUpdate, NewDelivery
from engine.store.replay import replay_message
from engine.store.schema import journal
from tests.store.storecase import StoreCase, inbound, transformed

MESSAGE = {"id": 7, "status": st.TRANSFORMED, "received_at": 100.0, "error": None}
DELIVERIES = [{"id": 70, "created_at": 100.0, "destination": "archive"},
              {"id": 71, "created_at": 100.0, "destination": "dpi"}]


def written(*lines):
    """Journal rows (delivery_id, status, at, detail) of message 7, ids from 1."""
    return [{"id": n, "message_id": 7, "delivery_id": d, "status": s, "at": at, "detail": text}
            for n, (d, s, at, text) in enumerate(lines, 1)]


def shape(lines):
    return [(line["delivery_id"], line["status"], line["at"], line["detail"]) for line in lines]


class JournaledAtIngestTests(unittest.TestCase):
    def test_which_lines_are_written(self):
        """If a message is decided before its commit into TRANSFORMED or FILTERED, then its
        RECEIVED line is left out, and its decision line too unless it has a detail; any
        other first status writes both lines as before."""
        self.assertEqual(history.journaled_at_ingest(st.TRANSFORMED, None), (False, False))
        self.assertEqual(history.journaled_at_ingest(st.FILTERED, "not for us"), (False, True))
        self.assertEqual(history.journaled_at_ingest(st.ERROR, "boom"), (True, True))
        self.assertEqual(history.journaled_at_ingest(None, None), (True, False))


class JournaledOutcomeTests(unittest.TestCase):
    def test_which_outcome_lines_are_written(self):
        """If an outcome moves its delivery from QUEUED to SENT without detail, then its line
        is left out (the row implies it); a SENT that moves nothing (the delivery was no
        longer QUEUED), a retry and a parking are written."""
        self.assertFalse(history.journaled_outcome(st.SENT, None, True))
        self.assertTrue(history.journaled_outcome(st.SENT, None, False))
        self.assertTrue(history.journaled_outcome(st.SENT, "odd", True))
        self.assertTrue(history.journaled_outcome(st.QUEUED, "refused", True))
        self.assertTrue(history.journaled_outcome(st.ERROR, "AR", True))


SENT_ROW = {"id": 70, "created_at": 100.0, "destination": "archive", "status": st.SENT,
            "updated_at": 105.0}


class LinesTests(unittest.TestCase):
    def test_sent_row_implies_its_sent_line(self):
        """If a delivery's row says SENT and the journal holds no SENT line at that time,
        then a SENT line is implied at its updated_at, after its failed attempt's line."""
        lines = history.lines(MESSAGE, [SENT_ROW],
                              written((70, st.QUEUED, 103.0, "connection refused")))
        self.assertEqual(shape(lines), [
            (None, st.RECEIVED, 100.0, None), (None, st.TRANSFORMED, 100.0, None),
            (70, st.QUEUED, 100.0, "archive"), (70, st.QUEUED, 103.0, "connection refused"),
            (70, st.SENT, 105.0, None)])

    def test_written_sent_line_not_implied_again(self):
        """If the journal holds the SENT line (a store written before this rule), then none
        is implied; a SENT written later (sent again after a takeover) shows as well."""
        rows = written((70, st.SENT, 105.0, None))
        self.assertEqual(shape(history.lines(MESSAGE, [SENT_ROW], rows))[-1:],
                         [(70, st.SENT, 105.0, None)])
        self.assertEqual(len(history.lines(MESSAGE, [SENT_ROW], rows)), 4)
        late = written((70, st.SENT, 109.0, None))
        self.assertEqual(shape(history.lines(MESSAGE, [SENT_ROW], late))[-2:],
                         [(70, st.SENT, 105.0, None), (70, st.SENT, 109.0, None)])

    def test_implied_sent_after_written_lines_of_the_same_instant(self):
        """If a line is written at the instant the delivery was recorded SENT, then the
        implied SENT comes after it: SENT is a delivery's last word."""
        rows = written((70, st.QUEUED, 105.0, "connection refused"))
        self.assertEqual(shape(history.lines(MESSAGE, [SENT_ROW], rows))[-2:],
                         [(70, st.QUEUED, 105.0, "connection refused"),
                          (70, st.SENT, 105.0, None)])


    def test_nothing_written_implies_received_decision_and_queued(self):
        """If a message has no line of its own, then RECEIVED and its status at its
        received_at are implied, then a QUEUED line per delivery, before what follows."""
        lines = history.lines(MESSAGE, DELIVERIES, written((70, st.SENT, 105.0, None)))
        self.assertEqual(shape(lines), [
            (None, st.RECEIVED, 100.0, None), (None, st.TRANSFORMED, 100.0, None),
            (70, st.QUEUED, 100.0, "archive"), (71, st.QUEUED, 100.0, "dpi"),
            (70, st.SENT, 105.0, None)])
        self.assertEqual([line["id"] for line in lines], [None, None, None, None, 1])

    def test_decision_with_detail_written(self):
        """If the decision line is written (it has a detail), then only RECEIVED is implied
        before it, and the deliveries' QUEUED lines after it."""
        filtered = dict(MESSAGE, status=st.TRANSFORMED)
        lines = history.lines(filtered, DELIVERIES[:1],
                              written((None, st.TRANSFORMED, 100.0, "patient found")))
        self.assertEqual(shape(lines), [
            (None, st.RECEIVED, 100.0, None), (None, st.TRANSFORMED, 100.0, "patient found"),
            (70, st.QUEUED, 100.0, "archive")])

    def test_fully_written_journal_unchanged(self):
        """If the journal holds every line (a slow plan, or a store written before lines
        were implied), then it is read as it is, nothing added."""
        rows = written((None, st.RECEIVED, 100.0, None), (None, st.TRANSFORMED, 101.0, None),
                       (70, st.QUEUED, 101.0, "archive"), (70, st.SENT, 102.0, None))
        deliveries = [dict(DELIVERIES[0], created_at=101.0)]
        self.assertEqual(history.lines(MESSAGE, deliveries, rows), rows)

    def test_ingest_statuses_imply_nothing(self):
        """If a message's first line is RECEIVED, ERROR or DUPLICATE, then no RECEIVED is
        implied before it (an unreadable message was never RECEIVED)."""
        for status in (st.RECEIVED, st.ERROR, st.DUPLICATE):
            message = dict(MESSAGE, status=status)
            rows = written((None, status, 100.0, None))
            self.assertEqual(history.lines(message, [], rows), rows)

    def test_replayed_message_keeps_its_first_lines(self):
        """If a message decided without lines was replayed (its lines written first by the
        replay), then its delivery created by the new decision gets its QUEUED line implied,
        the old one keeps its own."""
        rows = written((None, st.RECEIVED, 100.0, None), (None, st.TRANSFORMED, 100.0, None),
                       (70, st.QUEUED, 100.0, "archive"), (None, st.RECEIVED, 200.0, "replay"),
                       (None, st.TRANSFORMED, 201.0, None))
        deliveries = [DELIVERIES[0], {"id": 72, "created_at": 201.0, "destination": "archive"}]
        self.assertEqual(shape(history.lines(MESSAGE, deliveries, rows))[-1],
                         (72, st.QUEUED, 201.0, "archive"))
        self.assertEqual(len(history.lines(MESSAGE, deliveries, rows)), 6)


class LeanWriteTests(StoreCase):
    """The writes leave out the implied lines; message_detail shows them."""

    def journal_rows(self, message_id):
        def read(conn):
            return [tuple(r) for r in conn.execute(
                select(journal.c.delivery_id, journal.c.status, journal.c.detail)
                .where(journal.c.message_id == message_id).order_by(journal.c.id))]
        return self.store.read(read)

    @defer.inlineCallbacks
    def test_decided_before_commit_writes_no_line(self):
        """If a message is decided before its commit into TRANSFORMED without a detail, then
        the journal table holds no line of it, and its detail shows RECEIVED, TRANSFORMED and
        the QUEUED delivery, all at its arrival."""
        record = inbound("L1", received_at=1000.0)
        record = type(record)(**{**record.__dict__, "decision": Decision(
            st.TRANSFORMED, deliveries=(NewDelivery("archive", 1),))})
        result = yield self.store.ingest(record)
        rows = yield self.journal_rows(result.message_id)
        self.assertEqual(rows, [])
        detail = yield self.detail(result.message_id)
        self.assertEqual(shape(detail["journal"]), [
            (None, st.RECEIVED, 1000.0, None), (None, st.TRANSFORMED, 1000.0, None),
            (result.delivery_ids[0], st.QUEUED, 1000.0, "archive")])

    @defer.inlineCallbacks
    def test_replay_writes_the_implied_lines_first(self):
        """If such a message is replayed with --reprocess, then its RECEIVED and TRANSFORMED
        lines are written before the replay's own, and its detail reads the same history
        followed by the replay."""
        record = inbound("L2", received_at=1000.0)
        record = type(record)(**{**record.__dict__, "decision": Decision(st.TRANSFORMED)})
        result = yield self.store.ingest(record)
        engine = create_engine(self.url)
        self.addCleanup(engine.dispose)
        said = replay_message(engine, result.message_id, reprocess=True)
        self.assertIn("set back to RECEIVED", said)
        rows = yield self.journal_rows(result.message_id)
        self.assertEqual(rows, [(None, st.RECEIVED, None), (None, st.TRANSFORMED, None),
                                (None, st.RECEIVED, "replay: reprocess requested")])
        detail = yield self.detail(result.message_id)
        self.assertEqual([line["status"] for line in detail["journal"]],
                         [st.RECEIVED, st.TRANSFORMED, st.RECEIVED])


    @defer.inlineCallbacks
    def test_sent_outcome_writes_no_line(self):
        """If a delivery is recorded SENT, then the journal table holds no SENT line of it and
        its detail shows SENT at the row's updated_at; a second SENT of the same delivery
        (a process that sent it after its lane was taken over) is written."""
        message = yield self.store.ingest(inbound("L3"))
        decided_ = yield self.store.record_decision(transformed(message.message_id, "archive"))
        (delivery_id,) = decided_.delivery_ids
        yield self.store.record_delivery(DeliveryUpdate(
            delivery_id, message.message_id, st.QUEUED, 1, 1.0, "connection refused"))
        yield self.store.record_delivery(DeliveryUpdate(
            delivery_id, message.message_id, st.SENT, 2, 2.0, None, b"/out/1.hl7"))
        rows = yield self.journal_rows(message.message_id)
        self.assertNotIn(st.SENT, [status for _, status, _ in rows])
        self.assertIn((delivery_id, st.QUEUED, "connection refused"), rows)
        detail = yield self.detail(message.message_id)
        (row,) = detail["deliveries"]
        self.assertEqual(shape(detail["journal"])[-1],
                         (delivery_id, st.SENT, row["updated_at"], None))
        yield self.store.record_delivery(DeliveryUpdate(
            delivery_id, message.message_id, st.SENT, 2, 3.0, None, b"/out/1.hl7"))
        rows = yield self.journal_rows(message.message_id)
        self.assertEqual([r for r in rows if r[1] == st.SENT], [(delivery_id, st.SENT, None)])
        detail = yield self.detail(message.message_id)
        self.assertEqual([line["status"] for line in detail["journal"]][-2:],
                         [st.SENT, st.SENT])


class LeanWriteTestsSQLite(LeanWriteTests, unittest.TestCase):
    backend = "sqlite"


class LeanWriteTestsPostgreSQL(LeanWriteTests, unittest.TestCase):
    backend = "postgresql"
