"""
Enhanced-mode acknowledgements end to end: the accept ACK, then the application ACK on the same
connection (fast and slow channel), by the return route after the sender has gone, and
parked in ERROR, saying why, without one. Runs on SQLite and on PostgreSQL.
"""
from __future__ import annotations

from typing import Any

import yaml
from twisted.internet import defer
from twisted.internet import reactor as global_reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.trial import unittest

from engine import status as st
from engine.flow.appack import APPLICATION_ACK
from engine.store import queries
from mllp.ack import parse_ack
from mllp.framing import FrameDecoder, encode_frame
from tests.e2e import harness as h
from tests.e2e.test_mappings import adt
from tests.mllp.test_ack_conformance import validate


def enhanced(payload: bytes, msh15: str = "AL", msh16: str = "AL") -> bytes:
    msh, rest = payload.split(b"\r", 1)
    return msh + f"|||{msh15}|{msh16}".encode() + b"\r" + rest


class FrameReader(Protocol):
    """A raw MLLP peer: writes what it is told, keeps every frame it reads."""

    def __init__(self) -> None:
        self.decoder = FrameDecoder()
        self.frames: list[bytes] = []
        self.closed: defer.Deferred = defer.Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.frames.extend(self.decoder.feed(data))

    def connectionLost(self, reason: Any = None) -> None:
        self.closed.callback(None)


@defer.inlineCallbacks
def connect(port: int) -> Any:
    endpoint = TCP4ClientEndpoint(global_reactor, "127.0.0.1", port)
    reader = FrameReader()
    yield connectProtocol(endpoint, reader)
    return reader


class EnhancedTestsMixin(h.EngineCase):

    def channel_file(self, **changes: Any) -> None:
        path = self.directory / "channels" / f"{h.CHANNEL}.yaml"
        channel = yaml.safe_load(path.read_text())
        for key, value in changes.items():
            if key == "response":
                channel["response"].update(value)
            else:
                channel[key] = value
        path.write_text(yaml.safe_dump(channel, sort_keys=False))

    def out(self) -> list[dict]:
        return [{"name": "out", "type": "file", "directory": str(self.directory / "out")}]

    @defer.inlineCallbacks
    def application_ack_rows(self, engine: Any) -> Any:
        rows = yield h.stored_messages(engine)
        details = []
        for row in rows:
            detail = yield engine.store.read(queries.message_detail, row["id"])
            details += [d for d in detail["deliveries"] if d["destination"] == APPLICATION_ACK]
        return details

    @defer.inlineCallbacks
    def settled_rows(self, engine: Any) -> Any:
        """The application-ack deliveries, once there is one and none is QUEUED."""
        found: list = []

        @defer.inlineCallbacks
        def settled() -> Any:
            rows = yield self.application_ack_rows(engine)
            found[:] = rows
            return bool(rows) and all(r["status"] != st.QUEUED for r in rows)

        yield h.wait_until(settled, 20, "the application ACKs are delivered or parked")
        return found

    @defer.inlineCallbacks
    def same_connection(self, **channel: Any) -> Any:
        config = self.config(None, extra_destinations=self.out())
        self.channel_file(**channel)
        engine, port = yield self.engine(config)
        reader = yield connect(port)
        self.addCleanup(reader.transport.loseConnection)
        payloads = [enhanced(adt("E1", "M")), enhanced(adt("E2", "F"))]
        reader.transport.write(b"".join(encode_frame(p) for p in payloads))
        yield h.wait_until(lambda: len(reader.frames) >= 4, 20, "two CA and two AA")
        acks = [parse_ack(frame) for frame in reader.frames]
        # Each accept ACK comes before its message's application ACK.
        for control_id in ("E1", "E2"):
            codes = [a.code for a in acks if a.control_id_echoed == control_id]
            self.assertEqual(codes, ["CA", "AA"])
        for frame in reader.frames:
            if parse_ack(frame).code == "AA":
                validate(frame, "2.5")
                self.assertIn(b"|||NE|NE", frame.split(b"\r")[0])
        rows = yield self.settled_rows(engine)
        self.assertEqual([r["status"] for r in rows], [st.SENT, st.SENT])
        return engine

    def test_fast_channel_answers_the_application_ack_on_the_same_connection(self):
        return self.same_connection()

    def test_slow_channel_answers_the_application_ack_on_the_same_connection(self):
        return self.same_connection(slow=True)

    @defer.inlineCallbacks
    def test_a_pipeline_error_is_ca_then_ae(self):
        """If the channel's step fails, then the sender reads CA (committed) then AE with
        the step's error in ERR, not CE."""
        config = self.config(None, extra_destinations=self.out())
        self.channel_file(steps=[{"set": "ZBE-9", "value": "HMS"}])
        engine, port = yield self.engine(config)
        reader = yield connect(port)
        self.addCleanup(reader.transport.loseConnection)
        reader.transport.write(encode_frame(enhanced(adt("X1", "M"))))
        yield h.wait_until(lambda: len(reader.frames) >= 2, 20, "CA and AE")
        acks = [parse_ack(frame) for frame in reader.frames]
        self.assertEqual([(a.code, a.control_id_echoed) for a in acks],
                         [("CA", "X1"), ("AE", "X1")])
        self.assertEqual(acks[1].error_codes, (207,))
        self.assertIn("ZBE", acks[1].text)
        validate(reader.frames[1], "2.5")

    @defer.inlineCallbacks
    def test_after_the_sender_left_the_return_route_takes_it(self):
        """If the connection closed before the application ACK, then it goes to
        response.application-ack, and is SENT once that peer acknowledges it."""
        sink, sink_port = self.sink()
        config = self.config(None, extra_destinations=self.out())
        self.channel_file(response={"application-ack": {
            "host": "127.0.0.1", "port": sink_port, "connect_timeout": "2s"}})
        engine, port = yield self.engine(config)
        reader = yield connect(port)
        reader.transport.write(encode_frame(enhanced(adt("R1", "M"))))
        reader.transport.loseConnection()
        yield reader.closed
        yield h.wait_until(lambda: sink.received, 20, "the return route gets the app ACK")
        [app_ack] = sink.received
        self.assertEqual((parse_ack(app_ack).code, parse_ack(app_ack).control_id_echoed),
                         ("AA", "R1"))
        rows = yield self.settled_rows(engine)
        self.assertEqual([r["status"] for r in rows], [st.SENT])

    @defer.inlineCallbacks
    def test_without_a_return_route_it_is_parked_in_error_saying_why(self):
        config = self.config(None, extra_destinations=self.out())
        engine, port = yield self.engine(config)
        reader = yield connect(port)
        reader.transport.write(encode_frame(enhanced(adt("N1", "M"))))
        reader.transport.loseConnection()
        yield reader.closed
        rows = yield self.settled_rows(engine)
        self.assertEqual([r["status"] for r in rows], [st.ERROR])
        self.assertIn("no return route", rows[0]["last_error"])


class SQLiteEnhancedTests(EnhancedTestsMixin, unittest.TestCase):
    backend = "sqlite"


class PostgreSQLEnhancedTests(EnhancedTestsMixin, unittest.TestCase):
    backend = "postgresql"
