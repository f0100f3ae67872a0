"""
The one-method seam of the XDS.b client, ``send(request) -> Deferred``, and
its implementation on twisted.web.client.Agent: HTTP or HTTPS (with a client
certificate for mutual TLS), a timeout per exchange, the request body
streamed at the peer's pace (:mod:`xds.pacing`), the response body spooled
(memory, then disk) up to a limit and read.

A request already serialised whose parts are all bytes in memory, up to
:data:`INLINE_REQUEST_BYTES`, is written as it is, with a Content-Length; one
whose envelope is still a tree, or that has files to read, is serialised and
read in a thread and paced. An answer of at most :data:`INLINE_ANSWER_BYTES`
is read on the reactor thread, larger ones in a thread (:func:`run_for_size`):
for a small message a thread's round trip costs more than the work it spares
the reactor.

Connections are kept between exchanges (twisted.web.client.HTTPConnectionPool,
persistent): a Document Source sending one submission after another pays the
TCP (and TLS) handshake once, and so does the server it sends to. At most
*connections_per_host* exchanges run at once with one host (the others wait
their turn), so that no more connections than that are opened to it; an idle
one is closed after *idle_timeout*, before a server's usual keep-alive ends.
:meth:`HTTPSender.close` closes those kept.

An answer is whatever SOAP envelope came back, fault or not, whatever the
HTTP status; only a transport failure (refused, timed out, TLS, an answer
that is no SOAP message, too large) is an error: :class:`XDSTransportError`.

test-case-name: tests.xds.test_http_client
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Protocol
from urllib.parse import urlsplit

from lxml import etree
from twisted.internet import defer
from twisted.internet import protocol as twisted_protocol
from twisted.internet.threads import deferToThread
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.web.client import (
    Agent, BrowserLikePolicyForHTTPS, HTTPConnectionPool, ResponseDone, URI,
)
from twisted.web.error import SchemeNotSupported
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgentEndpointFactory, IBodyProducer, IPolicyForHTTPS
from zope.interface import implementer

from xds.pacing import PacedBody, take
from xds.safexml import DEFAULT_MAX_BYTES, parse_xml, to_bytes
from xds.soap.envelope import SOAPFault
from xds.soap.framing import Incoming, read_message, write_envelope_bytes
from xds.soap.mtom import MTOMLimits, OutgoingPart

_SPOOL = 1024 * 1024
DEFAULT_CONNECTIONS_PER_HOST = 4
DEFAULT_IDLE_TIMEOUT = 20.0  # seconds a kept connection may stay idle
#: The largest request body written from memory at once, without a thread or pacing.
INLINE_REQUEST_BYTES = 1024 * 1024
#: The largest answer (HTTP body) read on the reactor thread.
INLINE_ANSWER_BYTES = 64 * 1024


class XDSTransportError(Exception):
    """The exchange failed below SOAP: no answer, or an answer that is no SOAP message."""


class SOAPRequest:
    """What to POST: an envelope for *action*, its MTOM parts, in which form.

    The client builds the envelope as text (*data*, its serialised bytes) and sends those
    bytes as they are; :attr:`envelope`, the tree, is parsed from them the first time it is
    read (by a ``prepare_request`` hook, say) and from then on is what is sent, changes
    made to it in place included. Setting it, or :meth:`replace` with a new one, does the
    same. A plain class rather than a dataclass: the envelope is a tree kept beside the text,
    read lazily, which a dataclass field cannot say.
    """

    __slots__ = ("url", "action", "parts", "mtom", "data", "_tree")

    def __init__(self, url: str, action: str, envelope: etree._Element | None = None,
                 parts: list[OutgoingPart] | None = None, mtom: bool = True,
                 data: bytes | None = None):
        self.url = url
        self.action = action
        self._tree = envelope
        self.parts = parts if parts is not None else []
        self.mtom = mtom
        self.data = data

    @property
    def envelope(self) -> etree._Element | None:
        """The envelope as a tree (parsed from :attr:`data` when first read)."""
        if self._tree is None and self.data is not None:
            self._tree = parse_xml(self.data, what="SOAP request")
        return self._tree

    @envelope.setter
    def envelope(self, tree: etree._Element | None) -> None:
        self._tree = tree

    def replace(self, **changes: Any) -> "SOAPRequest":
        """A copy with *changes* (any of the constructor's arguments); the text is not
        parsed for it, and a tree already read is carried over unless *changes* names one."""
        kept = {"url": self.url, "action": self.action, "envelope": self._tree,
                "parts": self.parts, "mtom": self.mtom, "data": self.data}
        unknown = set(changes) - set(kept)
        if unknown:
            raise TypeError(f"SOAPRequest has no field {', '.join(sorted(unknown))}")
        return SOAPRequest(**{**kept, **changes})

    def serialised(self) -> bytes:
        """The envelope's bytes (serialising a tree: call it off the reactor thread)."""
        return to_bytes(self._tree) if self._tree is not None else self.data

    @property
    def as_sent(self) -> bool:
        """True while the bytes to send are :attr:`data` as given (no tree was read)."""
        return self._tree is None and self.data is not None

    def __repr__(self) -> str:
        form = "tree" if self._tree is not None else f"{len(self.data or b'')} bytes"
        return (f"SOAPRequest(url={self.url!r}, action={self.action!r}, envelope={form}, "
                f"parts={len(self.parts)}, mtom={self.mtom})")


@dataclass
class SOAPResponse:
    """The HTTP status, the read SOAP message (attachments spooled; close when done) and
    the size of the HTTP body it came in."""

    status: int
    incoming: Incoming
    size: int = 0


class Sender(Protocol):
    """The client seam: send one SOAP request, get its answer (a Deferred)."""

    def send(self, request: SOAPRequest) -> defer.Deferred[SOAPResponse]:
        """POST *request*; a Deferred firing with the SOAPResponse."""


def run_for_size(size: int, function: Callable[..., Any], *args: Any,
                 **kwargs: Any) -> defer.Deferred:
    """*function* run on the reactor thread for an answer of at most
    :data:`INLINE_ANSWER_BYTES`, in a thread for a larger one (a Deferred either way)."""
    if size <= INLINE_ANSWER_BYTES:
        return defer.maybeDeferred(function, *args, **kwargs)
    return deferToThread(function, *args, **kwargs)


def ready_body(request: SOAPRequest) -> tuple[str, list[bytes]] | None:
    """The Content-Type and the chunks of *request* when nothing is left to serialise or
    read and they total at most :data:`INLINE_REQUEST_BYTES`; None otherwise."""
    if not request.as_sent:
        return None
    if not all(isinstance(part.source, (bytes, bytearray)) for part in request.parts):
        return None
    if len(request.data) + sum(len(part.source) for part in request.parts) \
            > INLINE_REQUEST_BYTES:
        return None
    content_type, chunks = write_envelope_bytes(request.data, request.parts, request.action,
                                                request.mtom)
    return content_type, list(chunks)


def _prepare(request: SOAPRequest) -> tuple[str, bytes, bool, Iterator[bytes]]:
    """Serialise the envelope and take the first batch (runs in a thread)."""
    content_type, chunks = write_envelope_bytes(request.serialised(), request.parts,
                                                request.action, request.mtom)
    first, done = take(chunks)
    return content_type, first, done, chunks


@implementer(IBodyProducer)
class _BytesBody:
    """A request body held in memory, written at once (its length sent as Content-Length)."""

    def __init__(self, chunks: list[bytes]):
        self._chunks = chunks
        self.length = sum(len(chunk) for chunk in chunks)

    def startProducing(self, consumer: Any) -> defer.Deferred:
        for chunk in self._chunks:
            consumer.write(chunk)
        return defer.succeed(None)

    def pauseProducing(self) -> None:
        """Everything is written already: nothing to pause."""

    def resumeProducing(self) -> None:
        """Everything is written already: nothing to resume."""

    def stopProducing(self) -> None:
        """Everything is written already: nothing to stop."""


class _Spool(twisted_protocol.Protocol):
    """Receives a response body into a spooled file, refusing more than *limit* bytes."""

    def __init__(self, limit: int, finished: defer.Deferred):
        self.file = tempfile.SpooledTemporaryFile(max_size=_SPOOL)
        self.limit = limit
        self.size = 0
        self.finished = finished

    def dataReceived(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.limit:
            self.transport.stopProducing()
            return
        self.file.write(data)

    def connectionLost(self, reason: Any) -> None:
        if self.size > self.limit:
            self.finished.errback(XDSTransportError(
                f"response body over the {self.limit}-byte limit"))
        elif reason.check(ResponseDone):
            self.file.seek(0)
            self.finished.callback(self.file)
        else:
            self.finished.errback(XDSTransportError(f"response cut short: {reason.value}"))


class HTTPSender:
    """:class:`Sender` on Agent; *tls_policy* (see :mod:`xds.tls`) for HTTPS and client certs.

    Connections are kept (*persistent*), at most *connections_per_host* to each host;
    :meth:`close` when done with it.
    """

    def __init__(self, reactor: Any, *, tls_policy: IPolicyForHTTPS | None = None,
                 timeout: float = 120, connect_timeout: float = 10,
                 max_response_bytes: int = 1024 * 1024 * 1024,
                 max_xml_bytes: int = DEFAULT_MAX_BYTES, mtom_limits: MTOMLimits = MTOMLimits(),
                 persistent: bool = True,
                 connections_per_host: int = DEFAULT_CONNECTIONS_PER_HOST,
                 idle_timeout: float = DEFAULT_IDLE_TIMEOUT):
        if connections_per_host < 1:
            raise ValueError("connections_per_host must be at least 1")
        self._pool = HTTPConnectionPool(reactor, persistent=persistent)
        self._pool.maxPersistentPerHost = connections_per_host
        self._pool.cachedConnectionTimeout = idle_timeout
        self._agent = Agent.usingEndpointFactory(
            reactor, _KeptEndpoints(reactor, tls_policy or BrowserLikePolicyForHTTPS(),
                                    connect_timeout), pool=self._pool)
        self._reactor = reactor
        self.timeout = timeout
        self.max_response_bytes = max_response_bytes
        self.max_xml_bytes = max_xml_bytes
        self.mtom_limits = mtom_limits
        self.connections_per_host = connections_per_host
        self._turns: dict[tuple, defer.DeferredSemaphore] = {}

    def close(self) -> defer.Deferred:
        """Close the connections kept; a Deferred firing once they are closed."""
        return self._pool.closeCachedConnections()

    def send(self, request: SOAPRequest) -> defer.Deferred[SOAPResponse]:
        """POST *request* and read its answer, within :attr:`timeout` seconds (a Deferred)."""
        exchange = defer.ensureDeferred(self._exchange(request))
        return exchange.addTimeout(self.timeout, self._reactor, onTimeoutCancel=_timed_out)

    async def _exchange(self, request: SOAPRequest) -> SOAPResponse:
        """One exchange, once its host has a connection to spare (waiting counts in the
        timeout)."""
        turn = self._turn(request.url)
        await turn.acquire()
        try:
            return await self._exchange_now(request)
        finally:
            turn.release()

    def _turn(self, url: str) -> defer.DeferredSemaphore:
        """The semaphore bounding the exchanges with *url*'s host (scheme, host, port)."""
        parts = urlsplit(url)
        key = (parts.scheme, parts.hostname, parts.port)
        turn = self._turns.get(key)
        if turn is None:
            turn = self._turns[key] = defer.DeferredSemaphore(self.connections_per_host)
        return turn

    async def _exchange_now(self, request: SOAPRequest) -> SOAPResponse:
        ready = ready_body(request)
        if ready is not None:
            content_type, body = ready[0], _BytesBody(ready[1])
        else:
            content_type, first, done, chunks = await deferToThread(_prepare, request)
            body = _BytesBody([first]) if done else PacedBody(first, chunks)
        headers = Headers({b"Content-Type": [content_type.encode("latin-1")]})
        try:
            response = await self._agent.request(b"POST", request.url.encode("ascii"),
                                                 headers, body)
        except defer.CancelledError:
            raise
        except Exception as exc:
            raise XDSTransportError(f"POST {request.url} failed: {exc}") from exc
        spooled = defer.Deferred()
        spool = _Spool(self.max_response_bytes, spooled)
        response.deliverBody(spool)
        file = await spooled
        reply_type = (response.headers.getRawHeaders(b"content-type") or [b""])[0]
        try:
            incoming = await run_for_size(spool.size, read_message, reply_type.decode("latin-1"),
                                          file, max_xml_bytes=self.max_xml_bytes,
                                          mtom_limits=self.mtom_limits)
        except SOAPFault as fault:
            raise XDSTransportError(f"HTTP {response.code} from {request.url} carries no SOAP"
                                    f" message: {fault.reason}") from None
        finally:
            file.close()
        return SOAPResponse(response.code, incoming, spool.size)


@implementer(IAgentEndpointFactory)
class _KeptEndpoints:
    """Agent's endpoints (TCP for http, TLS over TCP with *tls_policy* for https), each
    made once per scheme, host and port: Agent asks for one on every request, even one
    that a kept connection serves."""

    def __init__(self, reactor: Any, tls_policy: IPolicyForHTTPS, connect_timeout: float):
        self._reactor = reactor
        self._tls_policy = tls_policy
        self._connect_timeout = connect_timeout
        self._made: dict[tuple, Any] = {}

    def endpointForURI(self, uri: URI) -> Any:
        key = (uri.scheme, uri.host, uri.port)
        endpoint = self._made.get(key)
        if endpoint is None:
            endpoint = self._made[key] = self._endpoint(uri)
        return endpoint

    def _endpoint(self, uri: URI) -> Any:
        if uri.scheme not in (b"http", b"https"):
            raise SchemeNotSupported(f"Unsupported scheme: {uri.scheme!r}")
        try:
            host = uri.host.decode("ascii")
        except UnicodeDecodeError:
            raise ValueError(f"the host of {uri.toBytes()!r} is not ASCII") from None
        endpoint = HostnameEndpoint(self._reactor, host, uri.port,
                                    timeout=self._connect_timeout)
        if uri.scheme == b"https":
            return wrapClientTLS(self._tls_policy.creatorForNetloc(uri.host, uri.port),
                                 endpoint)
        return endpoint


def _timed_out(result: Any, timeout: float) -> Any:
    """Whatever the cancelled exchange failed with, say that it timed out.

    addTimeout calls this only when the timeout cancelled the exchange; the
    cancellation may surface wrapped (Agent's ResponseNeverReceived).
    """
    raise XDSTransportError(f"no answer within {timeout} seconds")
