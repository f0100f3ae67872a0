"""
The ``mllp`` destination against a real MLLP server on loopback, answering as a peer would.

test-case-name: tests.channels.test_mllp_destination
"""
from __future__ import annotations

import socket

import pytest
from twisted.internet import defer, reactor
from twisted.trial import unittest

from channels.mllp_destination import MLLPDestination, describe_ack
from engine.interfaces import DeliveryContext, DeliveryFailed, DeliveryOutcome
from mllp.ack import AckResult
from mllp.protocol import MLLPServerFactory
from tests.channels.fakes import message, wait_until

ACK = b"MSH|^~\\&|LAB|LABO|SENDER|HOSP|20240102030406||ACK^A01^ACK|A1|P|2.5\r"


def answer(code: str, control_id: str, text: str = "", err: str = "") -> bytes:
    """An ACK as a peer writes it: MSA code, echoed control id, text, optional ERR-3 code."""
    ack = ACK + f"MSA|{code}|{control_id}|{text}\r".encode()
    if err:
        ack += f"ERR||PID^1^3|{err}^Unknown key identifier^HL70357|E\r".encode()
    return ack


class ScriptedPeer:
    """An MLLP sink answering each frame with what ``script(payload)`` returns."""

    def __init__(self, script):
        self.script = script
        self.received: list[bytes] = []

    def receive(self, payload, peer):
        self.received.append(payload)
        return defer.succeed(self.script(payload))

    def frame_error(self, peer, error, prefix):
        return None


def context(control_id: str | None = "C1") -> DeliveryContext:
    return DeliveryContext("adt", message_id=1, delivery_id=1, control_id=control_id,
                           message_type="ADT^A01", attempt=1)


