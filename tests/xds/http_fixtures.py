"""A loopback XDS.b site around the in-memory handler, and a raw POST for hostile bodies."""
from __future__ import annotations

import io

from twisted.internet import defer, reactor
from twisted.internet import protocol
from twisted.web.client import Agent, FileBodyProducer
from twisted.web.http_headers import Headers

from tests.xds.fakes import InMemoryXDSHandler
from xds.client.http import HTTPSender
from xds.server.decoding import ServerLimits
from xds.server.resource import XDSSite, xds_root
from xds.soap.framing import read_message
from xds.tls import server_endpoint


def xds_site(handler: InMemoryXDSHandler, limits: ServerLimits = ServerLimits(),
             timeout: float = 60) -> XDSSite:
    """The usual endpoint tree (xds_root) served by *handler*."""
    return XDSSite(xds_root(handler, limits), max_body_bytes=limits.max_body_bytes,
                   timeout=timeout)


@defer.inlineCallbacks
def listen(test, site: XDSSite, tls=None):
    """Listen on 127.0.0.1 port 0 for the test's duration; the base URL (a Deferred)."""
    port = yield server_endpoint(reactor, 0, "127.0.0.1", tls).listen(site)
    test.addCleanup(port.stopListening)
    scheme = "https" if tls is not None else "http"
    return f"{scheme}://127.0.0.1:{port.getHost().port}"


@defer.inlineCallbacks
def post(url: str, body: bytes, content_type: str = "application/soap+xml; charset=UTF-8"):
    """POST raw bytes; (status, the answer's SOAP message) as a Deferred."""
    agent = Agent(reactor)
    response = yield agent.request(b"POST", url.encode(), Headers(
        {b"Content-Type": [content_type.encode()]}), FileBodyProducer(io.BytesIO(body)))
    collected = defer.Deferred()
    response.deliverBody(_Collect(collected))
    data = yield collected
    answer_type = response.headers.getRawHeaders(b"content-type")[0].decode()
    return response.code, read_message(answer_type, io.BytesIO(data)).message


class _Collect(protocol.Protocol):
    """Gathers a whole (small) response body."""

    def __init__(self, done: defer.Deferred):
        self.done = done
        self.data = []

    def dataReceived(self, data: bytes) -> None:
        self.data.append(data)

    def connectionLost(self, reason) -> None:
        self.done.callback(b"".join(self.data))


def http_sender(test, **options) -> HTTPSender:
    """An HTTPSender whose kept connections are closed when *test* ends."""
    made = HTTPSender(reactor, **options)
    test.addCleanup(made.close)
    return made
