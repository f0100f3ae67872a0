"""Hostile peers against the ACK written straight on the socket (mllp.sendnow), through the
whole server protocol on real loopback sockets: a peer that stops reading while it pipelines
frames (the kernel takes part of an ACK, Twisted buffers the rest, later ACKs queue behind
it), answers that come back out of order, a peer that goes away while ACKs are owed, a
peer that half-closes and waits for its ACKs."""
from __future__ import annotations

from twisted.internet import defer, protocol, reactor, task
from twisted.trial.unittest import TestCase

from mllp.framing import FrameDecoder, encode_frame
from mllp.protocol import MLLPServerFactory

ACK_PAD = 40_000  # bytes of each ACK: a handful fill the socket buffers


class _Sink:
    """Answers frame n with an ACK naming n; odd frames a reactor turn later, so that the
    answers are ready out of order and the connection's queue must hold them back."""

    def __init__(self):
        self.answered = 0
        self.all_answered = None
        self.expected = None

    def receive(self, payload, peer):
        number = payload.split(b"|")[1]
        ack = b"MSH|^~\\&|ACK|" + number + b"|" + b"x" * ACK_PAD + b"\rMSA|AA|" + number + b"\r"
        if int(number) % 2:
            return task.deferLater(reactor, 0, self._count, ack)
        return self._count(ack)

    def _count(self, ack):
        self.answered += 1
        if self.answered == self.expected and self.all_answered is not None:
            self.all_answered.callback(None)
        return ack

    def frame_error(self, peer, error, prefix):
        return None


class _Peer(protocol.Protocol):
    """Sends every frame at once, reads nothing until told."""

    def __init__(self, frames):
        self.frames = frames
        self.decoder = FrameDecoder(10_000_000)
        self.acks = []
        self.waiter = defer.Deferred()
        self.expected = 0

    def connectionMade(self):
        self.transport.pauseProducing()  # stop reading: the server's writes back up
        self.transport.write(b"".join(encode_frame(f) for f in self.frames))

    def dataReceived(self, data):
        self.acks += self.decoder.feed(data)
        if len(self.acks) >= self.expected and not self.waiter.called:
            self.waiter.callback(self.acks)


def _frame(number: int) -> bytes:
    return f"MSH|{number}|^~\\&|A|B|C|D|2024||ADT^A01|{number}|P|2.5\r".encode()


class HostilePeerTests(TestCase):
    def listen(self, sink):
        factory = MLLPServerFactory(sink, idle_timeout=None, max_pending=10_000,
                                    max_pending_bytes=10**9)
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return factory, port.getHost().port

    @defer.inlineCallbacks
    def closed(self, factory):
        while factory.connections_open:
            yield task.deferLater(reactor, 0.01, lambda: None)

    @defer.inlineCallbacks
    def test_a_peer_that_stops_reading_gets_every_ack_in_order(self):
        count = 200  # about 8 MB of ACKs behind a peer that reads nothing
        sink = _Sink()
        sink.expected, sink.all_answered = count, defer.Deferred()
        factory, port = self.listen(sink)
        peer = _Peer([_frame(n) for n in range(count)])
        peer.expected = count
        creator = protocol.ClientCreator(reactor, lambda: peer)
        yield creator.connectTCP("127.0.0.1", port)
        yield sink.all_answered  # every ACK written or buffered while the peer read nothing
        peer.transport.resumeProducing()
        acks = yield peer.waiter
        self.assertEqual([a.rsplit(b"|", 1)[1] for a in acks],
                         [f"{n}\r".encode() for n in range(count)])
        self.assertTrue(all(len(a) > ACK_PAD for a in acks))
        peer.transport.loseConnection()
        yield self.closed(factory)

    @defer.inlineCallbacks
    def test_a_peer_gone_while_acks_are_owed_leaves_no_error(self):
        """Half the answers come after the peer reset the connection, half before, some of
        them only partly taken by the kernel: nothing is logged as an error (trial fails a
        test that logs one) and the connection is counted closed."""
        count = 100
        sink = _Sink()
        sink.expected, sink.all_answered = count, defer.Deferred()
        factory, port = self.listen(sink)
        peer = _Peer([_frame(n) for n in range(count)])
        creator = protocol.ClientCreator(reactor, lambda: peer)
        yield creator.connectTCP("127.0.0.1", port)
        while sink.answered < count // 2:
            yield task.deferLater(reactor, 0, lambda: None)
        peer.transport.abortConnection()
        yield sink.all_answered
        yield self.closed(factory)
        self.assertEqual(factory.connections_open, 0)


class _HalfClosing(protocol.Protocol):
    """Sends its frames, shuts its sending side down at once, then reads until closed."""

    def __init__(self, frames):
        self.frames = frames
        self.decoder = FrameDecoder(10_000_000)
        self.acks = []
        self.closed = defer.Deferred()

    def connectionMade(self):
        self.transport.write(b"".join(encode_frame(f) for f in self.frames))
        self.transport.loseWriteConnection()

    def dataReceived(self, data):
        self.acks += self.decoder.feed(data)

    def connectionLost(self, reason=None):
        self.closed.callback(self.acks)


class _Later:
    """Answers every frame a moment later, as a store's commit does."""

    def receive(self, payload, peer):
        number = payload.split(b"|")[1]
        return task.deferLater(reactor, 0.05, lambda: b"MSH|^~\\&|ACK\rMSA|AA|" + number + b"\r")

    def frame_error(self, peer, error, prefix):
        return None


class HalfCloseTests(TestCase):
    @defer.inlineCallbacks
    def test_a_peer_that_half_closes_gets_its_acks_then_the_close(self):
        """A sender that shuts its side down after its last frame (``nc -N``, a script's
        ``shutdown(SHUT_WR)``) and waits: its messages were taken (and committed), so it is
        owed their ACKs; they come, in order, then the server closes."""
        factory = MLLPServerFactory(_Later(), idle_timeout=None)
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        peer = _HalfClosing([_frame(n) for n in range(5)])
        yield protocol.ClientCreator(reactor, lambda: peer).connectTCP(
            "127.0.0.1", port.getHost().port)
        acks = yield peer.closed
        self.assertEqual([a.rsplit(b"|", 1)[1] for a in acks],
                         [f"{n}\r".encode() for n in range(5)])

    @defer.inlineCallbacks
    def test_a_half_close_with_nothing_owed_closes_at_once(self):
        factory = MLLPServerFactory(_Later(), idle_timeout=None)
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        peer = _HalfClosing([])
        yield protocol.ClientCreator(reactor, lambda: peer).connectTCP(
            "127.0.0.1", port.getHost().port)
        self.assertEqual((yield peer.closed), [])