class MLLPDestinationTests(unittest.TestCase):
    timeout = 10

    def peer(self, script):
        """A listening MLLP peer's factory, with ``.port``; cleanup waits for it to be left."""
        factory = MLLPServerFactory(ScriptedPeer(script), clock=reactor, idle_timeout=5)
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.addCleanup(wait_until, reactor, lambda: factory.connections_open == 0,
                        "the peer's connections are closed")
        factory.port = port.getHost().port
        return factory

    def destination(self, port: int, lane: int = 0, **options) -> MLLPDestination:
        destination = MLLPDestination("lab", "adt", lane, {
            "host": "127.0.0.1", "port": port, "connect_timeout": 2, "ack_timeout": 2,
            **options}, reactor)
        destination.start()
        self.addCleanup(destination.stop)
        return destination

    @defer.inlineCallbacks
    def failure_for(self, ack: bytes) -> DeliveryFailed:
        """The DeliveryFailed for sending C1 to a peer answering ``ack``."""
        peer = self.peer(lambda payload: ack)
        self.address = f"127.0.0.1:{peer.port}"
        sent = self.destination(peer.port).send(message("C1"), context("C1"))
        failed = yield self.assertFailure(sent, DeliveryFailed)
        self.assertEqual(failed.response, ack)
        return failed

    @defer.inlineCallbacks
    def test_aa_is_a_delivery_carrying_the_ack(self):
        """If the peer answers AA echoing MSH-10, then the outcome holds the ACK."""
        ack = answer("AA", "C1")
        peer = self.peer(lambda payload: ack)
        outcome = yield self.destination(peer.port).send(message("C1"), context())
        self.assertEqual(outcome, DeliveryOutcome(response=ack, detail="AA"))
        self.assertEqual(peer.sink.received, [message("C1")])

    @defer.inlineCallbacks
    def test_aa_with_a_malformed_escape_is_a_delivery(self):
        """If an AA's MSA-3 or ERR-8 holds a malformed escape (\\XZZ\\, \\X-1\\), then it is
        still a delivery carrying the ACK, not a failure retried to the limit."""
        for ack in (answer("AA", "C1", "\\XZZ\\"),
                    answer("AA", "C1") + b"ERR||||I||||\\X-1\\\r"):
            peer = self.peer(lambda payload, ack=ack: ack)
            outcome = yield self.destination(peer.port).send(message("C1"), context())
            self.assertEqual(outcome, DeliveryOutcome(response=ack, detail="AA"))

    @defer.inlineCallbacks
    def test_ca_is_a_delivery_too(self):
        peer = self.peer(lambda payload: answer("CA", "C1"))
        outcome = yield self.destination(peer.port).send(message("C1"), context())
        self.assertEqual(outcome.detail, "CA")

    @defer.inlineCallbacks
    def test_ae_is_retryable_and_says_what_the_peer_said(self):
        """If the peer answers AE, then the failure is retryable with code, text and ERR."""
        failed = yield self.failure_for(answer("AE", "C1", "unknown patient", "204"))
        self.assertTrue(failed.retryable)
        self.assertEqual(failed.reason, f"{self.address} answered AE: unknown patient (ERR 204)")

    @defer.inlineCallbacks
    def test_ar_is_not_retryable(self):
        """If the peer rejects with AR, then the engine is told not to retry."""
        failed = yield self.failure_for(answer("AR", "C1", "unsupported event", "201"))
        self.assertFalse(failed.retryable)
        self.assertIn("answered AR: unsupported event (ERR 201)", failed.reason)

    @defer.inlineCallbacks
    def test_cr_is_not_retryable(self):
        failed = yield self.failure_for(answer("CR", "C1"))
        self.assertFalse(failed.retryable)

    @defer.inlineCallbacks
    def test_ack_for_another_message_is_a_retryable_failure(self):
        """If MSA-2 names another control id, then the delivery is not counted as done."""
        failed = yield self.failure_for(answer("AA", "OTHER"))
        self.assertTrue(failed.retryable)
        self.assertIn("ACK answers control id 'OTHER', expected 'C1'", failed.reason)

    @defer.inlineCallbacks
    def test_empty_msa2_on_a_reject_is_judged_by_its_code(self):
        """If the peer could not read our MSH and rejects, then the AR stands."""
        failed = yield self.failure_for(answer("AR", "", "no MSH"))
        self.assertFalse(failed.retryable)

    @defer.inlineCallbacks
    def test_empty_msa2_on_an_accept_confirms_nothing(self):
        failed = yield self.failure_for(answer("AA", ""))
        self.assertTrue(failed.retryable)
        self.assertIn("control id ''", failed.reason)

    @defer.inlineCallbacks
    def test_garbage_answer_is_a_retryable_failure(self):
        """If the peer answers something that is not an ACK, then we retry later."""
        failed = yield self.failure_for(b"hello, this is not HL7")
        self.assertTrue(failed.retryable)
        self.assertIn("unreadable ACK", failed.reason)

    @defer.inlineCallbacks
    def test_unknown_ack_code_is_a_retryable_failure(self):
        failed = yield self.failure_for(answer("ZZ", "C1"))
        self.assertTrue(failed.retryable)
        self.assertIn("unknown acknowledgment code 'ZZ'", failed.reason)

    @defer.inlineCallbacks
    def test_no_control_id_in_context_skips_the_echo_check(self):
        peer = self.peer(lambda payload: answer("AA", "C1"))
        outcome = yield self.destination(peer.port).send(message("C1"), context(None))
        self.assertEqual(outcome.detail, "AA")

    @defer.inlineCallbacks
    def test_closed_port_is_a_retryable_failure_naming_the_address(self):
        """If nothing listens, then the failure is retryable and names host:port."""
        port = _closed_port()
        sent = self.destination(port).send(message("C1"), context())
        failed = yield self.assertFailure(sent, DeliveryFailed)
        self.assertTrue(failed.retryable)
        self.assertIn(f"127.0.0.1:{port}: cannot connect", failed.reason)

    @defer.inlineCallbacks
    def test_peer_back_is_used_at_the_next_attempt(self):
        """If the peer was down at one attempt and listens at the next, then the next
        attempt goes through at once: the lane's retry policy alone sets the waits, the
        client adds no reconnect backoff of its own."""
        held = socket.socket()
        held.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        port = held.getsockname()[1]
        destination = self.destination(port)
        yield self.assertFailure(destination.send(message("C1"), context("C1")),
                                 DeliveryFailed)
        held.close()
        factory = MLLPServerFactory(ScriptedPeer(lambda p: answer("AA", "C1")), clock=reactor,
                                    idle_timeout=5)
        listening = reactor.listenTCP(port, factory, interface="127.0.0.1")
        self.addCleanup(listening.stopListening)
        self.addCleanup(wait_until, reactor, lambda: factory.connections_open == 0,
                        "the peer's connections are closed")
        started = reactor.seconds()
        outcome = yield destination.send(message("C1"), context("C1"))
        self.assertIsInstance(outcome, DeliveryOutcome)
        self.assertLess(reactor.seconds() - started, 0.4)
        yield destination.stop()

    @defer.inlineCallbacks
    def test_silent_peer_times_out_retryably(self):
        """If no ACK comes within ack_timeout, then the failure is retryable."""
        peer = self.peer(lambda payload: None)
        peer.sink.receive = lambda payload, who: defer.Deferred()  # never answers
        sent = self.destination(peer.port, ack_timeout=0.2).send(message("C1"), context())
        failed = yield self.assertFailure(sent, DeliveryFailed)
        self.assertTrue(failed.retryable)
        self.assertIn("no ACK within 0.2 s", failed.reason)

    @defer.inlineCallbacks
    def test_payload_mllp_cannot_carry_is_refused_for_good(self):
        """If the payload holds a frame byte, then retrying can never help."""
        sent = self.destination(_closed_port()).send(b"MSH|\x1c|", context())
        failed = yield self.assertFailure(sent, DeliveryFailed)
        self.assertFalse(failed.retryable)

    @defer.inlineCallbacks
    def test_each_lane_has_its_own_connection(self):
        """If two lanes send at once, then the peer sees two connections."""
        peer = self.peer(lambda payload: answer("AA", payload.split(b"|")[9].decode()))
        first, second = self.destination(peer.port, 0), self.destination(peer.port, 1)
        outcomes = yield defer.gatherResults([
            first.send(message("C1"), context("C1")), second.send(message("C2"), context("C2"))])
        self.assertEqual([o.detail for o in outcomes], ["AA", "AA"])
        self.assertEqual(peer.connections_open, 2)


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_describe_ack_lists_code_text_and_error_codes():
    assert describe_ack(AckResult("AE", "C1", "bad PID", (204, 103))) == \
        "AE: bad PID (ERR 204, 103)"
    assert describe_ack(AckResult("AR", "C1", "")) == "AR"


@pytest.mark.parametrize("options, complaint", [
    ({"tls_ca": "/ca.pem"}, "tls_ca set but tls is false"),
    ({"tls": True, "tls_cert": "/c.pem"}, "tls_cert and tls_key go together"),
    ({"tls": True, "tls_ca": "/missing.pem"}, "cannot load TLS files"),
    ({"ack_timeout": 0}, "ack_timeout must be more than 0"),
    ({"port": None}, 'missing required option "port"'),
])
def test_bad_options_are_refused_at_build_time(options, complaint):
    with pytest.raises(ValueError, match=complaint) as raised:
        MLLPDestination("lab", "adt", 0, {"host": "h", "port": 1, **options}, reactor)
    assert str(raised.value).startswith('destination "lab" (mllp): ')
