"""
The ``mllp`` source on real loopback sockets, with a fake engine receiver.

test-case-name: tests.channels.test_mllp_source
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from twisted.internet import defer, endpoints, reactor, task
from twisted.trial import unittest

from channels.mllp_destination import MLLPDestination
from channels.mllp_source import MLLPSource
from engine.interfaces import DeliveryContext, PeerInfo
from mllp.ack import parse_ack
from mllp.client import MLLPClient
from mllp.framing import encode_frame
from mllp.header import read_header
from tests.channels.fakes import FakeReceiver, RawMLLPClient, message, wait_until
from tests.mllp import test_tls as mllp_tls  # for its throwaway PKI; a module, so not collected


class MLLPSourceTests(unittest.TestCase):
    timeout = 10

    @defer.inlineCallbacks
    def listening(self, receiver, **options):
        """A started source on 127.0.0.1, stopped after the test."""
        source = MLLPSource("adt", "adt", {"port": 0, "idle_timeout": 5, **options},
                            receiver, reactor)
        yield source.start()
        self.addCleanup(source.stop)
        return source

    def client(self, source):
        client = MLLPClient.for_address(reactor, "127.0.0.1", source.port, connect_timeout=2,
                                        ack_timeout=2)
        self.addCleanup(client.close)
        return client

    @defer.inlineCallbacks
    def raw(self, source):
        endpoint = endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", source.port)
        protocol = yield endpoints.connectProtocol(endpoint, RawMLLPClient())
        self.addCleanup(lambda: protocol.closed)
        self.addCleanup(protocol.transport.loseConnection)
        return protocol

    @defer.inlineCallbacks
    def test_frames_reach_the_receiver_and_acks_come_back(self):
        """If a client sends two messages, then the receiver gets them and the client AAs."""
        receiver = FakeReceiver()
        source = yield self.listening(receiver)
        self.assertNotEqual(source.port, 0)
        client = self.client(source)
        acks = []
        for cid in ("C1", "C2"):
            acks.append(parse_ack((yield client.send(message(cid)))))
        self.assertEqual([(a.code, a.control_id_echoed) for a in acks],
                         [("AA", "C1"), ("AA", "C2")])
        self.assertEqual([(r.channel, r.payload) for r in receiver.received],
                         [("adt", message("C1")), ("adt", message("C2"))])
        peer = receiver.received[0].peer
        self.assertIsInstance(peer, PeerInfo)
        self.assertEqual(peer.transport, "mllp")
        self.assertTrue(peer.address.startswith("127.0.0.1:"))
        stats = source.stats()
        self.assertEqual((stats["frames_received"], stats["connections_open"]), (2, 1))

    @defer.inlineCallbacks
    def test_one_peer_description_per_connection(self):
        """If two connections each send two frames, then the engine is given one PeerInfo
        per connection, the same object for both of its frames, each naming its own
        address; a connection closed and opened again gets a new one."""
        receiver = FakeReceiver()
        source = yield self.listening(receiver)
        first, second = self.client(source), self.client(source)
        for client in (first, second, first, second):
            yield client.send(message("P"))
        peers = [r.peer for r in receiver.received]
        self.assertIs(peers[0], peers[2])
        self.assertIs(peers[1], peers[3])
        self.assertNotEqual(peers[0].address, peers[1].address)
        yield first.close()
        yield wait_until(reactor, lambda: source.stats()["connections_open"] == 1,
                         "the first connection is closed")
        third = self.client(source)
        yield third.send(message("Q"))
        self.assertNotIn(receiver.received[-1].peer, peers[:2])
        self.assertEqual(len(source._peer_infos), 2)  # the closed one's is forgotten

    @defer.inlineCallbacks
    def test_receiver_raising_is_answered_with_a_reject(self):
        """If the engine raises instead of answering, then the frame is rejected (AR 207)
        and the source, having counted it answered, stops at once."""
        class Raising(FakeReceiver):
            def receive(self, channel, payload, peer):
                raise RuntimeError("broken")

        source = yield self.listening(Raising())
        ack = parse_ack((yield self.client(source).send(message("R"))))
        self.assertEqual((ack.code, ack.error_codes), ("AR", (207,)))
        self.assertEqual(source._outstanding, 0)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)  # logged with the AR

    @defer.inlineCallbacks
    def test_acks_keep_arrival_order_when_the_engine_answers_out_of_order(self):
        """If three frames arrive at once and are stored in reverse, then ACKs keep order."""
        receiver = FakeReceiver(hold=True)
        source = yield self.listening(receiver)
        raw = yield self.raw(source)
        raw.transport.write(b"".join(encode_frame(message(c)) for c in ("A", "B", "C")))
        yield wait_until(reactor, lambda: len(receiver.pending) == 3, "three frames are held")
        for index in (2, 1, 0):
            receiver.answer(index)
        frames = yield raw.frames_after(3)
        self.assertEqual([parse_ack(f).control_id_echoed for f in frames], ["A", "B", "C"])

    @defer.inlineCallbacks
    def test_oversized_frame_is_rejected_recorded_and_the_connection_closed(self):
        """If a frame exceeds max_frame_size, then reject() gets its prefix and we hang up."""
        receiver = FakeReceiver()
        source = yield self.listening(receiver, max_frame_size=1024)
        raw = yield self.raw(source)
        big = message("BIG") + b"NTE|1||" + b"x" * 2000 + b"\r"
        raw.transport.write(encode_frame(message("OK")) + encode_frame(big))
        yield raw.closed
        acks = [parse_ack(frame) for frame in raw.frames]
        self.assertEqual([(a.code, a.control_id_echoed) for a in acks],
                         [("AA", "OK"), ("AR", "BIG")])
        self.assertEqual(read_header(raw.frames[1]).control_id, "ACK701")  # the record's id
        self.assertEqual(len(receiver.rejected), 1)
        rejected = receiver.rejected[0]
        self.assertEqual(rejected.channel, "adt")
        self.assertTrue(big.startswith(rejected.payload[:100]))
        self.assertIn("maximum frame size of 1024 bytes", rejected.error)
        self.assertEqual(source.stats()["oversized_frames"], 1)

    @defer.inlineCallbacks
    def test_stop_answers_frames_already_read_before_closing(self):
        """If stop() is called while a frame awaits the store, then it is ACKed, then closed."""
        receiver = FakeReceiver(hold=True)
        source = yield self.listening(receiver)
        raw = yield self.raw(source)
        raw.transport.write(encode_frame(message("LATE")))
        yield wait_until(reactor, lambda: receiver.pending, "the frame is held")
        stopped = source.stop()
        yield task.deferLater(reactor, 0.05, lambda: None)  # time to close, were it not waiting
        self.assertFalse(stopped.called)
        self.assertFalse(raw.closed.called)
        receiver.answer(0)
        yield stopped
        yield raw.closed
        self.assertEqual([parse_ack(f).control_id_echoed for f in raw.frames], ["LATE"])
        self.assertEqual(source.stats()["connections_open"], 0)

    @defer.inlineCallbacks
    def test_stop_refuses_new_connections(self):
        source = yield self.listening(FakeReceiver())
        yield source.stop()
        client = self.client(source)
        yield self.assertFailure(client.send(message("X")), Exception)


class MutualTLSTests(unittest.TestCase):
    timeout = 10

    @defer.inlineCallbacks
    def test_client_certificate_subject_reaches_the_receiver(self):
        """If a client presents a certificate, then PeerInfo carries its subject."""
        directory = tempfile.mkdtemp(prefix="aiguillage-channels-")
        self.addCleanup(shutil.rmtree, directory, ignore_errors=True)
        pki = mllp_tls.make_pki(Path(directory))
        receiver = FakeReceiver()
        source = MLLPSource("adt", "adt", {
            "port": 0, "tls_cert": pki["server_cert"], "tls_key": pki["server_key"],
            "tls_ca": pki["ca"], "tls_require_client_cert": True}, receiver, reactor)
        yield source.start()
        self.addCleanup(source.stop)
        destination = MLLPDestination("lab", "adt", 0, {
            "host": "localhost", "port": source.port, "tls": True, "tls_ca": pki["ca"],
            "tls_cert": pki["client_cert"], "tls_key": pki["client_key"]}, reactor)
        self.addCleanup(destination.stop)
        outcome = yield destination.send(message("T1"), DeliveryContext(
            "adt", 1, 1, "T1", "ADT^A01", 1))
        self.assertEqual(outcome.detail, "AA")
        peer = receiver.received[0].peer
        self.assertEqual(peer.transport, "mllp+tls")
        self.assertIn("CN=sender-app", peer.client_certificate)


@pytest.mark.parametrize("options, complaint", [
    ({"port": 0, "tls_cert": "/c.pem"}, "tls_cert and tls_key go together"),
    ({"port": 0, "tls_ca": "/ca.pem"}, "need tls_cert and tls_key"),
    ({"port": 0, "tls_cert": "/c.pem", "tls_key": "/k.pem", "tls_require_client_cert": True},
     "tls_require_client_cert needs tls_ca"),
    ({"port": 0, "tls_cert": "/missing.pem", "tls_key": "/missing.key"},
     "cannot load TLS files"),
    ({"port": 0, "max_pending": 0}, "max_pending must be more than 0"),
    ({"port": 0, "idle_timeout": 0}, "idle_timeout must be more than 0"),
    ({}, 'missing required option "port"'),
    ({"port": 0, "max_pending_bytes": 0}, "max_pending_bytes must be more than 0"),
    ({"port": 0, "max_connections_per_peer": 0}, "max_connections_per_peer must be more"),
    ({"port": 0, "unreadable_window": 0}, "unreadable_window must be more than 0"),
    ({"port": 0, "allow_from": ["10.0.0.0/8", "the lab"]},
     "allow_from: 'the lab' is not an IP address or network"),
    ({"port": 0, "tls_allow_subjects": ["CN=lab"]}, "tls_allow_subjects needs TLS"),
])
def test_bad_options_are_refused_at_build_time(options, complaint):
    """If the options cannot work, then building the source says why, naming it."""
    with pytest.raises(ValueError, match=complaint) as raised:
        MLLPSource("adt", "adt", options, FakeReceiver(), reactor)
    assert str(raised.value).startswith('source "adt" (mllp): ')
