"""
Channels feeding channels, end to end: the real engine, an MLLP sender, an MLLP sink, files.

Channel ``e2e`` (MLLP in, its own steps) hands every message to channel ``e2e-b`` (``source:
{type: channel}``, its own steps), which writes it to a directory and sends it to an MLLP sink
through a step of that destination's own. Every message reaches both outputs once, in the
order sent, with every mapping applied; the sink being down at first loses nothing; ``status``
counts both channels; the handed-over message names where it came from. Runs on SQLite and
on PostgreSQL.
"""
from __future__ import annotations

import subprocess
import sys

import yaml
from twisted.internet import defer, threads
from twisted.trial import unittest

from engine import status as st
from engine.store import queries
from mllp.ack import parse_ack
from tests.e2e import harness as h
from tests.e2e.test_mappings import adt

TARGET = "e2e-b"
FAST_RETRY = {"max_attempts": 1000, "initial_delay": "100ms", "multiplier": 1,
              "max_delay": "100ms"}


def mapped(control_id: str) -> bytes:
    """What both outputs of e2e-b get: e2e's step (MSH-5) and e2e-b's (PV1-2) applied."""
    return adt(control_id, "M").replace(b"|HIS|HOSP|ENG|", b"|HIS|HOSP|NORMALISE|").replace(
        b"PV1|1|I\r", b"PV1|1|O\r")


def at_the_sink(control_id: str) -> bytes:
    """What the sink gets: that, and its destination's own step (MSH-6)."""
    return mapped(control_id).replace(b"|NORMALISE|HOSP|", b"|NORMALISE|DPI|")


def messages_show(config_path: str, message_id: int) -> defer.Deferred:
    """``aiguillage messages show ID`` in a subprocess (in a thread); Deferred[its output]."""
    def run() -> str:
        done = subprocess.run(
            [sys.executable, "-m", "engine.cli.main", "messages", "show", str(message_id),
             "--config", config_path], cwd=h.REPO_ROOT, capture_output=True, text=True,
            timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    return threads.deferToThread(run)


class ChainingTestsMixin(h.EngineCase):

    timeout = 90

    def chain(self, sink_port: int) -> str:
        """engine.yaml, channel e2e (steps, then a channel destination to e2e-b) and channel
        e2e-b (fed by channels only: steps, a file destination, an MLLP one with a step of its
        own); the engine.yaml path."""
        config = self.config(None, extra_destinations=[
            {"name": "to-b", "type": "channel", "channel": TARGET}])
        path = self.directory / "channels" / f"{h.CHANNEL}.yaml"
        first = yaml.safe_load(path.read_text())
        first["steps"] = [{"set": "MSH-5", "value": "NORMALISE"}]
        path.write_text(yaml.safe_dump(first, sort_keys=False))
        self.out = self.directory / "out"
        second = {
            "name": TARGET, "source": {"type": "channel"},
            "steps": [{"set": "PV1-2", "value": "O"}],
            "destinations": [
                {"name": "files", "type": "file", "directory": str(self.out),
                 "filename": "{message_id:06d}-{control_id}.hl7", "fsync": False},
                {"name": h.SINK_DESTINATION, "type": "mllp", "host": "127.0.0.1",
                 "port": sink_port, "connect_timeout": "2s", "ack_timeout": "10s",
                 "retry": FAST_RETRY, "steps": [{"set": "MSH-6", "value": "DPI"}]}]}
        (self.directory / "channels" / f"{TARGET}.yaml").write_text(
            yaml.safe_dump(second, sort_keys=False))
        return config

    def files(self) -> list[bytes]:
        """The files e2e-b wrote, in the order of its message ids."""
        if not self.out.exists():
            return []
        return [p.read_bytes() for p in sorted(self.out.iterdir()) if p.suffix == ".hl7"]

    @defer.inlineCallbacks
    def test_two_channels_deliver_every_message_once_in_order_with_both_mappings(self):
        """If e2e hands its messages to e2e-b while e2e-b's MLLP peer is down, then the files
        are written at once, the sink gets nothing; once it listens, it gets every message
        once, in order, with both channels' mappings and its own; nothing is lost, and
        status counts both channels."""
        sink_port = self.reserved_port()
        config = self.chain(sink_port)
        engine, port = yield self.engine(config)
        ids = [f"C{n:03d}" for n in range(1, 31)]

        acks = yield h.send_over(port, [adt(cid, "M") for cid in ids[:20]])

        self.assertEqual([parse_ack(ack).code for _, _, ack in acks], ["AA"] * 20)
        yield h.wait_until(lambda: len(self.files()) == 20, 20, "e2e-b writes 20 files")
        self.assertEqual(self.files(), [mapped(cid) for cid in ids[:20]])
        yield h.wait_until(lambda: engine.stats()["lanes"][f"{TARGET}/sink/0"]
                           ["failed_attempts"] >= 2, 10, "the sink delivery is retried")
        report = yield h.counts(engine)
        self.assertEqual(h.destination_counts(report, "to-b"),
                         {"received": 20, "sent": 20, "queued": 0, "errored": 0})
        self.assertEqual(h.destination_counts(report, channel=TARGET),
                         {"received": 20, "sent": 0, "queued": 20, "errored": 0})

        sink, _ = self.sink(port=sink_port)
        yield h.send_over(port, [adt(cid, "M") for cid in ids[20:]])

        yield h.wait_until(lambda: len(sink.received) >= 30, 30, "the sink has everything")
        yield h.wait_until(lambda: len(self.files()) == 30, 10, "e2e-b writes 30 files")
        self.assertEqual(sink.received, [at_the_sink(cid) for cid in ids])
        self.assertEqual(self.files(), [mapped(cid) for cid in ids])
        report = yield h.status_cli(config)
        self.assertEqual(h.channel_counts(report),
                         {"received": 30, "sent": 30, "queued": 0, "errored": 0})
        self.assertEqual(h.channel_counts(report, TARGET),
                         {"received": 30, "sent": 60, "queued": 0, "errored": 0})

    @defer.inlineCallbacks
    def test_the_handed_over_message_says_where_it_came_from(self):
        """If a message is handed over, then the target's copy is its own message, whose peer
        names the sending channel and message, and the hand-over's response names it."""
        sink, sink_port = self.sink()
        config = self.chain(sink_port)
        engine, port = yield self.engine(config)

        yield h.send_over(port, [adt("P1", "M")])

        yield h.wait_until(lambda: len(sink.received) == 1, 20, "the sink gets it")
        first, second = yield h.stored_messages(engine, control_id="P1")
        self.assertEqual((first["channel"], second["channel"]), (h.CHANNEL, TARGET))
        self.assertEqual(second["status"], st.TRANSFORMED)
        detail = yield engine.store.read(queries.message_detail, first["id"])
        [hand_over] = detail["deliveries"]
        self.assertEqual((hand_over["destination"], hand_over["status"]), ("to-b", st.SENT))
        self.assertEqual(hand_over["response"],
                         f'committed as message {second["id"]} of channel "{TARGET}"'.encode())
        shown = yield messages_show(config, second["id"])
        self.assertIn(f"peer: channel:{h.CHANNEL}/message {first['id']}", shown)


class SQLiteChainingTests(ChainingTestsMixin, unittest.TestCase):
    backend = "sqlite"


class PostgreSQLChainingTests(ChainingTestsMixin, unittest.TestCase):
    backend = "postgresql"
