"""
The XDS.b endpoints as twisted.web resources.

:class:`XDSResource` serves one endpoint (a Repository, a Registry, a
Document Recipient) and the wsa:Actions it accepts. Twisted spools the body
to a temporary file past 100 kB; :class:`XDSRequest` counts it as it arrives
and answers 413 with a SOAP fault, then closes the connection, as soon as it
passes the site's limit (at once when Content-Length announces it). Reading
the MTOM parts, parsing the envelope, validating and writing the answer all
run in threads (``deferToThread``), one thread hop to read and decode and one
to write the answer's first batch; the reactor only moves bytes, and writes the
Success of a stored submission from a template (:func:`xds.server.answers.quick_answer`:
a thread hop would cost more than the few string joins). A body is
never parsed as a form (twisted.web would read a multipart/form-data body
whole into memory). A handler failure is a Receiver fault; the listener keeps
serving.

Every request refused (a body over the limit, an unreadable or hostile body, metadata
that fails validation, a Failure answer of the handler) is handed to the site's or the
endpoint's :class:`xds.server.handler.RefusalRecorder`, when there is one, with the
body (or its first *refusal_bytes*, saying how large it was) and the reason: the caller
stores it, so that nothing sent is lost.

test-case-name: tests.xds.test_http_server
"""
from __future__ import annotations

import inspect
import io
import logging
from typing import Any, BinaryIO

from twisted.internet import defer
from twisted.internet.threads import deferToThread
from twisted.logger import Logger
from twisted.web import resource, server

from xds.metadata.vocabulary import (
    ACTION_PNR, ACTION_REGISTER, ACTION_RETRIEVE, ACTION_STORED_QUERY,
)
from xds.safexml import to_bytes
from xds.pacing import PacedWriter, take
from xds.server.answers import answer_message, fault_message, quick_answer
from xds.server.decoding import Call, ServerLimits, decode_call
from xds.server.handler import ProvideAndRegister, RefusalRecorder, XDSHandler
from xds.soap.envelope import SOAPFault, fault_envelope
from xds.soap.framing import Incoming, is_mtom, read_message
from xds.soap.response import RegistryResponse, describe_errors

REPOSITORY_ACTIONS = frozenset({ACTION_PNR, ACTION_RETRIEVE})
REGISTRY_ACTIONS = frozenset({ACTION_REGISTER, ACTION_STORED_QUERY})
RECIPIENT_ACTIONS = frozenset({ACTION_PNR})
_log = Logger()
_ACCESS_LOG = logging.getLogger("twisted")  # where twisted.web's access lines end up
#: Of a body refused for its size, the first bytes handed to the recorder.
DEFAULT_REFUSAL_BYTES = 64 * 1024
#: twisted.web parses POSTed form bodies into request.args unless told not to (newer Twisted).
_NO_FORM_PARSING = ({"parsePOSTFormSubmission": False}
                    if "parsePOSTFormSubmission" in inspect.signature(server.Site).parameters
                    else {})


