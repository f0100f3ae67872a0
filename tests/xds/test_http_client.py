"""The XDS.b client's transport failures over loopback: each an XDSTransportError that says
what went wrong, while a peer's RegistryResponse errors stay a result."""
from __future__ import annotations

from twisted.internet import defer, protocol, reactor
from twisted.trial import unittest
from twisted.web import pages, server

from tests.xds.builders import DOCUMENT_BYTES, submission
from tests.xds.fakes import InMemoryXDSHandler
from tests.xds.http_fixtures import listen, xds_site
from xds.client.http import HTTPSender, XDSTransportError
from xds.client.transactions import XDSClient
from xds.metadata.vocabulary import RESPONSE_FAILURE


class Silent(protocol.Protocol):
    """Accepts a connection and never answers."""


def pnr(client: XDSClient, data: bytes = DOCUMENT_BYTES):
    return client.provide_and_register(submission(), {"Document01": data})


class ClientTests(unittest.TestCase):
    timeout = 30

    def client(self, url: str, **options) -> XDSClient:
        return XDSClient(HTTPSender(reactor, **options), repository_url=url)

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
        client = XDSClient(HTTPSender(reactor))
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
        client = XDSClient(Mixer(HTTPSender(reactor)), repository_url=base + "/repository")
        error = yield self.assertFailure(pnr(client), XDSTransportError)
        self.assertIn("relates to urn:x", str(error))
