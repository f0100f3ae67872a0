"""
The one-method seam of the XDS.b client, ``send(request) -> Deferred``, and
its implementation on twisted.web.client.Agent: HTTP or HTTPS (with a client
certificate for mutual TLS), a timeout per exchange, the request body
streamed at the peer's pace (:mod:`xds.pacing`), the response body spooled
(memory, then disk) up to a limit and read off the reactor thread.

An answer is whatever SOAP envelope came back, fault or not, whatever the
HTTP status; only a transport failure (refused, timed out, TLS, an answer
that is no SOAP message, too large) is an error: :class:`XDSTransportError`.

test-case-name: tests.xds.test_http_client
"""
from __future__ import annotations

import io
import tempfile
from dataclasses import dataclass, field
from typing import Any, Iterator, Protocol

from lxml import etree
from twisted.internet import defer
from twisted.internet import protocol as twisted_protocol
from twisted.internet.threads import deferToThread
from twisted.web.client import Agent, FileBodyProducer, ResponseDone
from twisted.web.http_headers import Headers
from twisted.web.iweb import IPolicyForHTTPS

from xds.pacing import PacedBody, take
from xds.safexml import DEFAULT_MAX_BYTES
from xds.soap.envelope import SOAPFault
from xds.soap.framing import Incoming, read_message, write_message
from xds.soap.mtom import MTOMLimits, OutgoingPart

_SPOOL = 1024 * 1024


class XDSTransportError(Exception):
    """The exchange failed below SOAP: no answer, or an answer that is no SOAP message."""


@dataclass
class SOAPRequest:
    """What to POST: an envelope for *action*, its MTOM parts, in which form."""

    url: str
    action: str
    envelope: etree._Element
    parts: list[OutgoingPart] = field(default_factory=list)
    mtom: bool = True


@dataclass
class SOAPResponse:
    """The HTTP status and the read SOAP message (attachments spooled; close when done)."""

    status: int
    incoming: Incoming


class Sender(Protocol):
    """The client seam: send one SOAP request, get its answer (a Deferred)."""

    def send(self, request: SOAPRequest) -> defer.Deferred[SOAPResponse]:
        """POST *request*; a Deferred firing with the SOAPResponse."""


def _prepare(request: SOAPRequest) -> tuple[str, bytes, bool, Iterator[bytes]]:
    """Serialise the envelope and take the first batch (runs in a thread)."""
    content_type, chunks = write_message(request.envelope, request.parts, request.action,
                                         request.mtom)
    first, done = take(chunks)
    return content_type, first, done, chunks


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
    """:class:`Sender` on Agent; *tls_policy* (see :mod:`xds.tls`) for HTTPS and client certs."""

    def __init__(self, reactor: Any, *, tls_policy: IPolicyForHTTPS | None = None,
                 timeout: float = 120, connect_timeout: float = 10,
                 max_response_bytes: int = 1024 * 1024 * 1024,
                 max_xml_bytes: int = DEFAULT_MAX_BYTES, mtom_limits: MTOMLimits = MTOMLimits()):
        kwargs = {"contextFactory": tls_policy} if tls_policy is not None else {}
        self._agent = Agent(reactor, connectTimeout=connect_timeout, **kwargs)
        self._reactor = reactor
        self.timeout = timeout
        self.max_response_bytes = max_response_bytes
        self.max_xml_bytes = max_xml_bytes
        self.mtom_limits = mtom_limits

    def send(self, request: SOAPRequest) -> defer.Deferred[SOAPResponse]:
        """POST *request* and read its answer, within :attr:`timeout` seconds (a Deferred)."""
        exchange = defer.ensureDeferred(self._exchange(request))
        return exchange.addTimeout(self.timeout, self._reactor, onTimeoutCancel=_timed_out)

    async def _exchange(self, request: SOAPRequest) -> SOAPResponse:
        content_type, first, done, chunks = await deferToThread(_prepare, request)
        body = FileBodyProducer(io.BytesIO(first)) if done else PacedBody(first, chunks)
        headers = Headers({b"Content-Type": [content_type.encode("latin-1")]})
        try:
            response = await self._agent.request(b"POST", request.url.encode("ascii"),
                                                 headers, body)
        except defer.CancelledError:
            raise
        except Exception as exc:
            raise XDSTransportError(f"POST {request.url} failed: {exc}") from exc
        spooled = defer.Deferred()
        response.deliverBody(_Spool(self.max_response_bytes, spooled))
        file = await spooled
        reply_type = (response.headers.getRawHeaders(b"content-type") or [b""])[0]
        try:
            incoming = await deferToThread(read_message, reply_type.decode("latin-1"), file,
                                           max_xml_bytes=self.max_xml_bytes,
                                           mtom_limits=self.mtom_limits)
        except SOAPFault as fault:
            raise XDSTransportError(f"HTTP {response.code} from {request.url} carries no SOAP"
                                    f" message: {fault.reason}") from None
        finally:
            file.close()
        return SOAPResponse(response.code, incoming)


def _timed_out(result: Any, timeout: float) -> Any:
    """Whatever the cancelled exchange failed with, say that it timed out.

    addTimeout calls this only when the timeout cancelled the exchange; the
    cancellation may surface wrapped (Agent's ResponseNeverReceived).
    """
    raise XDSTransportError(f"no answer within {timeout} seconds")
