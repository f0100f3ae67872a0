"""
When the downstream system misbehaves: down, rejecting, or failing for a while.

Senders are acknowledged as soon as their messages are committed, whatever happens
downstream; deliveries wait in the store, retried with backoff and in order, and one the peer
rejects is parked in ERROR without holding the others back until an operator replays it.
Runs on SQLite and on PostgreSQL.
"""
from __future__ import annotations

from twisted.internet import defer, threads
from twisted.trial import unittest

from engine import status as st
from engine.store import queries
from engine.store.replay import replay_message
from engine.store.store import make_engine
from engine.synthetic import message_stream
from mllp.ack import parse_ack
from tests.e2e import harness as h

FAST_RETRY = {"max_attempts": 1000, "initial_delay": "200ms", "multiplier": 1,
              "max_delay": "200ms"}


def original_mode_stream(count: int, seed: int) -> list[bytes]:
    """Generated messages ACKed in original mode (AA/AE/AR), as the sink here answers."""
    return [h.as_original_mode(payload) for payload in message_stream(count, seed=seed)]


class DownstreamTestsMixin(h.EngineCase):

    timeout = 90

    def destination_is(self, engine, **expected):
        """A predicate for wait_until: the sink destination's counts include ``expected``."""
        def check():
            return h.counts(engine).addCallback(
                lambda report: all(h.destination_counts(report)[key] == value
                                   for key, value in expected.items()))
        return check

    @defer.inlineCallbacks
    def delivery_of(self, engine, control_id: str):
        """The one delivery of the message ``control_id``, and the message's detail."""
        rows = yield h.stored_messages(engine, control_id=control_id)
        self.assertEqual(len(rows), 1, rows)
        detail = yield engine.store.read(queries.message_detail, rows[0]["id"])
        self.assertEqual(len(detail["deliveries"]), 1, detail["deliveries"])
        return detail["deliveries"][0], detail

    @defer.inlineCallbacks
    def test_a_sink_down_at_first_gets_everything_once_in_order_when_it_comes_up(self):
        """If the sink is down, then 200 messages are still ACKed and stay queued, retried;
        once a sink listens on that port, it gets each of them once, in the order sent."""
        count = 200
        sink_port = self.reserved_port()
        engine, port = yield self.engine(self.config(sink_port, retry=FAST_RETRY))
        payloads = original_mode_stream(count, seed=21)

        acks = yield h.send_over(port, payloads, 1)

        self.assertEqual([(parse_ack(ack).code, parse_ack(ack).control_id_echoed)
                          for _, _, ack in acks],
                         [("AA", h.msh10(payload)) for payload in payloads])
        yield h.wait_until(lambda: engine.stats()["lanes"][f"{h.CHANNEL}/sink/0"]
                           ["failed_attempts"] >= 2, 10, "the first delivery is retried")
        report = yield h.counts(engine)
        self.assertEqual(h.destination_counts(report),
                         {"received": count, "sent": 0, "queued": count, "errored": 0})
        self.assertEqual(report[h.CHANNEL]["destinations"]["sink"]["retrying"], 1)

        sink, _ = self.sink(port=sink_port)

        yield h.wait_until(lambda: len(sink.received) >= count, 40, "the sink has everything")
        yield h.wait_until(self.destination_is(engine, sent=count, queued=0), 10,
                           "every delivery is recorded SENT")
        self.assertEqual(sink.received, payloads)
        first, detail = yield self.delivery_of(engine, h.msh10(payloads[0]))
        self.assertEqual(first["status"], st.SENT)
        self.assertGreater(first["attempts"], 2)
        attempts = [(line["status"], line["detail"]) for line in detail["journal"]
                    if line["delivery_id"] == first["id"]]
        self.assertEqual([status for status, _ in attempts],
                         [st.QUEUED] * first["attempts"] + [st.SENT])
        self.assertTrue(all("cannot connect" in text for _, text in attempts[1:-1]), attempts)

    @defer.inlineCallbacks
    def test_a_rejected_message_is_parked_at_once_and_delivered_after_a_replay(self):
        """If the sink answers AR to one message, then that delivery is parked in ERROR after
        one attempt while the next messages go through; once the sink is fixed, a replay
        delivers it."""
        sink, sink_port = self.sink()
        config_path = self.config(sink_port, retry=FAST_RETRY)
        engine, port = yield self.engine(config_path)
        payloads = original_mode_stream(30, seed=22)
        rejected = payloads[9]
        sink.plan(h.msh10(rejected), "AR")

        yield h.send_over(port, payloads, 1)

        yield h.wait_until(self.destination_is(engine, sent=29, errored=1, queued=0), 10,
                           "29 deliveries are SENT and one parked")
        self.assertEqual(sink.received, payloads)  # the rejected one once: not retried
        self.assertEqual(sink.accepted, payloads[:9] + payloads[10:])
        parked, detail = yield self.delivery_of(engine, h.msh10(rejected))
        self.assertEqual((parked["status"], parked["attempts"]), (st.ERROR, 1))
        self.assertIn("answered AR", parked["last_error"])
        report = yield h.status_cli(config_path)
        self.assertEqual(h.channel_counts(report),
                         {"received": 30, "sent": 29, "queued": 0, "errored": 1})

        database = make_engine(self.store_url)  # as `aiguillage messages replay` does
        self.addCleanup(database.dispose)
        said = yield threads.deferToThread(replay_message, database, detail["id"])

        self.assertIn("queued again", said)
        yield h.wait_until(self.destination_is(engine, sent=30, errored=0, queued=0), 10,
                           "the replayed delivery is SENT")
        self.assertEqual(sink.received, payloads + [rejected])
        self.assertEqual(sorted(sink.accepted), sorted(payloads))
        delivered, _ = yield self.delivery_of(engine, h.msh10(rejected))
        self.assertEqual(delivered["status"], st.SENT)

    @defer.inlineCallbacks
    def test_an_application_error_is_retried_holding_the_lane(self):
        """If the sink answers AE twice to one message, then it is sent again after the
        backoff and nothing after it is sent meanwhile: the sink sees it three times in a row,
        then the rest in order."""
        sink, sink_port = self.sink()
        engine, port = yield self.engine(self.config(sink_port, retry=FAST_RETRY))
        payloads = original_mode_stream(20, seed=23)
        sink.plan(h.msh10(payloads[4]), "AE", "AE")

        yield h.send_over(port, payloads, 1)

        yield h.wait_until(self.destination_is(engine, sent=20, queued=0), 10,
                           "every delivery is SENT")
        self.assertEqual(sink.received, payloads[:5] + [payloads[4]] * 2 + payloads[5:])
        self.assertEqual(sink.accepted, payloads)
        retried, _ = yield self.delivery_of(engine, h.msh10(payloads[4]))
        self.assertEqual((retried["status"], retried["attempts"]), (st.SENT, 3))


class SQLiteDownstreamTests(DownstreamTestsMixin, unittest.TestCase):
    backend = "sqlite"


class PostgreSQLDownstreamTests(DownstreamTestsMixin, unittest.TestCase):
    backend = "postgresql"
