"""
The MLLP server: a Twisted protocol that hands each frame to a sink and writes
back the acknowledgment the sink answers with.

Three layers, as in Twisted's own line protocols: :mod:`mllp.framing` cuts the
stream, this module runs the per-connection state machine, and the *sink* (the
engine's source connector) holds the policy. A sink is any object with::

    receive(payload: bytes, peer: Peer) -> Deferred[bytes]   # unframed ACK; b"" for none
    frame_error(peer: Peer, error: Exception, prefix: bytes) -> None | Deferred[int | None]

The sink persists before its Deferred fires, so ACKs leave in the order the
messages arrived on the connection even when the sink answers out of order: a
per-connection queue holds one slot per frame and only its head is written.
The protocol itself answers only when the sink cannot:

* the sink's Deferred fails: AR (CR in enhanced mode) with ERR 207
  (application internal error), built from the message's MSH when readable;
* a frame exceeds the maximum size: ``sink.frame_error`` records its start, then
  AR with ERR 104 ("value too long ... or the length the application is able to
  safely handle", table 0357 from v2.7; 207 before, see :func:`mllp.ack.reported_code`),
  echoing what of its MSH can be read, and a clean close once queued ACKs are
  written, since the rest of the stream can no longer be trusted. When
  ``frame_error`` answers the id the frame was stored under, the AR's MSH-10 is
  ``ACK<id>`` as for every stored message (:func:`mllp.ack.stored_control_id`).

test-case-name: tests.mllp.test_protocol
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import ISSLTransport
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.protocols.policies import TimeoutMixin

from mllp.ack import (
    REJECT,
    HL7Error,
    ack_code,
    ack_mode_for,
    build_ack,
    build_nak_without_header,
    stored_control_id,
)
from mllp.codes import APPLICATION_INTERNAL_ERROR, VALUE_TOO_LONG
from mllp.framing import DEFAULT_MAX_FRAME_SIZE, FrameDecoder, FrameTooLarge, encode_frame
from mllp.header import HeaderError, read_header

DEFAULT_IDLE_TIMEOUT = 300.0
DEFAULT_MAX_PENDING = 1000

log = Logger()


@dataclass(frozen=True)
class Peer:
    """Where a frame came from; the same fields as ``engine.interfaces.PeerInfo``."""

    transport: str  # "mllp" or "mllp+tls"
    address: str  # "127.0.0.1:53122"
    client_certificate: str | None = None  # subject of a verified TLS client certificate


def hl7_timestamp(seconds: float) -> str:
    """An HL7 DTM in UTC with its offset, e.g. ``20240102030405+0000``."""
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(seconds)) + "+0000"


def reject_for(payload: bytes, error: HL7Error, control_id: str, timestamp: str) -> bytes:
    """A reject answering ``payload``: echoing its MSH when it can be read."""
    try:
        header = read_header(payload)
    except HeaderError:
        return build_nak_without_header(error, control_id, timestamp, payload=payload)
    return build_ack(header, ack_code(REJECT, ack_mode_for(header)), text=error.text,
                     errors=[error], control_id=control_id, timestamp=timestamp)


class _Slot:
    """One frame's place in the connection's ACK queue."""

    __slots__ = ("ack", "ready")  # ack: the framed bytes to write, None for no answer

    def __init__(self, ack: bytes | None = None, ready: bool = False):
        self.ack = ack
        self.ready = ready


class MLLPServerProtocol(Protocol, TimeoutMixin):
    """One inbound MLLP connection: frames in, ACKs out in arrival order."""

    factory: "MLLPServerFactory"

    def __init__(self) -> None:
        self._decoder: FrameDecoder | None = None
        self._queue: deque[_Slot] = deque()
        self._peer: Peer | None = None
        self._paused = False
        self._closing = False
        self._lost = False

    def connectionMade(self) -> None:
        self.callLater = self.factory.clock.callLater  # TimeoutMixin's seam
        self._decoder = FrameDecoder(self.factory.max_frame_size)
        self.factory.connections_open += 1
        self.setTimeout(self.factory.idle_timeout)

    def connectionLost(self, reason: Any = None) -> None:
        self._lost = True
        self.setTimeout(None)
        self.factory.connections_open -= 1

    def dataReceived(self, data: bytes) -> None:
        if self._closing:
            return
        self.resetTimeout()
        before = self._decoder.discarded_bytes
        try:
            payloads = self._decoder.feed(data)
        except FrameTooLarge as error:
            for payload in error.complete_frames:
                self._dispatch(payload)
            self._refuse_oversized(error)
            return
        finally:
            self.factory.bytes_discarded += self._decoder.discarded_bytes - before
        for payload in payloads:
            self._dispatch(payload)

    def timeoutConnection(self) -> None:
        """Close an idle connection, unless we still owe it ACKs."""
        if self._queue and not self._closing:
            self.setTimeout(self.timeOut)
            return
        self.transport.loseConnection()

    @property
    def peer(self) -> Peer:
        """The peer, read lazily: a TLS client certificate is known only after the handshake."""
        if self._peer is None:
            self._peer = self.factory.peer_for(self.transport)
        return self._peer

    def _dispatch(self, payload: bytes) -> None:
        self.factory.frames_received += 1
        slot = _Slot()
        self._queue.append(slot)
        answer = defer.maybeDeferred(self.factory.sink.receive, payload, self.peer)
        answer.addErrback(self._sink_failed, payload)
        answer.addCallback(self._answered, slot)
        if len(self._queue) >= self.factory.max_pending and not self._paused:
            self._paused = True
            self.transport.pauseProducing()

    def _sink_failed(self, failure: Any, payload: bytes) -> bytes:
        log.failure("MLLP sink failed for a frame from {peer}; answering AR/207",
                    failure, peer=self.peer.address)
        error = HL7Error(APPLICATION_INTERNAL_ERROR,
                         "the message could not be stored; it was not accepted")
        return reject_for(payload, error, self.factory.next_control_id(),
                          self.factory.timestamp())

    def _answered(self, ack: bytes | None, slot: _Slot) -> None:
        """Frame the sink's answer now, so a bad one cannot stall the queue later."""
        try:
            slot.ack = encode_frame(ack) if ack else None
        except (TypeError, ValueError):
            log.failure("MLLP sink answered with bytes that cannot be framed")
            slot.ack = encode_frame(build_nak_without_header(
                HL7Error(APPLICATION_INTERNAL_ERROR, "invalid acknowledgment"),
                self.factory.next_control_id(), self.factory.timestamp()))
        slot.ready = True
        self._flush()

    def _flush(self) -> None:
        """Write every ACK at the head of the queue that is ready, in order."""
        while self._queue and self._queue[0].ready:
            framed = self._queue.popleft().ack
            if framed and not self._lost:
                self.transport.write(framed)
        if self._paused and len(self._queue) <= self.factory.max_pending // 2:
            self._paused = False
            if not self._lost:
                self.transport.resumeProducing()
        if self._closing and not self._queue and not self._lost:
            self.transport.loseConnection()

    def _refuse_oversized(self, error: FrameTooLarge) -> None:
        """Record the frame, then queue a reject after the pending ACKs, then close.

        The reject waits for the record, as every ACK waits for its commit: once the sender
        reads it, the refused frame is in the store for an operator to see, and the reject
        names the record. If recording fails, the reject still goes (the sender must learn
        the frame was refused) and the failure is logged.
        """
        self.factory.oversized_frames += 1
        self._closing = True
        slot = _Slot()
        self._queue.append(slot)
        recorded = defer.maybeDeferred(self.factory.sink.frame_error, self.peer, error,
                                       error.prefix)
        recorded.addErrback(self._recording_failed)
        recorded.addCallback(self._recorded, slot, error)

    @staticmethod
    def _recording_failed(failure: Any) -> None:
        log.failure("MLLP sink could not record an oversized frame", failure)

    def _recorded(self, record_id: Any, slot: _Slot, error: FrameTooLarge) -> None:
        """Queue the reject of an oversized frame, naming its record when there is one."""
        stored = isinstance(record_id, int) and not isinstance(record_id, bool)
        control_id = stored_control_id(record_id) if stored else self.factory.next_control_id()
        nak = reject_for(error.prefix, HL7Error(VALUE_TOO_LONG, str(error)), control_id,
                         self.factory.timestamp())
        slot.ack = encode_frame(nak)
        slot.ready = True
        self._flush()


