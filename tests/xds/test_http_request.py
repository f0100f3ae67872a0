"""How the client's HTTP sender holds and sends a request: the text envelope sent as it
is, the tree read from it on demand (and then sent), a body already in memory written at
once with a Content-Length, anything else serialised and paced in a thread; small answers
read on the reactor thread, large ones in a thread."""
from __future__ import annotations

import io
import threading

import pytest
from lxml import etree
from twisted.internet import defer, reactor
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.trial import unittest

from tests.xds.builders import DOCUMENT_BYTES, submission
from tests.xds.fakes import InMemoryXDSHandler
from tests.xds.http_fixtures import http_sender, xds_site
from xds.client import http
from xds.client.http import SOAPRequest, ready_body, run_for_size
from xds.client.transactions import XDSClient
from xds.soap.framing import write_envelope_bytes
from xds.soap.mtom import OutgoingPart

DATA = b"<?xml version='1.0' encoding='UTF-8'?>\n<a><b/></a>"


def test_text_is_sent_as_it_is():
    """If nobody reads the tree, then the bytes sent are the text given."""
    request = SOAPRequest("http://h/r", "urn:a", data=DATA)
    assert request.as_sent and request.serialised() == DATA


def test_the_tree_read_and_changed_in_place_is_what_is_sent():
    """If a hook reads the envelope and changes it, then its change is sent."""
    request = SOAPRequest("http://h/r", "urn:a", data=DATA)
    request.envelope[0].text = "changed"
    assert not request.as_sent
    assert request.serialised() == b"<?xml version='1.0' encoding='UTF-8'?>\n<a><b>changed</b></a>"


def test_replace_with_a_new_envelope_sends_it():
    """If replace gives a new envelope (xds.dmp.prepare), then that one is sent, not the
    text the first request carried."""
    request = SOAPRequest("http://h/r", "urn:a", data=DATA).replace(
        envelope=etree.fromstring(b"<z/>"))
    assert request.serialised() == b"<?xml version='1.0' encoding='UTF-8'?>\n<z/>"
    assert not request.as_sent


def test_replace_keeps_the_text_unparsed():
    """If replace changes something else than the envelope, then the copy still sends the
    text as it is (no tree parsed for the copy), and the original is unchanged."""
    part = OutgoingPart("p@x", "text/xml", b"doc")
    original = SOAPRequest("http://h/r", "urn:a", data=DATA)
    copy = original.replace(parts=[part], mtom=False)
    assert copy.as_sent and original.as_sent
    assert (copy.serialised(), copy.parts, copy.mtom) == (DATA, [part], False)
    assert (original.parts, original.mtom) == ([], True)


def test_replace_refuses_an_unknown_field():
    """If replace is given a name the request does not hold, then it says which."""
    with pytest.raises(TypeError, match="no field envelop"):
        SOAPRequest("http://h/r", "urn:a", data=DATA).replace(envelop=None)


def test_a_body_in_memory_is_ready():
    """If the envelope is text and the parts bytes, then the body is the chunks MTOM writes
    (Content-Type included), with nothing left for a thread."""
    part = OutgoingPart("p@x", "text/xml", b"doc")
    content_type, chunks = ready_body(SOAPRequest("http://h/r", "urn:a", parts=[part],
                                                  data=DATA))
    assert content_type.startswith("multipart/related")
    assert b"".join(chunks).count(b"doc") == 1 and DATA in b"".join(chunks)


def test_a_tree_a_file_or_a_large_body_is_not_ready():
    """If the envelope is a tree, a part a file, or the body over the inline bound, then it
    is serialised and read in a thread."""
    tree = SOAPRequest("http://h/r", "urn:a", etree.fromstring(b"<a/>"))
    file_part = SOAPRequest("http://h/r", "urn:a", data=DATA,
                            parts=[OutgoingPart("p@x", "text/xml", io.BytesIO(b"doc"))])
    large = SOAPRequest("http://h/r", "urn:a", data=DATA, parts=[
        OutgoingPart("p@x", "text/xml", bytes(http.INLINE_REQUEST_BYTES))])
    assert [ready_body(request) for request in (tree, file_part, large)] == [None] * 3


