"""Tests for IngestOp committing a message with the outcome its pipeline reached at intake
(``InboundRecord.processed``): the same rows as a RECEIVED commit followed by ProcessedOp, in
one transaction."""
from __future__ import annotations

from dataclasses import replace

from twisted.internet import defer
from twisted.trial import unittest

from engine import status as st
from engine.store import queries
from engine.store.records import NewDelivery, ProcessingResult
from tests.store.storecase import StoreCase, inbound

MAPPED = b"MSH|^~\\&|HIS|HOSP|DPI|HOSP|20260101120000||ADT^A01^ADT_A01|X|P|2.5\rPID|1||PX\r"

OUTCOMES = [
    ProcessingResult(0, "adt-in", st.TRANSFORMED, deliveries=(
        NewDelivery("dpi", 3, MAPPED), NewDelivery("archive")), detail="not sent to lab: stop"),
    ProcessingResult(0, "adt-in", st.ERROR,
                     error="channels/adt.yaml:7: steps[0].translate: PID-8 = 'X': code not in "
                           "table sex"),
    ProcessingResult(0, "adt-in", st.FILTERED, detail="filtered by filters[0]: PID-8 == \"M\""),
]


def comparable(detail: dict) -> tuple:
    """What two ways of recording the same outcome must agree on (ids and times aside)."""
    ids = {d["id"]: index for index, d in enumerate(detail["deliveries"])}
    deliveries = [(d["channel"], d["destination"], d["lane"], d["status"], d["attempts"],
                   None if d["payload"] is None else bytes(d["payload"]), d["last_error"])
                  for d in detail["deliveries"]]
    journal = [(j["status"], ids.get(j["delivery_id"]), j["detail"]) for j in detail["journal"]]
    return (detail["status"], detail["error"], bytes(detail["raw"]), deliveries, journal)


class IntakeOutcomeTests(StoreCase):

    @defer.inlineCallbacks
    def test_same_rows_as_the_processor_path(self):
        """If an outcome (TRANSFORMED with a mapped payload, ERROR, FILTERED) is committed with
        its message, then the message, deliveries and journal read back as they do when the
        message is committed RECEIVED and the same outcome recorded afterwards."""
        for number, outcome in enumerate(OUTCOMES):
            base = inbound(f"A{number}")
            at_intake = yield self.store.ingest(replace(base, processed=outcome))
            self.assertEqual(at_intake.status, outcome.status)
            self.assertEqual(len(at_intake.delivery_ids), len(outcome.deliveries))
            later = yield self.store.ingest(replace(base, control_id=f"B{number}"))
            ids = yield self.store.record_processing(replace(outcome,
                                                             message_id=later.message_id))
            self.assertEqual(len(ids), len(outcome.deliveries))
            one = yield self.store.read(queries.message_detail, at_intake.message_id)
            two = yield self.store.read(queries.message_detail, later.message_id)
            self.assertEqual(comparable(one), comparable(two))
            self.assertEqual([d["id"] for d in one["deliveries"]], list(at_intake.delivery_ids))

    @defer.inlineCallbacks
    def test_mixed_batch_and_duplicate(self):
        """If one group commit holds a plain, a routed and a processed record, then each gets
        its own status and deliveries; a processed record that is a duplicate gets none."""
        store = self.queued_store()
        plain = inbound("M1")
        routed = replace(inbound("M2"), routed=(NewDelivery("dpi"),))
        processed = replace(inbound("M3"), processed=OUTCOMES[0])
        again = replace(inbound("M3"), processed=OUTCOMES[0])
        ds = [store.ingest(r) for r in (plain, routed, processed, again)]
        store.start()
        results = yield defer.gatherResults(ds)
        self.assertEqual(store.writer.batches, 1)
        self.assertEqual([r.status for r in results],
                         [st.RECEIVED, st.TRANSFORMED, st.TRANSFORMED, st.DUPLICATE])
        self.assertEqual([len(r.delivery_ids) for r in results], [0, 1, 2, 0])
        self.assertEqual(results[3].duplicate_of, results[2].message_id)
        detail = yield self.store.read(queries.message_detail, results[3].message_id)
        self.assertEqual((detail["deliveries"], detail["error"]), ([], None))


class IntakeOutcomeTestsSQLite(IntakeOutcomeTests, unittest.TestCase):
    backend = "sqlite"


class IntakeOutcomeTestsPostgreSQL(IntakeOutcomeTests, unittest.TestCase):
    backend = "postgresql"
