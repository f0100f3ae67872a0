"""
A slow channel does not hold another channel's ACKs, end to end.

Channel ``slow`` has a ``python:`` step that blocks until the test opens a gate; channel
``e2e`` only routes. With a ``slow`` message stuck in its step (in the decider's worker thread),
the ``e2e`` channel's messages are still committed and acknowledged: nothing on the reactor
thread waits for the step. Deterministic: the step waits on an Event, the test asserts the
plain ACKs arrive while the gate is closed, never on a duration. The slow channel's messages
are then decided in the order they came. Runs on SQLite and on PostgreSQL.
"""
from __future__ import annotations

import threading

import yaml
from twisted.internet import defer
from twisted.trial import unittest

from engine import status as st
from mllp.ack import parse_ack
from mllp.client import MLLPClient
from tests.e2e import harness as h
from tests.e2e.test_mappings import adt

SLOW = "slow"
GATE = threading.Event()  # opened by the test: the step returns
ENTERED = threading.Event()  # set by the step once it runs


def wait_for_gate(message) -> None:
    """A ``python:`` step that blocks its worker thread until the gate opens."""
    ENTERED.set()
    if not GATE.wait(60):
        raise RuntimeError("the test never opened the gate")


class SlowChannelTestsMixin(h.EngineCase):

    timeout = 90

    def two_channels(self, sink_port: int, slow_sink_port: int,
                     ack_mode: str = "after-processing") -> str:
        """Channel e2e (routing only, to the sink) and channel slow (the gated step, to a
        sink of its own); the engine.yaml path."""
        # threads: the gate is an Event of this process (test_cpu_steps: worker processes)
        config = self.config(sink_port, decisions={"processes": 0})
        slow = {"name": SLOW,
                "source": {"type": "mllp", "host": "127.0.0.1", "port": 0},
                "response": {"mode": ack_mode},
                "steps": [{"python": "tests.e2e.test_slow_channel:wait_for_gate"}],
                "destinations": [{"name": "out", "type": "mllp", "host": "127.0.0.1",
                                  "port": slow_sink_port, "connect_timeout": "2s",
                                  "ack_timeout": "10s"}]}
        (self.directory / "channels" / f"{SLOW}.yaml").write_text(
            yaml.safe_dump(slow, sort_keys=False))
        return config

    @defer.inlineCallbacks
    def test_a_blocked_slow_step_does_not_hold_a_plain_channels_acks(self):
        """If a slow channel's message is blocked in its python: step, then the plain
        channel's messages are still committed and acknowledged AA; once the step returns,
        the slow message is answered after processing and stored TRANSFORMED."""
        GATE.clear()
        ENTERED.clear()
        self.addCleanup(GATE.set)  # before the engine stops: its worker must not hang
        sink, sink_port = self.sink()
        slow_sink, slow_sink_port = self.sink()
        engine, port = yield self.engine(self.two_channels(sink_port, slow_sink_port))
        self.addCleanup(GATE.set)
        slow_client = MLLPClient.for_address(engine._reactor, "127.0.0.1",
                                             engine.source_port(SLOW), ack_timeout=60)
        self.addCleanup(slow_client.close)
        slow_ack = slow_client.send(adt("S1", "M"))
        yield h.wait_until(ENTERED.is_set, 20, "the slow step runs")

        acks = yield h.send_over(port, [adt(f"P{n}", "M") for n in range(10)])

        self.assertFalse(GATE.is_set())
        self.assertFalse(slow_ack.called)
        self.assertEqual([parse_ack(ack).code for _, _, ack in acks], ["AA"] * 10)
        rows = yield h.stored_messages(engine, channel=h.CHANNEL)
        self.assertEqual({row["status"] for row in rows}, {st.TRANSFORMED})
        GATE.set()
        answer = yield slow_ack
        self.assertEqual(parse_ack(answer).code, "AA")
        [row] = yield h.stored_messages(engine, channel=SLOW)
        self.assertEqual(row["status"], st.TRANSFORMED)
        yield h.wait_until(lambda: len(sink.accepted) == 10 and len(slow_sink.accepted) == 1,
                           20, "the sinks get every message")

    @defer.inlineCallbacks
    def test_a_slow_channels_messages_are_decided_and_delivered_in_order(self):
        """If a slow channel in after-commit mode is sent messages faster than it decides
        them, then they are ACKed at once and decided, committed and delivered in the order
        they came."""
        GATE.set()
        _, sink_port = self.sink()
        slow_sink, slow_sink_port = self.sink()
        engine, _ = yield self.engine(self.two_channels(sink_port, slow_sink_port,
                                                        "after-commit"))
        payloads = [adt(f"O{n:02d}", "M") for n in range(25)]

        acks = yield h.send_over(engine.source_port(SLOW), payloads)

        self.assertEqual([parse_ack(ack).code for _, _, ack in acks], ["AA"] * 25)
        yield h.wait_until(lambda: len(slow_sink.accepted) == 25, 30,
                           "every slow message is delivered")
        self.assertEqual(slow_sink.accepted, payloads)


    @defer.inlineCallbacks
    def test_messages_left_received_by_a_stop_are_decided_after_the_restart(self):
        """If the engine stops while a slow channel's messages wait for their decision, then
        the one under way is committed, the others stay RECEIVED (they were acknowledged),
        and after a restart the recovery scan decides them: every message is delivered, in
        the order it came."""
        GATE.clear()
        ENTERED.clear()
        self.addCleanup(GATE.set)
        _, sink_port = self.sink()
        slow_sink, slow_sink_port = self.sink()
        config = self.two_channels(sink_port, slow_sink_port, "after-commit")
        first = yield h.start_engine(config)
        payloads = [adt(f"R{n}", "M") for n in range(3)]
        try:
            acks = yield h.send_over(first.source_port(SLOW), payloads)
            self.assertEqual([parse_ack(ack).code for _, _, ack in acks], ["AA"] * 3)
            yield h.wait_until(ENTERED.is_set, 20, "the first slow step runs")
        finally:
            stopping = first.stop()
            yield h.wait_until(lambda: not first.decider.running, 20, "the decider stops")
            GATE.set()
            yield stopping
        rows = yield self.read_messages(config)
        self.assertEqual([row["status"] for row in rows],
                         [st.TRANSFORMED, st.RECEIVED, st.RECEIVED])
        engine, _ = yield self.engine(config)
        yield h.wait_until(lambda: len(slow_sink.accepted) == 3, 30,
                           "every slow message is delivered")
        self.assertEqual(slow_sink.accepted, payloads)
        rows = yield h.stored_messages(engine, channel=SLOW)
        self.assertEqual([row["status"] for row in rows], [st.TRANSFORMED] * 3)
        self.assertEqual((first.decider.decided, engine.decider.decided), (1, 2))

    def read_messages(self, config: str) -> defer.Deferred:
        """The slow channel's stored messages, read with a store of its own (the engine is
        stopped)."""
        from twisted.internet import threads

        from engine.app import load_config
        from engine.store import queries
        from engine.store.store import make_engine

        def read() -> list:
            database = make_engine(load_config(config).store.url)
            try:
                with database.connect() as conn:
                    return queries.list_messages(conn, channel=SLOW, limit=100)[::-1]
            finally:
                database.dispose()

        return threads.deferToThread(read)


class SQLiteSlowChannelTests(SlowChannelTestsMixin, unittest.TestCase):
    backend = "sqlite"


class PostgreSQLSlowChannelTests(SlowChannelTestsMixin, unittest.TestCase):
    backend = "postgresql"