class MLLPServerFactory(Factory):
    """Builds :class:`MLLPServerProtocol` instances sharing one sink and counters.

    ``clock`` is the reactor (or a ``task.Clock``) used for idle timeouts; it
    defaults to the global reactor, imported only then.
    """

    protocol = MLLPServerProtocol

    def __init__(self, sink: Any, *, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
                 idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT, clock: Any = None,
                 transport_name: str = "mllp", max_pending: int = DEFAULT_MAX_PENDING):
        if clock is None:
            from twisted.internet import reactor as clock
        self.sink = sink
        self.max_frame_size = max_frame_size
        self.idle_timeout = idle_timeout
        self.clock = clock
        self.transport_name = transport_name
        self.max_pending = max(1, max_pending)
        self.connections_open = 0
        self.frames_received = 0
        self.bytes_discarded = 0
        self.oversized_frames = 0
        self._control_prefix = f"{int(clock.seconds()):x}-"
        self._control_counter = 0

    def next_control_id(self) -> str:
        """A fresh MSH-10 for the ACKs this layer writes itself."""
        self._control_counter += 1
        return f"{self._control_prefix}{self._control_counter}"

    def timestamp(self) -> str:
        return hl7_timestamp(self.clock.seconds())

    def peer_for(self, transport: Any) -> Peer:
        """Describe the remote end of ``transport``, with its verified certificate if any."""
        address = transport.getPeer()
        host, port = getattr(address, "host", None), getattr(address, "port", None)
        text = f"{host}:{port}" if host is not None else str(address)
        if not ISSLTransport.providedBy(transport):
            return Peer(self.transport_name, text)
        name = self.transport_name if self.transport_name.endswith("+tls") \
            else self.transport_name + "+tls"
        return Peer(name, text, certificate_subject(transport))


def certificate_subject(transport: Any) -> str | None:
    """The RFC 4514 subject of the peer's certificate, or None when it sent none."""
    certificate = transport.getPeerCertificate()
    if certificate is None:
        return None
    return certificate.to_cryptography().subject.rfc4514_string()
