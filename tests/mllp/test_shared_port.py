"""A port shared by several listeners (SO_REUSEPORT): binding, spreading, TLS.

Two listeners in one process stand for two processes: the kernel spreads connections across
sockets bound with the option whichever process holds them.
"""
from __future__ import annotations

import shutil
import socket
import tempfile
from pathlib import Path

import pytest
from twisted.internet import defer, reactor
from twisted.trial import unittest

from mllp.ack import parse_ack
from mllp.client import MLLPClient
from mllp.protocol import MLLPServerFactory
from mllp.shared_port import bound_socket, listen_shared, reuse_port_supported
from mllp.tls import client_tls_options, server_tls_options
from tests.mllp.test_tls import MESSAGE, AckingSink, make_pki

needs_reuse_port = pytest.mark.skipif(not reuse_port_supported(),
                                      reason="SO_REUSEPORT is Linux/BSD only")


@needs_reuse_port
def test_two_sockets_bind_one_port() -> None:
    """If two sockets bind the same port with the option, then both listen on it."""
    first = bound_socket("127.0.0.1", 0)
    port = first.getsockname()[1]
    with first, bound_socket("127.0.0.1", port) as second:
        assert second.getsockname()[1] == port
        assert first.getblocking() is False and second.getblocking() is False


@needs_reuse_port
def test_a_port_held_without_the_option_is_refused() -> None:
    """If a plain listener holds the port, then binding beside it fails with OSError (the
    engine reports it as a port in use), and no socket is left open."""
    with socket.socket() as plain:
        plain.bind(("127.0.0.1", 0))
        plain.listen(1)
        with pytest.raises(OSError):
            bound_socket("127.0.0.1", plain.getsockname()[1])


@needs_reuse_port
class SharedPortTests(unittest.TestCase):
    """Real loopback connections to two listeners on one port."""

    timeout = 30

    def setUp(self):
        directory = tempfile.mkdtemp(prefix="aiguillage-shared-")
        self.addCleanup(shutil.rmtree, directory, ignore_errors=True)
        self.pki = make_pki(Path(directory))

    def client(self, port, tls=None):
        return MLLPClient.for_address(reactor, "127.0.0.1" if tls is None else "localhost",
                                      port, tls, connect_timeout=5, ack_timeout=5)

    def listen_twice(self, tls=None) -> tuple[int, list[MLLPServerFactory]]:
        sinks = [AckingSink() for _ in range(2)]
        factories = [MLLPServerFactory(sink, idle_timeout=10, clock=reactor) for sink in sinks]
        self.sinks = sinks
        first = listen_shared(reactor, "127.0.0.1", 0, factories[0], tls)
        self.addCleanup(first.stopListening)
        port = first.getHost().port
        second = listen_shared(reactor, "127.0.0.1", port, factories[1], tls)
        self.addCleanup(second.stopListening)
        return port, factories

    @defer.inlineCallbacks
    def test_connections_spread_over_both_listeners(self):
        """If 40 senders connect to the shared port, then both listeners accept some and every
        message is acknowledged."""
        port, factories = self.listen_twice()
        clients = [self.client(port) for _ in range(40)]
        acks = yield defer.gatherResults([c.send(MESSAGE.replace(b"{cid}", b"c%d" % i))
                                          for i, c in enumerate(clients)])
        self.assertEqual([parse_ack(a).control_id_echoed for a in acks],
                         [f"c{i}" for i in range(40)])
        counts = [len(s.peers) for s in self.sinks]
        self.assertEqual(sum(counts), 40)
        self.assertTrue(all(counts), counts)
        yield defer.gatherResults([c.close() for c in clients])

    @defer.inlineCallbacks
    def test_mutual_tls_on_a_shared_port(self):
        """If the shared port carries mutual TLS, then a client with a certificate from the CA
        is acknowledged and its subject reported, whichever listener took it."""
        pki = self.pki
        tls = server_tls_options(pki["server_cert"], pki["server_key"], pki["ca"], True)
        port, factories = self.listen_twice(tls)
        client = self.client(port, client_tls_options(
            "localhost", pki["ca"], pki["client_cert"], pki["client_key"]))
        ack = yield client.send(MESSAGE.replace(b"{cid}", b"t1"))
        self.assertEqual(parse_ack(ack).control_id_echoed, "t1")
        peers = [p for s in self.sinks for p in s.peers]
        self.assertEqual(len(peers), 1)
        self.assertIn("sender-app", peers[0].client_certificate)
        yield client.close()
