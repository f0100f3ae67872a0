"""Hostile bodies over real HTTP: each refused with a clear fault, nothing fetched, and the
listener still serving afterwards."""
from __future__ import annotations

import hashlib

from twisted.internet import defer, protocol, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.task import deferLater
from twisted.trial import unittest

from tests.xds.builders import DOCUMENT_BYTES, submission
from tests.xds.http_fixtures import http_sender, listen, post, xds_site
from tests.xds.fakes import InMemoryXDSHandler
from xds.client.transactions import XDSClient
from xds.metadata.vocabulary import ACTION_PNR, RESPONSE_SUCCESS
from xds.safexml import to_bytes
from xds.server.decoding import ServerLimits
from xds.server.resource import XDSSite, xds_root
from xds.soap.documents import provide_and_register_request
from xds.soap.envelope import SOAPFault, read_fault, request_envelope
from xds.soap.mtom import MTOMLimits, write_mtom

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body>&lol3;</soap:Body>
</soap:Envelope>"""
EXTERNAL = """<?xml version="1.0"?>
<!DOCTYPE e [<!ENTITY x SYSTEM "http://127.0.0.1:{port}/secret">]>
<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body>&x;</soap:Body>
</soap:Envelope>"""


def fault_of(message):
    return read_fault(message.body)


class _Listener(protocol.Protocol):
    def connectionMade(self):
        self.factory.connections.append(self)


class HostileTests(unittest.TestCase):
    timeout = 60

    @defer.inlineCallbacks
    def start(self, limits=ServerLimits(), timeout=60):
        self.handler = InMemoryXDSHandler()
        self.base = yield listen(self, xds_site(self.handler, limits, timeout))
        self.url = self.base + "/repository"
        self.client = XDSClient(http_sender(self, timeout=20), repository_url=self.url)

    @defer.inlineCallbacks
    def assert_still_serving(self):
        response = yield self.client.provide_and_register(submission(),
                                                          {"Document01": DOCUMENT_BYTES})
        self.assertEqual(response.status, RESPONSE_SUCCESS)

    @defer.inlineCallbacks
    def test_billion_laughs_is_refused(self):
        """If entities were expanded, then the fault would not name the DTD."""
        yield self.start()
        status, data = yield post(self.url, BILLION_LAUGHS)
        self.assertEqual(status, 400)
        self.assertIn("DTD", fault_of(data).reason)
        yield self.assert_still_serving()

    @defer.inlineCallbacks
    def test_external_entity_is_refused_and_not_fetched(self):
        """If the external entity were resolved, then the bait listener would see a connection."""
        factory = protocol.Factory.forProtocol(_Listener)
        factory.connections = []
        bait = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(bait.stopListening)
        yield self.start()
        body = EXTERNAL.format(port=bait.getHost().port).encode()
        status, data = yield post(self.url, body)
        self.assertEqual(status, 400)
        self.assertIn("DTD", fault_of(data).reason)
        self.assertEqual(factory.connections, [])
        yield self.assert_still_serving()

    @defer.inlineCallbacks
    def test_mime_part_that_never_ends_is_refused(self):
        """If a body without its closing boundary were accepted, then the handler would run."""
        yield self.start()
        body, parts = provide_and_register_request(submission(), {"Document01": DOCUMENT_BYTES})
        content_type, chunks = write_mtom(to_bytes(request_envelope(ACTION_PNR, body, self.url)),
                                          parts, ACTION_PNR)
        whole = b"".join(chunks)
        cut = whole[:whole.rindex(b"\r\n--")]
        status, data = yield post(self.url, cut, content_type)
        self.assertEqual(status, 400)
        self.assertIn("MTOM message refused", fault_of(data).reason)
        self.assertEqual(self.handler.calls, [])
        yield self.assert_still_serving()

    @defer.inlineCallbacks
    def test_stalled_body_is_cut_by_the_idle_timeout(self):
        """If a part that stops arriving held the connection, then it would not be closed."""
        yield self.start(timeout=0.5)
        port = int(self.base.rsplit(":", 1)[1])
        closed = defer.Deferred()

        class Stalled(protocol.Protocol):
            def connectionMade(self):
                self.transport.write(b"POST /repository HTTP/1.1\r\nHost: x\r\n"
                                     b"Content-Type: multipart/related; boundary=b\r\n"
                                     b"Content-Length: 100000\r\n\r\n--b\r\nContent-ID: <a>\r\n")

            def connectionLost(self, reason):
                closed.callback(None)

        yield TCP4ClientEndpoint(reactor, "127.0.0.1", port).connect(
            protocol.Factory.forProtocol(Stalled))
        yield closed
        yield self.assert_still_serving()

    @defer.inlineCallbacks
    def test_body_over_the_limit_is_refused_with_413(self):
        """If the body limit were checked after reading, then the answer would not be 413."""
        yield self.start(ServerLimits(max_body_bytes=64 * 1024))
        status, data = yield post(self.url, b"x" * (256 * 1024))
        self.assertEqual(status, 413)
        self.assertIn("65536-byte limit", fault_of(data).reason)
        yield self.assert_still_serving()

    @defer.inlineCallbacks
    def test_chunked_body_over_the_limit_is_cut_as_it_arrives(self):
        """If a body without Content-Length were counted only at the end, then no 413."""
        yield self.start(ServerLimits(max_body_bytes=64 * 1024))
        big = b"z" * (1024 * 1024)  # over one 256 KiB batch: sent chunked, length unknown
        spec = submission()
        spec.documents[0].hash = hashlib.sha1(big).hexdigest()
        spec.documents[0].size = str(len(big))
        error = yield self.assertFailure(
            self.client.provide_and_register(spec, {"Document01": big}), SOAPFault)
        self.assertIn("passed", error.reason)
        self.assertIn("65536-byte limit", error.reason)
        yield self.assert_still_serving()

    @defer.inlineCallbacks
    def test_chunked_body_over_the_limit_is_recorded_by_its_first_bytes(self):
        """If the site's recorder got nothing of a body cut for its size, then the operator
        could not tell what it was; if it got all of it, then the limit would not bound it."""
        recorded = []
        limits = ServerLimits(max_body_bytes=64 * 1024)
        site = XDSSite(xds_root(InMemoryXDSHandler(), limits), max_body_bytes=64 * 1024,
                       refusals=lambda *args: recorded.append(args), refusal_bytes=1000)
        self.base = yield listen(self, site)
        self.client = XDSClient(http_sender(self, timeout=20),
                                repository_url=self.base + "/repository")
        big = b"z" * (1024 * 1024)
        yield self.assertFailure(self.client.provide_and_register(
            submission(), {"Document01": big}), SOAPFault)
        for _ in range(100):
            if recorded:
                break
            yield deferLater(reactor, 0.02, lambda: None)
        [(content_type, prefix, reason, peer)] = recorded
        self.assertTrue(content_type.startswith("multipart/related"), content_type)
        self.assertEqual(len(prefix), 1000)
        self.assertTrue(prefix.startswith(b"--"), prefix[:40])
        self.assertRegex(reason, r"^HTTP 413: request body passed \d+ bytes, over this "
                                 r"endpoint's 65536-byte limit; nothing was read \(\d+ bytes had "
                                 r"arrived, the first 1000 kept\)$")
        self.assertTrue(peer.startswith("127.0.0.1:"), peer)

    @defer.inlineCallbacks
    def test_attachment_over_the_mtom_limit_is_refused(self):
        """If the attachment limit were not applied, then the handler would get the document."""
        yield self.start(ServerLimits(mtom=MTOMLimits(max_part_bytes=1024)))
        error = yield self.assertFailure(self.client.provide_and_register(
            submission(), {"Document01": b"y" * 4096}), Exception)
        self.assertIn("1024-byte limit", str(error))
        self.assertEqual(self.handler.calls, [])

    @defer.inlineCallbacks
    def test_form_body_is_not_parsed_as_a_form(self):
        """If twisted.web parsed a multipart/form-data body as a form (reading it whole into
        memory), then this malformed one would get its plain 400 and a hang-up instead of a
        SOAP fault naming the Content-Type."""
        yield self.start()
        status, data = yield post(self.url, b"not a form", "multipart/form-data")
        self.assertEqual(status, 400)
        self.assertIn("multipart/form-data", fault_of(data).reason)
        yield self.assert_still_serving()


class SmallLimitTests(unittest.TestCase):
    timeout = 30

    @defer.inlineCallbacks
    def test_refusal_when_headers_and_body_arrive_together(self):
        """If a refused request whose body was already buffered were still processed, then
        an error would be logged or a second answer sent."""
        base = yield listen(self, xds_site(InMemoryXDSHandler(), ServerLimits(max_body_bytes=10)))
        port = int(base.rsplit(":", 1)[1])
        answered = defer.Deferred()

        class Whole(protocol.Protocol):
            def connectionMade(self):
                self.data = b""
                self.transport.write(b"POST /repository HTTP/1.1\r\nHost: x\r\nContent-Type:"
                                     b" application/soap+xml\r\nContent-Length: 100\r\n\r\n"
                                     + b"x" * 100)

            def dataReceived(self, data):
                self.data += data

            def connectionLost(self, reason):
                answered.callback(self.data)

        yield TCP4ClientEndpoint(reactor, "127.0.0.1", port).connect(
            protocol.Factory.forProtocol(Whole))
        data = yield answered
        self.assertTrue(data.startswith(b"HTTP/1.1 413 "), data[:80])
        self.assertEqual(data.count(b"HTTP/1.1"), 1)
        self.assertEqual(self.flushLoggedErrors(), [])

