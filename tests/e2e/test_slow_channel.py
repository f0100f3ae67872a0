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
        config = self.config(sink_port)
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


class SQLiteSlowChannelTests(SlowChannelTestsMixin, unittest.TestCase):
    backend = "sqlite"


class PostgreSQLSlowChannelTests(SlowChannelTestsMixin, unittest.TestCase):
    backend = "postgresql"
