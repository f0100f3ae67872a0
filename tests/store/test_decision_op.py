"""Tests for the one write of a message's decision (IngestOp): a record committed with the
decision made before its commit (``InboundRecord.decision``) gives the same rows as a RECEIVED
commit followed by the decision (``DecidedMessage``), and both kinds share group commits with
delivery ids given in submission order."""
from __future__ import annotations

from dataclasses import replace

from twisted.internet import defer
from twisted.trial import unittest

from engine import status as st
from engine.store import queries
from engine.store.records import DecidedMessage, Decision, NewDelivery
from tests.store.storecase import StoreCase, inbound

MAPPED = b"MSH|^~\\&|HIS|HOSP|DPI|HOSP|20260101120000||ADT^A01^ADT_A01|X|P|2.5\rPID|1||PX\r"

OUTCOMES = [
    Decision(st.TRANSFORMED, deliveries=(
        NewDelivery("dpi", 3, MAPPED), NewDelivery("archive")), detail="not sent to lab: stop"),
    Decision(st.ERROR,
                     error="channels/adt.yaml:7: steps[0].translate: PID-8 = 'X': code not in "
                           "table sex"),
    Decision(st.FILTERED, detail="filtered by filters[0]: PID-8 == \"M\""),
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
    def test_same_rows_decided_before_or_after_the_commit(self):
        """If a decision (TRANSFORMED with a mapped payload, ERROR, FILTERED) is committed with
        its message, then the message, deliveries and journal read back as they do when the
        message is committed RECEIVED and the same decision recorded afterwards."""
        for number, outcome in enumerate(OUTCOMES):
            base = inbound(f"A{number}")
            at_intake = yield self.store.ingest(replace(base, decision=outcome))
            self.assertEqual(at_intake.status, outcome.status)
            self.assertEqual(len(at_intake.delivery_ids), len(outcome.deliveries))
            later = yield self.store.ingest(replace(base, control_id=f"B{number}"))
            result = yield self.store.record_decision(
                DecidedMessage(later.message_id, "adt-in", outcome))
            self.assertEqual((result.message_id, result.status),
                             (later.message_id, outcome.status))
            self.assertEqual(len(result.delivery_ids), len(outcome.deliveries))
            one = yield self.store.read(queries.message_detail, at_intake.message_id)
            two = yield self.store.read(queries.message_detail, later.message_id)
            self.assertEqual(comparable(one), comparable(two))
            self.assertEqual([d["id"] for d in one["deliveries"]], list(at_intake.delivery_ids))

    @defer.inlineCallbacks
    def test_mixed_batch_and_duplicate(self):
        """If one group commit holds a plain record, a routed one, a mapped one and its
        duplicate, then each gets its own status and deliveries; the duplicate gets none."""
        store = self.queued_store()
        plain = inbound("M1")
        routed = replace(inbound("M2"), decision=Decision(
            st.TRANSFORMED, deliveries=(NewDelivery("dpi"),)))
        mapped = replace(inbound("M3"), decision=OUTCOMES[0])
        again = replace(inbound("M3"), decision=OUTCOMES[0])
        ds = [store.ingest(r) for r in (plain, routed, mapped, again)]
        store.start()
        results = yield defer.gatherResults(ds)
        self.assertEqual(store.writer.batches, 1)
        self.assertEqual([r.status for r in results],
                         [st.RECEIVED, st.TRANSFORMED, st.TRANSFORMED, st.DUPLICATE])
        self.assertEqual([len(r.delivery_ids) for r in results], [0, 1, 2, 0])
        self.assertEqual(results[3].duplicate_of, results[2].message_id)
        detail = yield self.store.read(queries.message_detail, results[3].message_id)
        self.assertEqual((detail["deliveries"], detail["error"]), ([], None))

    @defer.inlineCallbacks
    def test_delivery_ids_follow_the_order_of_submission_whatever_the_kind(self):
        """If one group commit holds the decision of an earlier RECEIVED message (an A01 of a
        slow plan) and then a new record decided before its commit (the A08), then the A01's
        deliveries get the lower ids: lanes send by id, the A08 does not overtake it."""
        first = yield self.store.ingest(inbound("A01"))
        store = self.queued_store()
        route = Decision(st.TRANSFORMED, deliveries=(NewDelivery("dpi", 2),))
        ds = [store.record_decision(DecidedMessage(first.message_id, "adt-in", route)),
              store.ingest(replace(inbound("A08"), decision=route))]
        store.start()
        a01, a08 = yield defer.gatherResults(ds)
        self.assertEqual(store.writer.batches, 1)
        self.assertLess(a01.delivery_ids[0], a08.delivery_ids[0])

    @defer.inlineCallbacks
    def test_a_decision_is_recorded_once(self):
        """If a message is decided twice (the recovery scan and the decider), then the second
        decision is ignored (None) and its deliveries are queued once; a decision for a
        message that is not RECEIVED any more is ignored likewise."""
        message = yield self.store.ingest(inbound("T1"))
        route = Decision(st.TRANSFORMED, deliveries=(NewDelivery("dpi"),))
        first = yield self.store.record_decision(DecidedMessage(message.message_id, "adt-in",
                                                                route))
        again = yield self.store.record_decision(DecidedMessage(message.message_id, "adt-in",
                                                                route))
        self.assertEqual((first.status, len(first.delivery_ids), again), (st.TRANSFORMED, 1, None))
        detail = yield self.store.read(queries.message_detail, message.message_id)
        self.assertEqual(len(detail["deliveries"]), 1)


class IntakeOutcomeTestsSQLite(IntakeOutcomeTests, unittest.TestCase):
    backend = "sqlite"


class IntakeOutcomeTestsPostgreSQL(IntakeOutcomeTests, unittest.TestCase):
    backend = "postgresql"


class ConsentWithTheDecisionTests(StoreCase):

    @defer.inlineCallbacks
    def test_an_opposition_is_committed_with_its_decision_either_way_and_once(self):
        """If a decision records a patient's opposition, then it is in the store once the
        decision is committed, whether decided before the commit or after it, with the
        message as cause; a duplicate of the message records nothing again."""
        from engine.store import consent
        from engine.store.records import ConsentChange

        oppose = ConsentChange((("1.2.3", "P1"),), "shared-record", True, "ZFA-9 = IO")
        withdraw = ConsentChange((("1.2.3", "P1"),), "shared-record", False, "ZFA-9 = INO")
        first = yield self.store.ingest(replace(
            inbound("C1"), decision=Decision(st.TRANSFORMED, consent=(oppose,))))
        duplicate = yield self.store.ingest(replace(
            inbound("C1"), decision=Decision(st.TRANSFORMED, consent=(oppose,))))
        self.assertEqual(duplicate.status, st.DUPLICATE)
        later = yield self.store.ingest(inbound("C2"))
        yield self.store.record_decision(DecidedMessage(
            later.message_id, "adt-in", Decision(st.TRANSFORMED, consent=(withdraw,))))
        [kept] = yield self.store.read(consent.history, [("1.2.3", "P1")])
        self.assertEqual((kept.cause, kept.reason, kept.withdrawn_cause),
                         (f"message:{first.message_id}", "ZFA-9 = IO",
                          f"message:{later.message_id}"))


class ConsentWithTheDecisionTestsSQLite(ConsentWithTheDecisionTests, unittest.TestCase):
    backend = "sqlite"


class ConsentWithTheDecisionTestsPostgreSQL(ConsentWithTheDecisionTests, unittest.TestCase):
    backend = "postgresql"
