"""
The MLLP server: a Twisted protocol that hands each frame to a sink and writes
back the acknowledgment the sink answers with.

Three layers, as in Twisted's own line protocols: :mod:`mllp.framing` cuts the
stream, this module runs the per-connection state machine, and the *sink* (the
engine's source connector) holds the policy. A sink is any object with::

    receive(payload: bytes, peer: Peer) -> Deferred[bytes] | bytes  # unframed ACK; b"" for none
    frame_error(peer: Peer, error: Exception, prefix: bytes) -> None | Deferred[int | None]

A sink may also have ``receive_then(payload, peer, reply) -> None``, which the protocol then
calls instead of ``receive``: the sink calls ``reply`` once with what ``receive``'s Deferred
would have fired with (the ACK bytes, or a Failure). The engine's MLLP source does, so that a
message costs no Deferred (:func:`deferred_reply` turns a Deferred into such a ``reply``).

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

Memory is bounded per connection twice over: the decoder never holds more than one frame,
and reading pauses (``pauseProducing``, so the peer's writes block in TCP) while the frames
awaiting their ACK number ``max_pending`` or weigh ``max_pending_bytes``; it resumes once
ACKs bring both under half. A peer that sends without waiting for its ACKs thus cannot make
the engine buffer more than about the byte budget plus one frame.

A peer that half-closes (sends its last frame, shuts its side down, then reads) still gets
the ACKs it is owed: the connection closes once they are written. Not an unsolicited frame (an
application ACK): a half close looks like a close, and a frame written to a closed peer would
be lost while counted as sent; its caller sends it another way.

An :class:`mllp.admission.Admission`, if given, decides at accept which connections are
served (caps, allow-lists); a refused one is closed at once, counted, and logged at WARNING
at most once per ``refusal_log_interval``.

test-case-name: tests.mllp.test_protocol
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable

from twisted.internet import defer
from twisted.internet.interfaces import (
    IHalfCloseableProtocol,
    IHandshakeListener,
    ISSLTransport,
)
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from mllp.admission import Admission, RefusalLog
from mllp.ack import HL7Error, build_nak_without_header, reject_for, stored_control_id
from mllp.codes import APPLICATION_INTERNAL_ERROR, VALUE_TOO_LONG
from mllp.framing import DEFAULT_MAX_FRAME_SIZE, FrameDecoder, FrameTooLarge, encode_frame
from mllp.sendnow import supported as sends_now, write_now

DEFAULT_IDLE_TIMEOUT = 300.0
DEFAULT_MAX_PENDING = 1000
DEFAULT_MAX_PENDING_BYTES = 32 * 1024 * 1024
DEFAULT_REFUSAL_LOG_INTERVAL = 60.0
# Seconds an unsolicited frame (an application ACK) waits, so that it leaves in a TCP
# segment of its own rather than with the accept ACK before it (see write_unsolicited).
DEFAULT_UNSOLICITED_DELAY = 0.05

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


class _Slot:
    """One frame's place in the connection's ACK queue."""

    # ack: the framed bytes to write, None for no answer; size: the frame's, for the budget;
    # written: for an unsolicited frame, fired with whether it was written
    __slots__ = ("ack", "ready", "size", "written")

    def __init__(self, ack: bytes | None = None, ready: bool = False, size: int = 0,
                 written: defer.Deferred | None = None):
        self.ack = ack
        self.ready = ready
        self.size = size
        self.written = written


class _Refused(Protocol):
    """A connection refused at accept: closed at once, before reading anything."""

    def connectionMade(self) -> None:
        self.transport.abortConnection()


@implementer(IHandshakeListener, IHalfCloseableProtocol)
class MLLPServerProtocol(Protocol):
    """One inbound MLLP connection: frames in, ACKs out in arrival order.

    A connection silent for the factory's ``idle_timeout`` is closed, unless ACKs are still
    owed to it (then it gets another full period). Each read notes the clock's time; one
    timer per connection, due ``idle_timeout`` after the last read it knew of, checks that
    note when it fires and is set again for the remainder when the connection was read
    since: a read costs one look at the clock, not a timer moved (Twisted's TimeoutMixin).
    """

    factory: "MLLPServerFactory"

    def __init__(self) -> None:
        self._decoder: FrameDecoder | None = None
        self._queue: deque[_Slot] = deque()
        self._pending_bytes = 0  # sizes of the frames in the queue
        self._peer: Peer | None = None
        self._paused = False
        self._closing = False
        self._lost = False
        self._read_closed = False  # the peer half-closed: close once the ACKs owed are out
        self._send_now = False  # the transport is one mllp.sendnow writes on directly
        self.admitted_host: str | None = None  # set by the factory when admission counts it
        self._now: Callable[[], float] = time.time  # the factory's clock, once connected
        self._read_at = 0.0  # the clock's time at the last read
        self._idle_call: Any = None  # the idle timer (a DelayedCall), None when unset

    def connectionMade(self) -> None:
        self._decoder = FrameDecoder(self.factory.max_frame_size)
        self._send_now = sends_now(self.transport)
        self.factory.connections_open += 1
        self._now = self.factory.clock.seconds
        self._read_at = self._now()
        self._idle_after(self.factory.idle_timeout)

    def connectionLost(self, reason: Any = None) -> None:
        self._lost = True
        if self._idle_call is not None:
            self._idle_call.cancel()
            self._idle_call = None
        for slot in self._queue:
            if slot.written is not None and not slot.written.called:
                slot.written.callback(False)
        self.factory.connections_open -= 1
        if self.admitted_host is not None:
            self.factory.admission.release(self.admitted_host)

    def handshakeCompleted(self) -> None:
        """TLS only: refuse a client certificate outside the allow-list, now it is known."""
        admission = self.factory.admission
        if admission is None:
            return
        reason = admission.admit_certificate(self.peer.client_certificate)
        if reason is not None:
            self._closing = True
            self.factory.log_refusal(reason, self.peer.address)
            self.transport.abortConnection()

    def dataReceived(self, data: bytes) -> None:
        if self._closing:
            return
        self._read_at = self._now()  # the idle timer reads it when it fires
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

    def readConnectionLost(self) -> None:
        """The peer shut its sending side down (a half close) and may be waiting for its
        ACKs: write those owed, not an unsolicited frame, then close (at once when none is)."""
        self._read_closed = True
        for slot in [s for s in self._queue if s.written is not None]:
            self._queue.remove(slot)
            slot.written.callback(False)  # not fired yet: it fires when its slot leaves
        if not self._lost:
            self._flush()

    def writeConnectionLost(self) -> None:
        self.transport.loseConnection()

    def _idle_after(self, seconds: float | None) -> None:
        """Set the idle timer to fire in ``seconds`` (None: no idle timeout)."""
        if seconds is not None:
            self._idle_call = self.factory.clock.callLater(seconds, self._idle_check)

    def _idle_check(self) -> None:
        """The idle timer fired: the connection has been silent for ``idle_timeout`` if
        nothing was read since the timer was set; else wait for the rest of the period
        counted from the last read."""
        self._idle_call = None
        timeout = self.factory.idle_timeout
        silent = self._now() - self._read_at
        if silent < timeout:
            self._idle_after(timeout - silent)
        else:
            self.timeoutConnection()

    def timeoutConnection(self) -> None:
        """Close an idle connection, unless we still owe it ACKs: then wait a full period
        more."""
        if self._queue and not self._closing:
            self._read_at = self._now()
            self._idle_after(self.factory.idle_timeout)
            return
        self.transport.loseConnection()

    @property
    def peer(self) -> Peer:
        """The peer, read lazily: a TLS client certificate is known only after the handshake."""
        if self._peer is None:
            self._peer = self.factory.peer_for(self.transport)
        return self._peer

    @property
    def known_peer(self) -> Peer | None:
        """The peer if it was already read (a frame came), else None: no lookup now."""
        return self._peer

    def _dispatch(self, payload: bytes) -> None:
        factory = self.factory
        factory.frames_received += 1
        slot = _Slot(size=len(payload))
        self._queue.append(slot)
        self._pending_bytes += slot.size
        if factory.sink_replies:
            self._hand_to_replying_sink(payload, slot)
        else:
            self._hand_to_sink(payload, slot)
        if not self._paused and (len(self._queue) >= self.factory.max_pending or
                                 self._pending_bytes >= self.factory.max_pending_bytes):
            self._paused = True
            self.transport.pauseProducing()

    def _hand_to_replying_sink(self, payload: bytes, slot: _Slot) -> None:
        """``receive_then``: the sink calls :meth:`_replied`, maybe before returning."""
        try:
            self.factory.sink.receive_then(payload, self._peer or self.peer,
                                           partial(self._replied, payload, slot))
        except Exception:
            self._sink_failed(Failure(), payload, slot)

    def _hand_to_sink(self, payload: bytes, slot: _Slot) -> None:
        """``receive``: its answer is a Deferred, or the ACK at once."""
        try:
            answer = self.factory.sink.receive(payload, self._peer or self.peer)
        except Exception:
            self._sink_failed(Failure(), payload, slot)
        else:
            if isinstance(answer, defer.Deferred):
                answer.addCallbacks(self._answered, self._sink_failed, callbackArgs=(slot,),
                                    errbackArgs=(payload, slot))
            else:  # answered at once (not stored: an accept ACK of ours consumed, say)
                self._answered(answer, slot)

    def write_unsolicited(self, payload: bytes) -> defer.Deferred:
        """Queue ``payload`` (unframed) behind the ACKs this connection still owes, and write
        it after ``factory.unsolicited_delay`` seconds: an enhanced-mode application ACK,
        which must follow its accept ACK.

        The delay keeps it out of the TCP segment of the ACK before it: some peers read one
        frame per read (@medplum/hl7 decodes two frames read at once as one message). The
        Deferred fires True once it is written, False if the connection went first or the
        peer shut its side (a half close): the caller then sends it another way.
        """
        if self._lost or self._closing or self._read_closed:
            return defer.succeed(False)
        slot = _Slot(encode_frame(payload), written=defer.Deferred())
        self._queue.append(slot)
        self.factory.clock.callLater(self.factory.unsolicited_delay, self._release, slot)
        return slot.written

    def _release(self, slot: _Slot) -> None:
        slot.ready = True
        self._flush()

    @property
    def pending_bytes(self) -> int:
        """Bytes of the frames read and not yet answered on this connection."""
        return self._pending_bytes

    def _replied(self, payload: bytes, slot: _Slot, outcome: Any) -> None:
        """The ``reply`` given to the sink's ``receive_then`` for one frame: its ACK, or a
        Failure."""
        if isinstance(outcome, Failure):
            self._sink_failed(outcome, payload, slot)
        else:
            self._answered(outcome, slot)

    def _sink_failed(self, failure: Any, payload: bytes, slot: _Slot) -> None:
        """The sink's Deferred failed: answer the frame with a reject (AR/207) instead."""
        log.failure("MLLP sink failed for a frame from {peer}; answering AR/207",
                    failure, peer=self.peer.address)
        error = HL7Error(APPLICATION_INTERNAL_ERROR,
                         "the message could not be stored; it was not accepted")
        self._answered(reject_for(payload, error, self.factory.next_control_id(),
                                  self.factory.timestamp()), slot)

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
            slot = self._queue.popleft()
            self._pending_bytes -= slot.size
            if slot.ack and not self._lost:
                if self._send_now and not self._queue:  # nothing after it to write with it
                    write_now(self.transport, slot.ack)
                else:
                    self.transport.write(slot.ack)
            if slot.written is not None and not slot.written.called:
                slot.written.callback(not self._lost)
        if self._paused and len(self._queue) <= self.factory.max_pending // 2 and \
                self._pending_bytes <= self.factory.max_pending_bytes // 2:
            self._paused = False
            if not self._lost and not self._read_closed:
                self.transport.resumeProducing()
        if (self._closing or self._read_closed) and not self._queue and not self._lost:
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
    defaults to the global reactor, imported only then. ``admission``, if given, decides
    which connections are served (see :mod:`mllp.admission`).
    """

    protocol = MLLPServerProtocol

    def __init__(self, sink: Any, *, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
                 idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT, clock: Any = None,
                 transport_name: str = "mllp", max_pending: int = DEFAULT_MAX_PENDING,
                 max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES,
                 admission: Admission | None = None,
                 refusal_log_interval: float = DEFAULT_REFUSAL_LOG_INTERVAL):
        if clock is None:
            from twisted.internet import reactor as clock
        self.sink = sink
        # the sink answers through a reply function rather than a Deferred (see above)
        self.sink_replies = callable(getattr(sink, "receive_then", None))
        self.max_frame_size = max_frame_size
        self.idle_timeout = idle_timeout
        self.clock = clock
        self.transport_name = transport_name
        self.max_pending = max(1, max_pending)
        self.max_pending_bytes = max(1, max_pending_bytes)
        self.admission = admission
        self._refusal_log = RefusalLog(refusal_log_interval)
        self.connections_open = 0
        self.frames_received = 0
        self.bytes_discarded = 0
        self.oversized_frames = 0
        self.unsolicited_delay = DEFAULT_UNSOLICITED_DELAY
        self._control_prefix = f"{int(clock.seconds()):x}-"
        self._control_counter = 0

    def buildProtocol(self, addr: Any) -> Protocol:
        """A protocol for an accepted connection, or one closing it at once if refused."""
        if self.admission is None:
            return super().buildProtocol(addr)
        host = str(getattr(addr, "host", addr))
        reason = self.admission.admit(host)
        if reason is not None:
            self.log_refusal(reason, host)
            return _Refused()
        protocol = super().buildProtocol(addr)
        protocol.admitted_host = host
        return protocol

    def log_refusal(self, reason: str, peer: str) -> None:
        """Log refused connections at WARNING: the first, then once per interval, counted."""
        counts = self._refusal_log.note(reason, self.clock.seconds())
        if counts:
            summary = ", ".join(f"{count} {name}" for name, count in sorted(counts.items()))
            log.warn("MLLP listener refused connections ({summary}; the last from {peer}); "
                     "totals since start: {totals}", summary=summary, peer=peer,
                     totals=dict(self.admission.refused))

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


def deferred_reply(answered: defer.Deferred) -> Callable[[Any], None]:
    """A ``reply`` (see the module's docstring) firing ``answered`` with what it is given:
    a Failure as a failure, anything else as a result."""
    def reply(outcome: Any) -> None:
        if isinstance(outcome, Failure):
            answered.errback(outcome)
        else:
            answered.callback(outcome)
    return reply


def certificate_subject(transport: Any) -> str | None:
    """The RFC 4514 subject of the peer's certificate, or None when it sent none."""
    certificate = transport.getPeerCertificate()
    if certificate is None:
        return None
    return certificate.to_cryptography().subject.rfc4514_string()
