"""Tests for engine.delivery.pgwake: the payload (pure), and nodes notifying each other
through a real PostgreSQL database (LISTEN/NOTIFY on 127.0.0.1:5432)."""
from __future__ import annotations

import logging
import time

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from twisted.internet import defer, reactor, task
from twisted.trial import unittest

from engine.delivery import pgwake
from tests import dbs
from tests.e2e.harness import wait_until

NAMES = st.text(min_size=1, max_size=20)
KEYS = st.lists(st.tuples(NAMES, NAMES, st.integers(0, 255)), max_size=10)


@given(NAMES, KEYS)
def test_node_and_keys_come_back_as_they_were_sent(node, keys):
    assert pgwake.decode(pgwake.encode(node, keys)) == (node, sorted(keys))


def test_too_many_keys_wake_every_lane_and_fit_in_a_notification():
    keys = [("channel", f"destination-{n}", n % 8) for n in range(1000)]
    payload = pgwake.encode("n1", keys)
    assert len(payload.encode()) < 8000
    assert pgwake.decode(payload) == ("n1", None)


@pytest.mark.parametrize("payload", ["", "[]", '{"keys": []}', '{"node": 1, "keys": []}',
                                     '{"node": "a", "keys": {}}', '{"node": "a", "keys": [1]}',
                                     '{"node": "a", "keys": [["c", "d", "0"]]}'])
def test_anything_else_is_refused(payload):
    with pytest.raises(ValueError):
        pgwake.decode(payload)


class NotifyTests(unittest.TestCase):
    """Two PostgresWake objects on one real database stand for two nodes' processes."""

    timeout = 30

    def setUp(self):
        self.nodes: dict[str, pgwake.PostgresWake] = {}
        database = dbs.postgres_database()
        url = database.__enter__()
        self.addCleanup(database.__exit__, None, None, None)
        self.dsn = url.replace("postgresql+psycopg://", "postgresql://")

    def node(self, name: str, listen: bool = True, connect=None):
        woken: list = []
        wake = pgwake.PostgresWake(connect or (lambda: psycopg.connect(self.dsn)), reactor,
                                   name, stale_after=15.0)
        if listen:
            wake.listen(woken.append)
        self.addCleanup(wake.stop)
        self.nodes[name] = wake
        return wake, woken

    @defer.inlineCallbacks
    def listening(self, *wakes):
        """Until every listener's LISTEN took effect (a notification sent before is lost)."""
        probe, _ = self.node("probe", listen=False)
        count = [w.received for w in wakes]
        while True:
            probe.tell([("probe", "probe", 0)])
            yield task.deferLater(reactor, 0.05, lambda: None)
            if all(w.received > c for w, c in zip(wakes, count)):
                return

    @defer.inlineCallbacks
    def test_another_node_is_woken_and_the_sender_is_not(self):
        a, woken_a = self.node("a")
        b, woken_b = self.node("b")
        yield self.listening(a, b)
        del woken_a[:], woken_b[:]
        a.tell([("adt", "archive", 1), ("adt", "archive", 0)])
        yield wait_until(lambda: woken_b, 10, "node b is woken")
        self.assertEqual(woken_b, [[("adt", "archive", 0), ("adt", "archive", 1)]])
        yield task.deferLater(reactor, 0.2, lambda: None)
        self.assertEqual(woken_a, [])  # its own notification came back and was ignored

    @defer.inlineCallbacks
    def test_keys_told_while_a_notification_is_on_its_way_go_together(self):
        _, woken_b = self.node("b")
        a, _ = self.node("a", listen=False)
        yield self.listening(self.nodes["b"])
        del woken_b[:]
        for lane in range(50):
            a.tell([("adt", "archive", lane)])
        yield wait_until(lambda: sorted(k for keys in woken_b for k in keys)
                         == [("adt", "archive", n) for n in range(50)], 10, "every lane woken")
        self.assertLessEqual(len(woken_b), 50)

    @defer.inlineCallbacks
    def test_a_node_alone_on_its_database_notifies_nobody(self):
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE nodes (name text, role text, heartbeat_at float)")
            conn.execute("INSERT INTO nodes VALUES ('a', 'intake+delivery', %s), "
                         "('b', 'delivery', %s), ('c', 'intake', %s)",
                         (time.time(), time.time() - 60, time.time()))
        alone, _ = self.node("a", listen=False)
        alone.tell([("adt", "archive", 0)])  # b is stale, c runs no lanes
        yield wait_until(lambda: not alone._wanted.is_set(), 10, "the sender took the keys")
        yield task.deferLater(reactor, 0.2, lambda: None)
        self.assertEqual(alone.sent, 0)
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute("UPDATE nodes SET heartbeat_at = %s WHERE name = 'b'", (time.time(),))
        accompanied, _ = self.node("a2", listen=False)  # a new sender looks at once
        accompanied.tell([("adt", "archive", 0)])
        yield wait_until(lambda: accompanied.sent == 1, 10, "a notification for node b")

    @defer.inlineCallbacks
    def test_an_unreachable_store_is_logged_once_and_told_quietly(self):
        attempts = []

        def refused():
            attempts.append(1)
            raise psycopg.OperationalError("connection refused")

        warnings = _Recorder()
        logger = logging.getLogger("engine.delivery.pgwake")
        logger.addHandler(warnings)
        self.addCleanup(logger.removeHandler, warnings)
        sender, _ = self.node("a", listen=False, connect=refused)
        for _ in range(3):
            sender.tell([("adt", "archive", 0)])
            yield wait_until(lambda: not sender._wanted.is_set(), 10, "the sender took the keys")
            yield task.deferLater(reactor, 0.6, lambda: None)  # past the first backoff
        self.assertGreaterEqual(len(attempts), 2)
        self.assertEqual([r.getMessage() for r in warnings.records],
                         ["could not wake the other nodes' lanes (they will poll): "
                          "connection refused"])
        self.assertEqual(sender.sent, 0)


class _Recorder(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)