class XDSRequest(server.Request):
    """A request whose body is refused (413, connection closed) once over the site's limit."""

    _received = 0
    refused = False

    def gotLength(self, length: int | None) -> None:
        super().gotLength(length)
        if length is not None and length > self.channel.site.max_body_bytes:
            self._refuse(f"announces {length} bytes")

    def handleContentChunk(self, data: bytes) -> None:
        if self.refused:
            return
        self._received += len(data)
        if self._received > self.channel.site.max_body_bytes:
            self._refuse(f"passed {self._received - len(data)} bytes")
            return
        super().handleContentChunk(data)

    def process(self) -> None:
        if not self.refused:
            super().process()

    def _refuse(self, what: str) -> None:
        """Answer 413 with a SOAP fault before the body is read, and hang up; the site's
        recorder gets what had arrived (its first bytes) and why."""
        self.refused = True
        site = self.channel.site
        limit = site.max_body_bytes
        fault = SOAPFault("Sender", f"request body {what}, over this endpoint's {limit}-byte"
                          " limit; nothing was read")
        # the spool is this method's now (twisted.web closes self.content when the
        # connection is lost, which may come before a thread reads the spool)
        spooled, self.content = self.content, io.BytesIO()
        if site.refusals is not None:
            content_type = (self.getHeader(b"content-type") or b"").decode("latin-1")
            _record_413(site, spooled, content_type, f"HTTP 413: {fault.reason}",
                        _peer(self))
        else:
            spooled.close()
        data = to_bytes(fault_envelope(fault))
        head = (b"HTTP/1.1 413 Payload Too Large\r\n"
                b"Content-Type: application/soap+xml; charset=UTF-8\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(data))
        self.channel.transport.write(head + data)
        self.channel.transport.loseConnection()


class XDSSite(server.Site):
    """A site of XDS.b endpoints: bounded bodies, idle connections closed after *timeout*;
    a body refused over the limit goes to *refusals* (its first *refusal_bytes*)."""

    requestFactory = XDSRequest

    def __init__(self, root: resource.Resource, *, max_body_bytes: int = ServerLimits.max_body_bytes,
                 timeout: float = 60, refusals: RefusalRecorder | None = None,
                 refusal_bytes: int = DEFAULT_REFUSAL_BYTES):
        super().__init__(root, timeout=timeout, **_NO_FORM_PARSING)
        self.max_body_bytes = max_body_bytes
        self.refusals = refusals
        self.refusal_bytes = refusal_bytes

    def log(self, request: server.Request) -> None:
        """The access-log line of each request, as twisted.web writes it, when it would be
        seen: Twisted's events reach Python logging as the ``twisted`` logger (the engine's
        PythonLoggingObserver), and formatting a line per request nobody reads costs."""
        if _ACCESS_LOG.isEnabledFor(logging.INFO):
            super().log(request)


class XDSResource(resource.Resource):
    """One XDS.b endpoint: POSTed SOAP requests for *actions*, answered by *handler*."""

    isLeaf = True

    def __init__(self, handler: XDSHandler, actions: frozenset[str],
                 limits: ServerLimits = ServerLimits(),
                 refusals: RefusalRecorder | None = None, refusal_bytes: int | None = None):
        """*refusal_bytes*: how much of a refused body *refusals* gets (None: all of it)."""
        super().__init__()
        self.handler = handler
        self.actions = actions
        self.limits = limits
        self.refusals = refusals
        self.refusal_bytes = refusal_bytes

    def render_GET(self, request: server.Request) -> bytes:
        request.setResponseCode(405)
        request.setHeader(b"Allow", b"POST")
        return b"XDS.b endpoint: POST a SOAP 1.2 request\n"

    def render_POST(self, request: server.Request) -> Any:
        content_type = (request.getHeader(b"content-type") or b"").decode("latin-1")
        self._serve(request, content_type).addErrback(
            lambda failure: _log.failure("XDS.b answer not sent on {path}", failure,
                                         path=request.path))
        return server.NOT_DONE_YET

    def _read(self, content_type: str, body: BinaryIO) -> Incoming:
        """The body's envelope and attachments (runs in a thread)."""
        body.seek(0)
        return read_message(content_type, body, max_xml_bytes=self.limits.max_xml_bytes,
                            mtom_limits=self.limits.mtom)

    def _read_call(self, content_type: str, body: BinaryIO, read: list[Incoming]) -> Call:
        """Read the request into *read* (to be closed even if decoding fails), then decode
        the handler call (runs in a thread)."""
        read.append(self._read(content_type, body))
        return decode_call(read[0], self.actions, self.limits)

    @staticmethod
    def _answer(action: str, answer: Any, relates_to: str, mtom: bool) -> tuple:
        """The answer's Content-Type, chunks and first batch (runs in a thread)."""
        reply_type, chunks = answer_message(action, answer, relates_to, mtom)
        return (reply_type, chunks, *take(chunks))

    def _reply(self, incoming: Incoming, answer: Any) -> defer.Deferred:
        """The answer's Content-Type, chunks and first batch: a stored submission's Success
        from a template here (no thread hop), any other answer in a thread."""
        message = incoming.message
        quick = quick_answer(message.action, answer, message.message_id, incoming.mtom)
        if quick is not None:
            reply_type, chunks = quick
            return defer.succeed((reply_type, chunks, *take(chunks)))
        return deferToThread(self._answer, message.action, answer, message.message_id,
                             incoming.mtom)

    @defer.inlineCallbacks
    def _serve(self, request: server.Request, content_type: str):
        """Read, dispatch, answer; every failure becomes a SOAP fault (returns a Deferred)."""
        read: list[Incoming] = []
        answer = first = refusal = None
        done = False
        peer = _peer(request)
        try:
            call = yield deferToThread(self._read_call, content_type, request.content, read)
            incoming = read[0]
            refusal = _refusal(call.answer) if not call.method else None
            if call.method == "provide_and_register":
                call.args[0].peer = peer
            answer = call.answer if not call.method else \
                (yield defer.maybeDeferred(getattr(self.handler, call.method), *call.args))
            refusal = refusal or _refusal(answer)  # the handler's own refusal, if any
            status = 200
            reply_type, chunks, first, done = yield self._reply(incoming, answer)
        except SOAPFault as fault:
            refusal = f"SOAP {fault.code} fault: {fault.reason}" if fault.code == "Sender" \
                else None
            status, reply_type, chunks = self._fault(fault, read[0] if read else None,
                                                     content_type)
        except Exception:
            _log.failure("XDS.b endpoint failed on {path}", path=request.path)
            fault = SOAPFault("Receiver", "the endpoint failed to process the request;"
                              " see its log")
            status, reply_type, chunks = self._fault(fault, read[0] if read else None,
                                                     content_type)
        try:
            if refusal and self.refusals is not None:
                yield self._record_refusal(request, content_type, refusal, peer)
            yield self._write(request, status, reply_type, chunks, first, done)
        finally:
            if read:
                read[0].close()
            _close_sources(answer)

    @defer.inlineCallbacks
    def _record_refusal(self, request: server.Request, content_type: str, reason: str,
                        peer: str):
        """Hand the refused body to :attr:`refusals` before answering; its failure is logged,
        the refusal is answered all the same (returns a Deferred)."""
        try:
            body, size = yield deferToThread(_body_prefix, request.content, self.refusal_bytes)
            if len(body) < size:
                reason += f" (a body of {size} bytes, its first {len(body)} kept)"
            yield defer.maybeDeferred(self.refusals, content_type, body, reason, peer)
        except Exception:
            _log.failure("XDS.b refusal on {path} not recorded", path=request.path)

    @staticmethod
    def _fault(fault: SOAPFault, incoming: Incoming | None, content_type: str) -> tuple:
        relates_to = incoming.message.message_id if incoming is not None else ""
        mtom = incoming.mtom if incoming is not None else is_mtom_safely(content_type)
        return fault_message(fault, relates_to, mtom)

    @defer.inlineCallbacks
    def _write(self, request: server.Request, status: int, content_type: str, chunks,
               first: bytes | None = None, done: bool = False):
        """Send the answer at the client's pace; Content-Length when it fits one batch.
        *first* is the first batch when already taken from *chunks*."""
        request.setResponseCode(status)
        request.setHeader(b"Content-Type", content_type.encode("latin-1"))
        if first is None:
            first, done = yield deferToThread(take, chunks)
        if done:
            request.setHeader(b"Content-Length", b"%d" % len(first))
        if request._disconnected:
            return
        if done:    # one batch: nothing to pace
            request.write(first)
            request.finish()
            return
        writer = PacedWriter(first, chunks, done)
        request.registerProducer(writer, True)
        try:
            yield writer.write_to(request)
        finally:
            request.unregisterProducer()
        if not request._disconnected:
            request.finish()


def _refusal(answer: Any) -> str | None:
    """Why a request answered without calling the handler was refused, or None."""
    if isinstance(answer, RegistryResponse) and not answer.succeeded:
        return describe_errors(answer.errors) or f"answered {answer.status}"
    return None


def _body_prefix(content: BinaryIO, limit: int | None) -> tuple[bytes, int]:
    """The request body as received, or its first *limit* bytes, and its size (runs in a
    thread)."""
    size = content.seek(0, 2)
    content.seek(0)
    return content.read() if limit is None else content.read(limit), size


def _record_413(site: XDSSite, content: BinaryIO, content_type: str, reason: str,
                peer: str) -> None:
    """Hand what arrived of a body refused for its size to the site's recorder (the first
    bytes read in a thread, then the spool closed); a failure is logged."""
    def read() -> tuple[bytes, int]:
        try:
            return _body_prefix(content, site.refusal_bytes)
        finally:
            content.close()

    def recorded(read: tuple[bytes, int]) -> Any:
        prefix, size = read
        kept = f"{size} bytes had arrived, the first {len(prefix)} kept" if size else \
            "nothing had arrived"
        return site.refusals(content_type, prefix, f"{reason} ({kept})", peer)

    d = deferToThread(read).addCallback(recorded)
    d.addErrback(lambda failure: _log.failure("XDS.b refusal (413) not recorded", failure))


def _peer(request: server.Request) -> str:
    address = request.getClientAddress()
    host, port = getattr(address, "host", ""), getattr(address, "port", "")
    return f"{host}:{port}" if host else str(address)


def _close_sources(answer: Any) -> None:
    """Close the files an ITI-43 answer's documents were read from, once written."""
    for document in getattr(answer, "documents", None) or []:
        if hasattr(document.source, "close"):
            document.source.close()


def xds_root(handler: XDSHandler, limits: ServerLimits = ServerLimits()) -> resource.Resource:
    """The usual tree: ``/repository`` (ITI-41, ITI-43), ``/registry`` (ITI-42, ITI-18) and
    ``/recipient`` (ITI-41 for a Document Recipient), all answered by *handler*."""
    root = resource.Resource()
    root.putChild(b"repository", XDSResource(handler, REPOSITORY_ACTIONS, limits))
    root.putChild(b"registry", XDSResource(handler, REGISTRY_ACTIONS, limits))
    root.putChild(b"recipient", XDSResource(handler, RECIPIENT_ACTIONS, limits))
    return root


def is_mtom_safely(content_type: str) -> bool:
    """Whether to fault in MTOM form: only when the request's Content-Type says so."""
    try:
        return is_mtom(content_type)
    except Exception:
        return False