def test_prepare_serialises_the_tree():
    """If the request holds a tree, then the thread's batch is the tree's bytes."""
    request = SOAPRequest("http://h/r", "urn:a", etree.fromstring(b"<a/>"), [], False)
    content_type, first, done, _ = http._prepare(request)
    assert (first, done) == (b"<?xml version='1.0' encoding='UTF-8'?>\n<a/>", True)
    assert content_type == write_envelope_bytes(first, [], "urn:a", False)[0]


class Recording(WrappingFactory):
    """A site's factory that keeps every byte its connections received."""

    def __init__(self, wrapped):
        super().__init__(wrapped)
        self.received = []
        self.protocol = lambda factory, wrapped_protocol: _Recorder(factory, wrapped_protocol)


class _Recorder(ProtocolWrapper):
    def dataReceived(self, data):
        self.factory.received.append(data)
        super().dataReceived(data)


class SendingTests(unittest.TestCase):
    timeout = 30

    def serve(self):
        site = Recording(xds_site(InMemoryXDSHandler()))
        port = reactor.listenTCP(0, site, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return site, f"http://127.0.0.1:{port.getHost().port}/repository"

    @defer.inlineCallbacks
    def test_a_small_request_has_a_content_length_a_large_one_is_chunked(self):
        """If a body in memory were not written at once, then it would go chunked; one over
        the inline bound still goes (paced, chunked) and is answered."""
        site, url = self.serve()
        client = XDSClient(http_sender(self), repository_url=url)
        yield client.provide_and_register(submission(), {"Document01": DOCUMENT_BYTES})
        head = b"".join(site.received).split(b"\r\n\r\n", 1)[0].lower()
        self.assertIn(b"content-length:", head)
        self.assertNotIn(b"chunked", head)
        del site.received[:]
        large = DOCUMENT_BYTES.ljust(http.INLINE_REQUEST_BYTES + 1)
        response = yield client.provide_and_register(submission(), {"Document01": large})
        self.assertTrue(response.status)
        head = b"".join(site.received).split(b"\r\n\r\n", 1)[0].lower()
        self.assertIn(b"transfer-encoding: chunked", head)

    @defer.inlineCallbacks
    def test_small_answers_are_read_here_large_ones_in_a_thread(self):
        """If the bound were ignored, then a large answer would be read on the reactor
        thread (or a small one would pay a thread's round trip)."""
        small = yield run_for_size(http.INLINE_ANSWER_BYTES, threading.current_thread)
        large = yield run_for_size(http.INLINE_ANSWER_BYTES + 1, threading.current_thread)
        self.assertIs(small, threading.current_thread())
        self.assertIsNot(large, threading.current_thread())


def test_endpoints_are_made_once_per_host():
    """If Agent's endpoint were made for every request, then one per URI would be made;
    kept, one per scheme, host and port (https: TLS over TCP)."""
    from twisted.internet.testing import MemoryReactor
    from twisted.web.client import URI
    from twisted.web.error import SchemeNotSupported

    from xds.tls import default_policy
    endpoints = http._KeptEndpoints(MemoryReactor(), default_policy(), 5)
    first = endpoints.endpointForURI(URI.fromBytes(b"http://h:8080/repository"))
    again = endpoints.endpointForURI(URI.fromBytes(b"http://h:8080/registry"))
    secure = endpoints.endpointForURI(URI.fromBytes(b"https://h:8080/repository"))
    assert first is again and secure is not first
    assert type(secure).__name__ == "_WrapperEndpoint"  # wrapClientTLS
    try:
        endpoints.endpointForURI(URI.fromBytes(b"ftp://h/x"))
    except SchemeNotSupported:
        pass
    else:
        raise AssertionError("an ftp URI was given an endpoint")
