"""Tests for engine.delivery.service: two processes' services on one real store (SQLite and
PostgreSQL), sharing lanes through their leases: one sends, the other waits; a clean stop
hands the lanes over at once; a dead holder's lanes are taken over once its lease ran out."""
from __future__ import annotations

import time

from sqlalchemy import insert
from twisted.internet import defer, reactor, task
from twisted.trial import unittest

from engine import status as st
from engine.config.settings import RetryPolicy
from engine.delivery.lane import LaneKey, LaneState
from engine.delivery.lease import LeasePolicy
from engine.delivery.service import DeliveryService
from engine.store import queries
from engine.store.schema import nodes
from tests.e2e.harness import wait_until
from tests.fakes import FakeDestination
from tests.store.storecase import StoreCase, inbound, transformed

KEY = LaneKey("adt-in", "archive", 0)
RETRY = RetryPolicy(max_attempts=3, initial_delay=0.1, multiplier=1.0, max_delay=0.1)


class ServiceTestsMixin(StoreCase):

    timeout = 60

    def service(self, owner: str, ttl: float = 1.5) -> tuple[DeliveryService, FakeDestination]:
        service = DeliveryService(self.store, reactor, owner, lease=LeasePolicy(ttl),
                                  poll_interval=0.1)
        destination = FakeDestination("archive")
        service.add_lane(KEY, destination, RETRY)
        self.addCleanup(self._stop, service)
        return service, destination

    def _stop(self, service: DeliveryService) -> defer.Deferred:
        return service.stop() if service._running else defer.succeed(None)

    @defer.inlineCallbacks
    def queue(self, count: int, start: int = 0) -> list[int]:
        results = yield self.ingest_all([inbound(str(start + n)) for n in range(count)])
        ids = []
        for result in results:
            made = yield self.store.record_decision(transformed(result.message_id, "archive"))
            ids.extend(made.delivery_ids)
        return ids

    @defer.inlineCallbacks
    def statuses(self, ids: list[int]) -> list[str]:
        due = yield self.store.read(queries.fetch_due, "adt-in", "archive", 0, 1000)
        queued = {d.delivery_id for d in due}
        return [st.QUEUED if i in queued else st.SENT for i in ids]

    @defer.inlineCallbacks
    def test_one_holder_sends_the_other_waits(self):
        """If two services want the same lane, then one holds it and sends everything; the
        other's lane stays UNLEASED and sends nothing."""
        first, first_sent = self.service("node-a/1/1")
        second, second_sent = self.service("node-b/2/2")
        first.start()
        yield wait_until(lambda: KEY in first.held, 10, "node-a holds the lane")
        second.start()
        ids = yield self.queue(5)
        first.wake([("adt-in", "archive", 0)])
        second.wake([("adt-in", "archive", 0)])
        yield wait_until(lambda: first_sent.delivery_ids == ids, 10, "node-a sends all")
        yield task.deferLater(reactor, 0.5, lambda: None)
        self.assertEqual(second_sent.sent, [])
        self.assertEqual(second.lanes[KEY].state, LaneState.UNLEASED)

    @defer.inlineCallbacks
    def test_a_clean_stop_hands_the_lane_over_at_once(self):
        """If the holder stops cleanly, then it gives its lease up and the other service takes
        the lane at its next claim, long before the lease would have run out."""
        first, _ = self.service("node-a/1/1", ttl=60)
        second, second_sent = self.service("node-b/2/2", ttl=60)
        first.start()
        yield wait_until(lambda: KEY in first.held, 10, "node-a holds the lane")
        second.start()
        yield first.stop()
        ids = yield self.queue(3)
        yield wait_until(lambda: second_sent.delivery_ids == ids, 10,
                         "node-b takes the lane over and sends")

    @defer.inlineCallbacks
    def test_a_dead_holders_lane_is_taken_over_after_its_lease(self):
        """If the holder dies (stops renewing, releases nothing), then the other service takes
        the lane once the lease ran out and sends what is queued, the dead one's unrecorded
        send included, in order."""
        first, first_sent = self.service("node-a/1/1")
        second, second_sent = self.service("node-b/2/2")
        first.start()
        yield wait_until(lambda: KEY in first.held, 10, "node-a holds the lane")
        second.start()
        hung = defer.Deferred()
        first_sent.script(hung)  # node-a sends the first delivery and dies before the ACK
        ids = yield self.queue(3)
        first.wake([KEY])
        yield wait_until(lambda: first_sent.delivery_ids == ids[:1], 10, "node-a sends")
        died_at = reactor.seconds()
        first._running = False  # dead: no more claims, nothing released
        first._claim_call.cancel()
        yield wait_until(lambda: second_sent.delivery_ids == ids, 20, "node-b takes over")
        self.assertGreater(reactor.seconds() - died_at, 0.5)
        yield wait_until(lambda: self.statuses(ids).addCallback(lambda s: s == [st.SENT] * 3),
                         10, "node-b's outcomes are committed")
        self.assertEqual(first_sent.delivery_ids, ids[:1])
        first.lanes[KEY].unleased()
        hung.callback(None)  # its late answer is recorded, harmlessly (already SENT)


    @defer.inlineCallbacks
    def test_a_newcomer_is_handed_its_share_after_the_send_under_way(self):
        """If a second delivery process starts while the first holds both lanes, one of them
        sending, then the first hands that lane back after its send under way has answered
        and been recorded; the newcomer sends the rest of that lane's queue, nothing twice,
        and the first keeps sending the other lane."""
        other = LaneKey("adt-in", "archive", 1)
        first, first_sent = self.service("node-a/1/1")
        first.add_lane(other, first_sent, RETRY)
        first.start()
        yield wait_until(lambda: first.held == {KEY, other}, 10, "node-a holds both lanes")
        hung = defer.Deferred()
        first_sent.script(hung)  # the first send on lane 1 waits for its answer
        ids = yield self.queue_on(other, 4)
        first.wake([other])
        yield wait_until(lambda: len(first_sent.sent) == 1, 10, "node-a sends on lane 1")
        with self.store.engine.begin() as conn:  # node-b's heartbeat: a delivery process
            conn.execute(insert(nodes).values(
                process="node-b/2/2.000000", name="node-b", pid=2, role="delivery", host="h",
                started_at=time.time(), heartbeat_at=time.time(), version="test"))
        second, second_sent = self.service("node-b/2/2")
        second.add_lane(other, second_sent, RETRY)
        second.start()
        yield wait_until(lambda: other in first._handing_back, 10, "node-a hands lane 1 back")
        self.assertEqual(second.held, frozenset())  # not before the send under way answered
        hung.callback(None)
        yield wait_until(lambda: second.held == {other}, 10, "node-b takes lane 1")
        yield wait_until(lambda: second_sent.delivery_ids == ids[1:], 10, "node-b sends")
        self.assertEqual(first_sent.delivery_ids, ids[:1])
        self.assertEqual(first.held, frozenset({KEY}))
        late = yield self.queue(1, start=10)  # lane 0: still node-a's
        first.wake([KEY])
        yield wait_until(lambda: first_sent.delivery_ids == ids[:1] + late, 10,
                         "node-a sends lane 0")

    @defer.inlineCallbacks
    def queue_on(self, key: LaneKey, count: int) -> list[int]:
        results = yield self.ingest_all([inbound(f"L{key.lane}-{n}") for n in range(count)])
        ids = []
        for result in results:
            made = yield self.store.record_decision(
                transformed(result.message_id, (key.destination, key.lane)))
            ids.extend(made.delivery_ids)
        return ids


class SQLiteServiceTests(ServiceTestsMixin, unittest.TestCase):
    backend = "sqlite"


class PostgreSQLServiceTests(ServiceTestsMixin, unittest.TestCase):
    backend = "postgresql"
