"""Tests for mllp.sendnow, on real loopback sockets: bytes sent at once, in order."""
from __future__ import annotations

from twisted.internet import defer, protocol, reactor
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import TestCase

from mllp.sendnow import supported, write_now


class _Collect(protocol.Protocol):
    def __init__(self):
        self.received = b""
        self.waiter = None

    def dataReceived(self, data):
        self.received += data
        if self.waiter is not None and len(self.received) >= self.expected:
            waiter, self.waiter = self.waiter, None
            waiter.callback(self.received)


class _Server(protocol.Protocol):
    def connectionMade(self):
        self.factory.made.callback(self)


class WriteNowTests(TestCase):
    @defer.inlineCallbacks
    def connected(self):
        server_factory = protocol.Factory.forProtocol(_Server)
        server_factory.made = defer.Deferred()
        port = reactor.listenTCP(0, server_factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        client = _Collect()
        creator = protocol.ClientCreator(reactor, lambda: client)
        connection = yield creator.connectTCP("127.0.0.1", port.getHost().port)
        self.addCleanup(connection.transport.loseConnection)
        server = yield server_factory.made
        self.addCleanup(server.transport.loseConnection)
        return server.transport, client

    @defer.inlineCallbacks
    def test_sent_without_waiting_for_the_reactor(self):
        transport, client = yield self.connected()
        self.assertTrue(supported(transport))
        write_now(transport, b"first")
        self.assertEqual(transport.dataBuffer, b"")
        self.assertEqual(transport._tempDataLen, 0)  # nothing left for the next turn
        client.expected, client.waiter = 5, defer.Deferred()
        self.assertEqual((yield client.waiter), b"first")

    @defer.inlineCallbacks
    def test_behind_buffered_bytes_it_is_buffered_in_order(self):
        transport, client = yield self.connected()
        transport.write(b"one,")  # buffered by Twisted until the next turn
        write_now(transport, b"two")
        self.assertEqual(transport._tempDataLen, 7)
        client.expected, client.waiter = 7, defer.Deferred()
        self.assertEqual((yield client.waiter), b"one,two")

    @defer.inlineCallbacks
    def test_what_the_kernel_does_not_take_is_buffered(self):
        transport, client = yield self.connected()
        big = bytes(range(256)) * 40000  # far more than a socket buffer
        write_now(transport, big)
        self.assertGreater(transport._tempDataLen, 0)
        client.expected, client.waiter = len(big), defer.Deferred()
        self.assertEqual((yield client.waiter), big)


def test_other_transports_are_written_as_usual():
    transport = StringTransport()
    assert not supported(transport)
