"""
A node's processes wake each other: what one process takes in is sent at once by the lane
that another process holds, not at that lane's next poll.

Two engines in one test process stand for a node's intake process and its delivery worker
(``aiguillage run --workers 1``): one store, one configuration, roles split. Their lanes
poll once an hour, so a message reaches the sink within the test's time only if the intake
woke the delivery worker's lane.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from twisted.internet import defer, reactor
from twisted.trial import unittest

from engine.app import Engine, load_config
from engine.delivery.lane import LaneKey, LaneState
from engine.synthetic import adt_message
from tests.e2e import harness as h

HOUR = 3600.0


class WakeupTestsMixin(h.EngineCase):

    timeout = 60

    @defer.inlineCallbacks
    def started(self, path: str, roles: tuple[str, ...], serve_admin: bool) -> Engine:
        engine = Engine(load_config(path), reactor, poll_interval=HOUR, roles=roles,
                        serve_admin=serve_admin)
        self.addCleanup(engine.stop)
        yield engine.start()
        return engine

    @defer.inlineCallbacks
    def test_the_lane_in_another_process_sends_at_once(self):
        sink, sink_port = self.sink()
        path = self.config(sink_port)
        delivery = yield self.started(path, ("delivery",), serve_admin=False)
        intake = yield self.started(path, ("intake",), serve_admin=True)
        lane = delivery.lanes[LaneKey(h.CHANNEL, h.SINK_DESTINATION, 0)]
        yield h.wait_until(lambda: lane.state is LaneState.IDLE
                           and lane.key in delivery.delivery.held, 20, "the worker holds the lane")
        for n in range(3):  # one at a time: each waits for its own wake
            yield h.send_over(intake.source_port(h.CHANNEL), [adt_message(n)])
            yield h.wait_until(lambda: len(sink.arrivals) == n + 1, 20,
                               f"message {n} reached the sink")
        self.assertEqual(delivery.wakeup.receiver.received, 3)
        self.assertEqual(intake.wakeup.sender.sent, 3)


class WakeupSQLiteTests(WakeupTestsMixin, unittest.TestCase):
    backend = "sqlite"


class WakeupPostgreSQLTests(WakeupTestsMixin, unittest.TestCase):
    backend = "postgresql"

    @defer.inlineCallbacks
    def test_a_lane_held_on_another_node_sends_at_once(self):
        """Two nodes on one PostgreSQL database: node "e2e" takes in, node "other" holds the
        lane; no datagram crosses nodes, the store's notification wakes it."""
        sink, sink_port = self.sink()
        path = self.config(sink_port)
        other = self.directory / "other"
        shutil.copytree(self.directory / "channels", other / "channels")
        (other / "engine.yaml").write_text(
            Path(path).read_text().replace("node: e2e", "node: other"))
        delivery = yield self.started(str(other / "engine.yaml"), ("delivery",),
                                      serve_admin=False)
        intake = yield self.started(path, ("intake",), serve_admin=True)
        self.assertEqual(intake.config.node, "e2e")
        self.assertEqual(delivery.config.node, "other")
        lane = delivery.lanes[LaneKey(h.CHANNEL, h.SINK_DESTINATION, 0)]
        yield h.wait_until(lambda: lane.state is LaneState.IDLE
                           and lane.key in delivery.delivery.held, 20, "node other holds the lane")
        yield h.wait_until(lambda: delivery.pg_wake.received > 0 or _probe(intake), 20,
                           "node other listens")  # a notification before LISTEN is lost
        for n in range(3):
            yield h.send_over(intake.source_port(h.CHANNEL), [adt_message(n)])
            yield h.wait_until(lambda: len(sink.arrivals) == n + 1, 20,
                               f"message {n} reached the sink")
        self.assertEqual(delivery.wakeup.receiver.received, 0)


def _probe(engine: Engine) -> bool:
    """Tell the other nodes of an unknown lane (woken for nothing): until one listens."""
    engine.pg_wake.tell([("probe", "probe", 0)])
    return False
