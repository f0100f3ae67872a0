"""Two writers of one node counting on the same rows (the intake's process and a delivery
process, ``--workers``) never deadlock: every writer locks count rows in one order
(engine.store.counters.Counters). Runs on PostgreSQL, where the rows are locked row by row;
SQLite has one write lock for the whole file."""
from __future__ import annotations

import logging
import time
from dataclasses import replace

from twisted.internet import defer, reactor
from twisted.trial import unittest

from engine import status as st
from engine.store import counters
from engine.store.records import Decision, DeliveryUpdate, NewDelivery
from engine.store.store import Store
from tests.store.storecase import StoreCase, inbound

# several count rows per transaction, in an order that a hash would not keep
DESTINATIONS = ("c", "a", "b")


class Failures(logging.Handler):
    """The writers' log records of failed group commits (a deadlock fails one)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append(f"{record.getMessage()} {record.exc_info and record.exc_info[1]}")


class CountLockOrderTests(StoreCase, unittest.TestCase):
    backend = "postgresql"

    @defer.inlineCallbacks
    def test_intake_and_a_delivery_process_of_one_node_never_deadlock(self):
        """If one store (the intake's process) commits messages queued for three
        destinations while another store of the same node (a delivery process) records
        their outcomes (sent, retried, sent after the retry: several count rows per
        transaction), both busy for a few seconds, then no group commit fails, and the
        counts equal a recount."""
        delivery = Store(self.url, reactor, node="node-1")
        delivery.start()
        self.addCleanup(delivery.stop)
        failures = Failures()
        log = logging.getLogger("engine.store.writer")
        log.addHandler(failures)
        self.addCleanup(log.removeHandler, failures)
        deadline, sent, pending = time.monotonic() + 4.0, [0], []

        def outcomes(made):
            if made.status != st.TRANSFORMED:  # a copy: nothing queued
                return None
            ids = made.delivery_ids
            recorded = delivery.record_deliveries([
                DeliveryUpdate(ids[0], made.message_id, st.SENT, 1, 0.0, tried=0),
                DeliveryUpdate(ids[1], made.message_id, st.QUEUED, 1, 0.0,
                               last_error="refused", tried=0),
                DeliveryUpdate(ids[2], made.message_id, st.SENT, 1, 0.0, tried=0)])
            sent[0] += 1
            return recorded.addCallback(lambda _: delivery.record_deliveries([DeliveryUpdate(
                ids[1], made.message_id, st.SENT, 2, 0.0, tried=1)]))

        @defer.inlineCallbacks
        def sender(k):
            n = 0
            while time.monotonic() < deadline:
                n += 1
                control = f"{k}-{n // 2}" if n % 20 == 0 else f"{k}-{n}"  # some copies
                made = yield self.store.ingest(replace(inbound(control), decision=Decision(
                    st.TRANSFORMED, deliveries=tuple(NewDelivery(d) for d in DESTINATIONS))))
                pending.append(outcomes(made))

        yield defer.gatherResults([sender(k) for k in range(24)])
        yield defer.gatherResults([d for d in pending if d is not None])
        self.assertEqual(failures.seen, [])
        self.assertGreater(sent[0], 100)
        self.assertEqual((yield self.store.read(counters.differences)), {})
        kept = yield self.store.read(counters.totals)
        self.assertEqual(kept[("adt-in", "a", st.SENT)], sent[0])
        self.assertNotIn(("adt-in", "a", counters.RETRYING), kept)
