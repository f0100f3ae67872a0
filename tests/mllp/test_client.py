"""Tests for mllp.client's state machine with MemoryReactorClock and StringTransport."""
from __future__ import annotations

import pytest
from twisted.internet import endpoints
from twisted.internet.error import ConnectionDone, ConnectionRefusedError
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure

from mllp.client import (
    AckTimeout,
    ClientClosed,
    ConnectFailed,
    ConnectionLostBeforeAck,
    ConnectTimeout,
    MLLPClient,
)
from mllp.framing import FrameDecoder, encode_frame


class Harness:
    """A client on a MemoryReactorClock; the test plays the network and the peer."""

    def __init__(self, **options):
        self.reactor = MemoryReactorClock()
        endpoint = endpoints.TCP4ClientEndpoint(self.reactor, "10.0.0.9", 2575)
        options.setdefault("connect_timeout", 5)
        options.setdefault("ack_timeout", 10)
        self.client = MLLPClient(endpoint, clock=self.reactor, **options)
        self.protocol = None
        self.transport = None

    @property
    def attempts(self) -> int:
        return len(self.reactor.tcpClients)

    def accept(self):
        """Complete the latest connection attempt."""
        factory = self.reactor.tcpClients[-1][2]
        self.protocol = factory.buildProtocol(None)
        self.transport = StringTransport()
        self.protocol.makeConnection(self.transport)

    def refuse(self):
        factory = self.reactor.tcpClients[-1][2]
        factory.clientConnectionFailed(None, Failure(ConnectionRefusedError()))

    def sent(self) -> list[bytes]:
        return FrameDecoder().feed(self.transport.value())

    def answer(self, ack: bytes):
        self.protocol.dataReceived(encode_frame(ack))

    def lose(self):
        self.protocol.connectionLost(Failure(ConnectionDone()))


def results(deferred):
    out = []
    deferred.addBoth(out.append)
    return out


def test_connects_lazily_and_returns_the_ack():
    """If a message is sent, then the client connects, writes one frame and returns the ACK."""
    h = Harness()
    assert h.attempts == 0
    got = results(h.client.send(b"MSH|1"))
    assert h.attempts == 1
    h.accept()
    assert h.sent() == [b"MSH|1"]
    h.answer(b"ACK|1")
    assert got == [b"ACK|1"]
    assert h.client.connected


def test_one_message_at_a_time_in_order():
    """If three sends are queued, then each is written only after the previous ACK."""
    h = Harness()
    got = [results(h.client.send(b"m%d" % i)) for i in range(3)]
    h.accept()
    assert h.sent() == [b"m0"]
    h.answer(b"a0")
    assert h.sent() == [b"m0", b"m1"]
    h.answer(b"a1")
    h.answer(b"a2")
    assert [g[0] for g in got] == [b"a0", b"a1", b"a2"]
    assert h.attempts == 1


def test_ack_timeout_drops_connection_and_late_ack_is_ignored():
    """If no ACK comes in time, then the send fails, the connection is dropped, and a late
    ACK is not given to the next message."""
    h = Harness(reconnect_initial=1)
    first = results(h.client.send(b"m1"))
    second = results(h.client.send(b"m2"))
    h.accept()
    old_protocol = h.protocol
    h.reactor.advance(10)
    assert first[0].check(AckTimeout)
    assert h.transport.disconnecting
    old_protocol.dataReceived(encode_frame(b"late ack for m1"))
    assert second == []
    h.reactor.advance(1)  # backoff before reconnecting
    assert h.attempts == 2
    h.accept()
    assert h.sent() == [b"m2"]
    h.answer(b"a2")
    assert second == [b"a2"]


def test_connection_refused_then_backoff():
    """If connecting fails, then that send fails and the next waits an exponential backoff."""
    h = Harness(reconnect_initial=0.5, reconnect_max=1.5)
    first = results(h.client.send(b"m1"))
    h.refuse()
    assert first[0].check(ConnectFailed) and not first[0].check(ConnectTimeout)
    second = results(h.client.send(b"m2"))
    assert h.attempts == 1
    h.reactor.advance(0.49)
    assert h.attempts == 1
    h.reactor.advance(0.01)
    assert h.attempts == 2
    h.refuse()
    assert second[0].check(ConnectFailed)
    results(h.client.send(b"m3"))
    h.reactor.advance(0.99)
    assert h.attempts == 2
    h.reactor.advance(0.01)
    assert h.attempts == 3
    h.refuse()
    results(h.client.send(b"m4"))
    h.reactor.advance(1.49)  # capped at reconnect_max
    assert h.attempts == 3
    h.reactor.advance(0.01)
    assert h.attempts == 4


