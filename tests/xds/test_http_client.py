"""The XDS.b client's transport failures over loopback: each an XDSTransportError that says
what went wrong, while a peer's RegistryResponse errors stay a result."""
from __future__ import annotations

from twisted.internet import defer, protocol, reactor
from twisted.internet.task import deferLater
from twisted.protocols.policies import WrappingFactory
from twisted.trial import unittest
from twisted.web import pages, server

from tests.xds.builders import DOCUMENT_BYTES, submission
from tests.xds.fakes import InMemoryXDSHandler
from tests.xds.http_fixtures import http_sender, listen, xds_site
from xds.client.http import XDSTransportError
from xds.client.transactions import XDSClient
from xds.metadata.vocabulary import RESPONSE_FAILURE


class Silent(protocol.Protocol):
    """Accepts a connection and never answers."""


def pnr(client: XDSClient, data: bytes = DOCUMENT_BYTES):
    return client.provide_and_register(submission(), {"Document01": data})


class ClientTests(unittest.TestCase):
    timeout = 30

    def client(self, url: str, **options) -> XDSClient:
        return XDSClient(http_sender(self, **options), repository_url=url)

    @defer.inlineCallbacks
    def test_no_answer_within_the_timeout(self):
        """If the timeout were not applied, then the call would hang until trial's timeout."""
        port = reactor.listenTCP(0, protocol.Factory.forProtocol(Silent), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        url = f"http://127.0.0.1:{port.getHost().port}/repository"
        error = yield self.assertFailure(pnr(self.client(url, timeout=0.5)), XDSTransportError)
        self.assertIn("within 0.5 seconds", str(error))

    @defer.inlineCallbacks
    def test_connection_refused(self):
        """If a refused connection were not a transport error, then callers could not retry."""
        port = reactor.listenTCP(0, protocol.Factory.forProtocol(Silent), interface="127.0.0.1")
        number = port.getHost().port
        yield port.stopListening()
        error = yield self.assertFailure(
            pnr(self.client(f"http://127.0.0.1:{number}/repository")), XDSTransportError)
        self.assertIn(f"127.0.0.1:{number}", str(error))

    @defer.inlineCallbacks
    def test_an_answer_that_is_no_soap_message(self):
        """If a 404 page were read as SOAP, then the error would not name the HTTP status."""
        base = yield listen(self, server.Site(pages.notFound()))
        error = yield self.assertFailure(pnr(self.client(base + "/nowhere")), XDSTransportError)
        self.assertIn("HTTP 404", str(error))

    @defer.inlineCallbacks
    def test_an_answer_over_the_response_limit(self):
        """If the response limit were not applied, then a huge answer would be read whole."""
        base = yield listen(self, xds_site(InMemoryXDSHandler()))
        error = yield self.assertFailure(
            pnr(self.client(base + "/repository", max_response_bytes=100)), XDSTransportError)
        self.assertIn("100-byte limit", str(error))

    @defer.inlineCallbacks
    def test_registry_errors_are_a_result(self):
        """If a Failure status raised, then callers could not read the error codes."""
        base = yield listen(self, xds_site(InMemoryXDSHandler()))
        response = yield pnr(self.client(base + "/repository"), b"not the hashed bytes")
        self.assertEqual(response.status, RESPONSE_FAILURE)
        self.assertTrue(response.errors)

    def test_a_missing_url_is_named(self):
        """If no URL were configured, then the error says which transaction lacks it."""
        client = XDSClient(http_sender(self))
        with self.assertRaises(ValueError) as caught:
            client.stored_query(None)
        self.assertIn("RegistryStoredQuery", str(caught.exception))


class ForeignAnswerTests(unittest.TestCase):
    timeout = 30

    @defer.inlineCallbacks
    def test_an_answer_to_another_request_is_refused(self):
        """If RelatesTo were not checked, then a proxy's mix-up would pass as our answer."""
        class Mixer:
            def __init__(self, sender):
                self.sender = sender

            def send(self, request):
                header = request.envelope[0]
                header.find("{http://www.w3.org/2005/08/addressing}MessageID").text = "urn:x"
                return self.sender.send(request)

        base = yield listen(self, xds_site(InMemoryXDSHandler()))
        client = XDSClient(Mixer(http_sender(self)), repository_url=base + "/repository")
        error = yield self.assertFailure(pnr(client), XDSTransportError)
        self.assertIn("relates to urn:x", str(error))


class Counting(WrappingFactory):
    """A site's factory that counts the connections it accepted."""

    accepted = 0

    def buildProtocol(self, addr):
        self.accepted += 1
        return super().buildProtocol(addr)


class ConnectionReuseTests(unittest.TestCase):
    timeout = 30

    def serve(self):
        site = Counting(xds_site(InMemoryXDSHandler()))
        port = reactor.listenTCP(0, site, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return site, f"http://127.0.0.1:{port.getHost().port}/repository"

    @defer.inlineCallbacks
    def test_sends_one_after_another_share_one_connection(self):
        """If connections were not kept, then five submissions would open five."""
        site, url = self.serve()
        client = XDSClient(http_sender(self), repository_url=url)
        for _ in range(5):
            response = yield pnr(client)
            self.assertTrue(response.succeeded, response.errors)
        self.assertEqual(site.accepted, 1)

    @defer.inlineCallbacks
    def test_concurrent_sends_open_no_more_than_the_bound(self):
        """If the connections per host were not bounded, then twelve submissions in flight
        would open twelve; with two allowed, the others wait for a turn on those two."""
        site, url = self.serve()
        client = XDSClient(http_sender(self, connections_per_host=2), repository_url=url)
        responses = yield defer.gatherResults([pnr(client) for _ in range(12)])
        self.assertEqual([r.succeeded for r in responses], [True] * 12)
        self.assertEqual(site.accepted, 2)

    @defer.inlineCallbacks
    def test_close_closes_the_kept_connections(self):
        """If close() left them open, then the server would still hold the connection."""
        site, url = self.serve()
        sender = http_sender(self)
        yield pnr(XDSClient(sender, repository_url=url))
        self.assertEqual(len(site.protocols), 1)
        yield sender.close()
        for _ in range(50):
            if not site.protocols:
                break
            yield deferLater(reactor, 0.02, lambda: None)
        self.assertEqual(len(site.protocols), 0)

    def test_a_bound_below_one_is_refused(self):
        """If zero were accepted, then every send would wait for ever."""
        with self.assertRaises(ValueError):
            http_sender(self, connections_per_host=0)