def test_success_resets_backoff():
    """If an ACK arrives after failures, then the next failure waits the initial delay again."""
    h = Harness(reconnect_initial=1, reconnect_max=60)
    for _ in range(3):
        results(h.client.send(b"m"))
        h.reactor.advance(60)
        h.refuse()
    results(h.client.send(b"ok"))
    h.reactor.advance(60)
    h.accept()
    h.answer(b"ack")
    h.lose()
    results(h.client.send(b"again"))
    assert h.attempts == 5  # idle close by the peer: reconnect at once, no backoff
    h.refuse()
    results(h.client.send(b"after"))
    h.reactor.advance(1)
    assert h.attempts == 6


def test_connect_timeout():
    """If the connection is not established in time, then the send fails with ConnectTimeout."""
    h = Harness(connect_timeout=5)
    got = results(h.client.send(b"m1"))
    h.reactor.advance(5)
    assert got[0].check(ConnectTimeout)
    assert h.reactor.connectors[-1].stoppedConnecting


def test_connection_lost_before_ack():
    """If the peer closes after the frame was written, then the send fails with
    ConnectionLostBeforeAck and the next send reconnects."""
    h = Harness(reconnect_initial=0.1)
    first = results(h.client.send(b"m1"))
    h.accept()
    h.lose()
    assert first[0].check(ConnectionLostBeforeAck)
    assert not h.client.connected
    second = results(h.client.send(b"m2"))
    h.reactor.advance(0.1)
    h.accept()
    h.answer(b"a2")
    assert second == [b"a2"]


def test_oversized_answer_drops_connection():
    """If the peer's answer exceeds max_frame_size, then the send fails and the link drops."""
    h = Harness(max_frame_size=8)
    got = results(h.client.send(b"m1"))
    h.accept()
    h.protocol.dataReceived(b"\x0b" + b"x" * 9)
    assert got[0].check(ConnectionLostBeforeAck)
    assert h.transport.disconnecting


def test_unsolicited_frame_is_ignored():
    """If the peer sends a frame while nothing is in flight, then it is not matched later."""
    h = Harness()
    results(h.client.send(b"m1"))
    h.accept()
    h.answer(b"a1")
    h.answer(b"stray")
    got = results(h.client.send(b"m2"))
    assert got == []
    h.answer(b"a2")
    assert got == [b"a2"]


def test_refuses_unframeable_payload():
    """If a payload holds FS, then send fails at once without connecting."""
    h = Harness()
    got = results(h.client.send(b"bad\x1c"))
    assert got[0].check(ValueError) and h.attempts == 0


def test_close_fails_queued_and_disconnects():
    """If the client is closed, then queued sends fail with ClientClosed and it disconnects."""
    h = Harness()
    first = results(h.client.send(b"m1"))
    second = results(h.client.send(b"m2"))
    h.accept()
    closed = results(h.client.close())
    assert first[0].check(ClientClosed) and second[0].check(ClientClosed)
    assert h.transport.disconnecting and closed == []
    h.lose()
    assert closed == [None]
    assert results(h.client.send(b"m3"))[0].check(ClientClosed)


def test_close_while_connecting():
    """If the client is closed while a connection is being opened, then the attempt stops."""
    h = Harness()
    got = results(h.client.send(b"m1"))
    assert results(h.client.close()) == [None]
    assert got[0].check(ClientClosed)
    assert h.reactor.connectors[-1].stoppedConnecting
    assert h.reactor.getDelayedCalls() == []


def test_cancelled_send_does_not_break_the_queue():
    """If a caller cancels its send, then its ACK is still consumed and the next send works."""
    h = Harness()
    first = h.client.send(b"m1")
    first.addErrback(lambda failure: None)
    first.cancel()
    second = results(h.client.send(b"m2"))
    h.accept()
    h.answer(b"a1")
    h.answer(b"a2")
    assert second == [b"a2"]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_for_address_builds_an_endpoint(host):
    """If a client is made for an address, then it connects there on first send."""
    reactor = MemoryReactorClock()
    client = MLLPClient.for_address(reactor, host, 2575, connect_timeout=3)
    results(client.send(b"m"))
    reactor.advance(0)
    assert client.clock is reactor and client.connect_timeout == 3
    assert reactor.tcpClients or reactor.getDelayedCalls()


def test_endpoint_failing_synchronously():
    """If the endpoint fails at once, then the send fails and no connect timer is left over."""
    class Refusing:
        calls = 0

        def connect(self, factory):
            Refusing.calls += 1
            from twisted.internet import defer
            return defer.fail(ConnectionRefusedError())

    reactor = MemoryReactorClock()
    client = MLLPClient(Refusing(), clock=reactor, reconnect_initial=2)
    got = results(client.send(b"m"))
    assert got[0].check(ConnectFailed)
    assert reactor.getDelayedCalls() == []
    later = results(client.send(b"m2"))
    assert [call.getTime() for call in reactor.getDelayedCalls()] == [2]
    reactor.advance(2)
    assert Refusing.calls == 2 and later[0].check(ConnectFailed)
