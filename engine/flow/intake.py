"""
The intake: where a source hands over inbound bytes, and where the acknowledgement is decided.

Every payload is committed before it is acknowledged — readable or not. Only MSH is read on
this path (mllp.header), the payload is decoded once with its character set, and the decoded
text travels on to the decision so nothing is parsed twice:

- unreadable MSH (no MSH first, MSH-9/10/12 missing, bad separators): stored in ERROR and
  answered AR (CR in enhanced mode) with the ERR code, since the sender must not resend it as is;
- bytes that do not decode in the declared character set: stored in ERROR, answered AE/CE;
- a header value longer than the store keeps (``HEADER_LIMITS``: MSH-3, 4, 9, 10, 18): stored
  in ERROR with those values clipped, answered AR/CR (ERR 104), the same on every database;
- a duplicate (same sender and MSH-10 on this channel): stored as DUPLICATE, answered AA again;
- a store failure: answered AE/CE 207 so the sender keeps the message and retries.

Each readable message is decided once, by :func:`engine.flow.decision.decide` with its
channel's plan. A fast plan (routing only, built-in steps) is decided here, on the reactor
thread, before the commit: the message, its status and its deliveries commit in one
transaction, and the ACK follows that commit in either mode. A slow plan (a ``python:`` step,
structural validation, ``slow: true``) is committed RECEIVED and handed to the
:class:`~engine.flow.decider.Decider`, which decides it in a worker thread and commits the
decision through the same store write; in after-commit mode the ACK goes out at once, in
after-processing mode once the decision is committed. What the ACK says beyond that (AE or
AR for a message decided into ERROR, AA or AE for a filtered one, MSH-3/MSH-4) is the
channel's :class:`engine.flow.response.ResponsePolicy`. After a commit that queued
deliveries, their lanes are told (:class:`engine.flow.queued.QueuedWork`).

Another channel hands its messages over through :meth:`Intake.hand_over` (the ``channel``
destination, :mod:`engine.flow.handover`): the same path, answered with the commit itself rather
than an ACK, whatever the channel's response mode, since what the sending lane needs to know
is that the message is safe in the store.

test-case-name: tests.flow.test_intake
"""
from __future__ import annotations

import logging
import time
from dataclasses import replace
from functools import partial
from typing import Any, Callable

from twisted.internet import defer
from twisted.python.failure import Failure

from engine import status as st
from engine.flow import dedupe
from engine.flow.appack import answerable, warnings_of, with_application_ack
from engine.flow.decider import Decider, DeciderStopped
from engine.flow.decision import decide
from engine.flow.documents import ingest_document, is_document
from engine.interfaces import InboundDocument
from engine.flow.plan import ChannelPlan, InboundMessage
from engine.flow.queued import QueuedWork
from engine.store.records import (
    HEADER_LIMITS, Decision, InboundRecord, IngestResult, made)
from mllp import ack
from mllp.acktemplate import AckTemplates
from mllp.codes import VALUE_TOO_LONG
from mllp.header import (
    EncodingError, HeaderError, MSHHeader, decode_payload, read_header, read_header_leniently)
from mllp.protocol import deferred_reply

log = logging.getLogger(__name__)

MAX_STORED_ERROR = 4000
PEERS_KEPT = 1024  # peers whose text the intake keeps (_described): connections at once
HANDOVER_TRANSPORT = "channel"  # PeerInfo.transport of a message handed over by a channel


class AckClock:
    """HL7 timestamps (YYYYMMDDHHMMSS) for MSH-7 of ACKs, formatted once per second."""

    def __init__(self) -> None:
        self._second = -1
        self._text = ""

    def now(self) -> str:
        second = int(time.time())
        if second != self._second:
            self._second = second
            self._text = time.strftime("%Y%m%d%H%M%S", time.localtime(second))
        return self._text


class ChannelNotRunning(LookupError):
    """A hand-over names a channel this engine does not run."""


class Intake:
    """Implements :class:`engine.interfaces.Receiver` for every channel of an engine."""

    def __init__(self, store: Any, channels: dict[str, ChannelPlan], decider: Decider,
                 queued: QueuedWork):
        self._store = store
        self.channels = channels
        self._decider = decider
        self._queued = queued
        self._clock = AckClock()
        self._acks = AckTemplates()
        self._peers: dict[int, tuple[Any, str, bool]] = {}  # id -> self._described(peer)
        self.received = 0
        self.rejected = 0
        self.decided = 0  # messages decided here, before their commit
        # channel -> messages committed without a decision, not yet handed to the decider
        self._undecided: dict[str, int] = {}

    # -- Receiver ----------------------------------------------------------------------

    def receive(self, channel: str, payload: bytes, peer: Any) -> defer.Deferred:
        """Commit ``payload``, then return a Deferred firing with the ACK bytes."""
        answered: defer.Deferred = defer.Deferred()
        self.receive_then(channel, payload, peer, deferred_reply(answered))
        return answered

    def receive_then(self, channel: str, payload: bytes, peer: Any,
                     reply: Callable[[Any], None]) -> None:
        """:meth:`receive` without a Deferred: ``reply`` is called once, on the reactor
        thread, with the ACK bytes (or a Failure if they could not be made). The MLLP
        source's way: a Deferred and its callbacks would cost the reactor thread more than
        the rest of a plain message's answer."""
        self.received += 1
        self._receive(self.channels[channel], payload, peer, None, None, reply)

    def receive_document(self, channel: str, document: Any, peer: Any) -> defer.Deferred:
        """Commit a document that is not HL7 v2 (:class:`engine.interfaces.InboundDocument`,
        from an XDS.b source); Deferred[IngestResult] once committed
        (:mod:`engine.flow.documents`). Implements :class:`engine.interfaces.DocumentReceiver`."""
        self.received += 1
        return ingest_document(self._store, self._queued, self.channels[channel], document,
                               _peer_text(peer))

    def hand_over(self, channel: str, payload: bytes, peer: Any,
                  charset: str | None = None) -> defer.Deferred:
        """Take ``payload`` from another channel as a new inbound message of ``channel``.

        Returns a Deferred firing with the :class:`IngestResult` once the message is
        committed (RECEIVED or its decided status, DUPLICATE for a hand-over made again,
        ERROR when its MSH cannot be read), or failing when it could not be: the store's
        failure, or :class:`ChannelNotRunning`. ``charset`` is what the bytes are written in
        when their MSH-18 is empty (the sending channel's), instead of this channel's
        ``encoding``. The message then goes on as any other: decided, delivered,
        acknowledged to nobody. A document (XML: the CDA or the submission a transform
        made) is committed as :meth:`receive_document` does, of type ``document``.
        """
        plan = self.channels.get(channel)
        if plan is None:
            return defer.fail(ChannelNotRunning(f'channel "{channel}" is not running here'))
        if is_document(payload):  # a CDA or an XDS submission another channel made
            return self.receive_document(channel, InboundDocument(payload, "document"), peer)
        self.received += 1
        committed: defer.Deferred = defer.Deferred()
        self._receive(plan, payload, peer, charset, committed, _unanswered)  # its ACK: nobody
        return committed

    def _receive(self, plan: ChannelPlan, payload: bytes, peer: Any, charset: str | None,
                 committed: defer.Deferred | None, reply: Callable[[Any], None]) -> None:
        """The path of every inbound message; ``committed``, if given, learns the commit's
        outcome before the ACK is built; ``reply`` is given the ACK (or a Failure)."""
        encoding = charset or plan.encoding
        try:
            header = read_header(payload)
        except HeaderError as error:
            return self._store_unreadable(plan, payload, peer, None, error, committed, reply)
        too_long = _overlong(header)
        if too_long is not None:
            return self._store_unreadable(plan, payload, peer, header, too_long, committed,
                                          reply, ack.REJECT)
        try:
            text = decode_payload(payload, header, encoding)
        except EncodingError as error:
            return self._store_unreadable(plan, payload, peer, header, error, committed, reply)
        charset = header.charset or encoding
        known = self._peers.get(id(peer))
        if known is None or known[0] is not peer:
            known = self._described(peer)
        _, peer_text, answers = known
        message = made(InboundMessage, message_id=0, text=text,
                       field_separator=header.field_separator,
                       encoding_characters=header.encoding_characters, raw=payload,
                       control_id=header.control_id, message_type=header.message_type,
                       charset=charset, header=header, answerable=answers, peer=peer_text)
        decision = None
        if self._decides_now(plan):
            self.decided += 1
            decision = decide(plan, message)
            if message.answerable:
                decision = with_application_ack(plan, header, decision)
        else:
            self._undecided[plan.name] = self._undecided.get(plan.name, 0) + 1
        record = made(
            InboundRecord,
            channel=plan.name, received_at=time.time(), peer=peer_text, raw=payload,
            status=st.RECEIVED, sender=f"{header.sending_application}|{header.sending_facility}",
            control_id=header.control_id, message_type=header.message_type, charset=charset,
            error=None, dedupe=plan.dedupe, decision=decision, identity=dedupe.identity(header))
        self._store.ingest(record, partial(self._stored, committed, reply, plan, header,
                                           message, decision))

    def _stored(self, committed: defer.Deferred | None, reply: Callable[[Any], None],
                plan: ChannelPlan, header: MSHHeader, message: InboundMessage,
                decision: Decision | None, ok: bool, result: Any) -> None:
        """The store's answer for a readable message (``ok``: committed, ``result`` its
        IngestResult; else the exception): ``committed`` told, then the ACK made and given
        to ``reply``, or, if making it raised, the Failure."""
        outcome = result if ok else Failure(result)
        if committed is not None:
            _tell(committed, outcome)
        try:
            if ok:
                answer = self._committed(outcome, plan, header, message, decision)
            else:
                answer = self._commit_failed(outcome, plan, header, decision is None)
        except Exception:
            reply(Failure())
            return
        # bytes, or a Deferred waiting for a decision (a slow plan); asked of bytes, since
        # isinstance of Deferred (an ABC through typing.Awaitable) is a Python-level call
        if isinstance(answer, bytes):
            reply(answer)
        else:
            answer.addBoth(reply)

    def _described(self, peer: Any) -> tuple[Any, str, bool]:
        """(``peer``, its text as stored, whether it can be answered an application ACK),
        kept by the peer's identity: a source gives one PeerInfo per connection, and its
        messages then skip both. The entry holds the peer, so its id is not reused while
        kept; at most PEERS_KEPT are."""
        if len(self._peers) >= PEERS_KEPT:
            self._peers.clear()
        described = self._peers[id(peer)] = (peer, _peer_text(peer), answerable(peer))
        return described

    def _decides_now(self, plan: ChannelPlan) -> bool:
        """Whether a message of ``plan`` is decided here, before its commit: its plan is
        fast, and no earlier message of its channel waits for a decision (a reload just made
        the plan fast), which it would overtake."""
        return (not plan.slow and not self._undecided.get(plan.name)
                and not self._decider.holds(plan.name))

    def _handed_over(self, channel: str) -> None:
        """A message committed without a decision has gone to the decider (or failed)."""
        left = self._undecided.get(channel, 0) - 1
        if left > 0:
            self._undecided[channel] = left
        else:
            self._undecided.pop(channel, None)

    def reject(self, channel: str, payload: bytes, peer: Any, error: str) -> defer.Deferred:
        """Store input that never became a frame (oversized, broken), with what of its MSH
        can be read; Deferred[IngestResult]."""
        self.rejected += 1
        record = InboundRecord(channel=channel, received_at=time.time(), peer=_peer_text(peer),
                               raw=payload, status=st.ERROR, error=error[:MAX_STORED_ERROR],
                               **_described_by(read_header_leniently(payload)))
        d = self._store.ingest(record)
        d.addErrback(self._log_lost, channel, error)
        return d

    # -- outcomes ----------------------------------------------------------------------

    def _committed(self, result: IngestResult, plan: ChannelPlan, header: MSHHeader,
                   message: InboundMessage, decision: Decision | None) -> Any:
        if decision is None:
            self._handed_over(plan.name)  # below, or not to be decided (a duplicate)
        if result.status == st.DUPLICATE:
            return self._ack(plan, header, ack.ACCEPT, result.message_id,
                             text=f"duplicate of message {result.duplicate_of}, not processed again")
        if decision is not None:  # decided before the commit, committed with it
            if result.delivery_ids:
                self._queued.add(plan.name, decision.deliveries)
            return self._decided_ack(decision, plan, header, result.message_id)
        message = replace(message, message_id=result.message_id)
        decided = self._decider.submit(plan.name, message)
        if not _waits_for_processing(plan, header):
            decided.addErrback(_left_received, result.message_id)
            return self._ack(plan, header, ack.ACCEPT, result.message_id)
        decided.addCallback(self._decided_ack, plan, header, result.message_id)
        decided.addErrback(self._processing_failed, plan, header, result.message_id)
        return decided

    def _decided_ack(self, decision: Decision, plan: ChannelPlan, header: MSHHeader,
                     message_id: int) -> bytes:
        """The ACK of a decided message: AA in after-commit mode, else what the response
        policy says of its status."""
        response = plan.response
        if not _waits_for_processing(plan, header):
            return self._ack(plan, header, ack.ACCEPT, message_id)
        if decision.response is not None:
            return decision.response  # a query's answer (engine.flow.hook)
        if decision.status == st.TRANSFORMED:
            return self._ack(plan, header, ack.ACCEPT, message_id, errors=warnings_of(decision))
        if decision.status == st.ERROR:
            error = ack.HL7Error(decision.error_code or ack.APPLICATION_INTERNAL_ERROR,
                                 decision.error or "processing failed", decision.error_location)
            return self._ack(plan, header, response.error_outcome, message_id,
                             errors=(error,), text=decision.error or "")
        return self._ack(plan, header, response.filtered_outcome, message_id, text="filtered")

    def _processing_failed(self, failure: Any, plan: ChannelPlan, header: MSHHeader,
                           message_id: int) -> bytes:
        log.error("message %d: recording its processing failed: %s", message_id,
                  failure.getErrorMessage())
        error = ack.HL7Error(ack.APPLICATION_INTERNAL_ERROR, "processing could not be recorded")
        return self._ack(plan, header, ack.ERROR, message_id, errors=(error,))

    def _commit_failed(self, failure: Any, plan: ChannelPlan, header: MSHHeader,
                       undecided: bool = False) -> bytes:
        if undecided:
            self._handed_over(plan.name)
        log.error("commit of message %s failed: %s", header.control_id, failure.getErrorMessage())
        error = ack.HL7Error(ack.APPLICATION_INTERNAL_ERROR,
                             "the message could not be stored; send it again later")
        return self._ack(plan, header, ack.ERROR, None, errors=(error,))

    def _store_unreadable(self, plan: ChannelPlan, payload: bytes, peer: Any,
                          header: MSHHeader | None, error: HeaderError,
                          committed: defer.Deferred | None, reply: Callable[[Any], None],
                          outcome: str | None = None) -> None:
        """Store ``payload`` in ERROR (its header values clipped to what the store keeps)
        and answer ``outcome``: by default AE when MSH was read, AR when it was not."""
        record = InboundRecord(
            channel=plan.name, received_at=time.time(), peer=_peer_text(peer), raw=payload,
            status=st.ERROR, error=str(error)[:MAX_STORED_ERROR],
            charset=header.charset[:HEADER_LIMITS[18]] if header else None,
            **_described_by(header or read_header_leniently(payload)),
        )
        if outcome is None:
            outcome = ack.ERROR if header is not None else ack.REJECT
        self._store.ingest(record, partial(self._unreadable_stored, committed, reply, plan,
                                           header, outcome, error, payload))

    def _unreadable_stored(self, committed: defer.Deferred | None,
                           reply: Callable[[Any], None], plan: ChannelPlan,
                           header: MSHHeader | None, outcome: str, error: HeaderError,
                           payload: bytes, ok: bool, result: Any) -> None:
        """The store's answer for an unreadable message: ``committed`` told, then its NAK
        given to ``reply``: ``outcome`` naming the record once stored; AE without a record
        id if it was not, or if that NAK could not be made."""
        if committed is not None:
            _tell(committed, result if ok else Failure(result))
        try:
            try:
                if not ok:
                    raise result
                answer = self._nak(plan, header, outcome, error, result.message_id, payload)
            except Exception:
                answer = self._nak(plan, header, ack.ERROR, error, None, payload)
        except Exception:
            reply(Failure())
            return
        reply(answer)

    # -- ACK building ------------------------------------------------------------------

    def _ack(self, plan: ChannelPlan, header: MSHHeader, outcome: str,
             message_id: int | None, *, text: str = "", errors: tuple = ()) -> bytes:
        """The ACK for ``outcome``; in enhanced mode the accept ACK, b"" (no answer) when
        MSH-15 asks for none in this case (NE; ER on success; SU on a failure)."""
        code = ack.answers_for(header).accept[outcome]
        if code is None:
            return b""
        response = plan.response
        if not text and not errors:  # the common answer: from its sender's template
            return self._acks.build(header, code, control_id=_ack_control_id(message_id),
                                    timestamp=self._clock.now(),
                                    sending_application=response.sending_application,
                                    sending_facility=response.sending_facility)
        return ack.build_ack(header, code, text=text, errors=errors,
                             control_id=_ack_control_id(message_id), timestamp=self._clock.now(),
                             sending_application=response.sending_application,
                             sending_facility=response.sending_facility)

    def _nak(self, plan: ChannelPlan, header: MSHHeader | None, outcome: str,
             error: HeaderError, message_id: int | None, payload: bytes) -> bytes:
        hl7_error = ack.HL7Error.from_exception(error)
        if header is None:  # the refusal echoes what of the MSH can be read
            response = plan.response
            return ack.build_nak_without_header(
                hl7_error, _ack_control_id(message_id), self._clock.now(), payload=payload,
                sending_application=response.sending_application,
                sending_facility=response.sending_facility)
        return self._ack(plan, header, outcome, message_id, text=error.text,
                         errors=(hl7_error,))

    def _log_lost(self, failure: Any, channel: str, error: str) -> None:
        log.error("channel %s: could not store rejected input (%s): %s", channel, error,
                  failure.getErrorMessage())


def _waits_for_processing(plan: ChannelPlan, header: MSHHeader) -> bool:
    """Whether the ACK waits for the decision: after-processing mode, original mode only.

    In enhanced mode (MSH-15/16 valued) the ACK answering the frame is the accept ACK, which
    says the message is committed (CA); the outcome of processing goes in the application
    ACK that MSH-16 asks for (:mod:`engine.flow.appack`), so that an error is AE after CA.
    """
    return plan.response.after_processing and ack.ack_mode_for(header) == ack.ORIGINAL


def _overlong(header: MSHHeader) -> HeaderError | None:
    """The first MSH value longer than the store keeps, as an error naming it; or None."""
    if (len(header.sending_application) <= _SHORTEST and len(header.sending_facility)
            <= _SHORTEST and len(header.message_type) <= _SHORTEST
            and len(header.control_id) <= _SHORTEST and len(header.charset) <= _SHORTEST):
        return None  # every value fits the narrowest column: nearly every message
    for number, name, limit in _STORED_FIELDS:
        value = getattr(header, name)
        if len(value) > limit:
            return HeaderError(VALUE_TOO_LONG, f"MSH-{number} is {len(value)} characters long, "
                               f"more than the {limit} this engine accepts", f"MSH^1^{number}")
    return None


# (MSH-n, MSHHeader attribute, longest value kept) of each header value the store keeps
_STORED_FIELDS = tuple((number, {3: "sending_application", 4: "sending_facility",
                                 9: "message_type", 10: "control_id", 18: "charset"}[number],
                        limit) for number, limit in HEADER_LIMITS.items())
_SHORTEST = min(HEADER_LIMITS.values())


def _ack_control_id(message_id: int | None) -> str:
    """MSH-10 of our ACK: tied to the stored message so an ACK can be traced back to it."""
    if message_id is not None:
        return ack.stored_control_id(message_id)
    return f"ACKX{time.time_ns() % 10**12}"


def _described_by(header: MSHHeader) -> dict[str, str | None]:
    """The sender, control id and message type a record keeps of ``header`` (None if empty),
    each cut to the width of its column (``HEADER_LIMITS``)."""
    limits = HEADER_LIMITS
    sender = f"{header.sending_application[:limits[3]]}|{header.sending_facility[:limits[4]]}"
    return {"sender": sender if sender != "|" else None,
            "control_id": header.control_id[:limits[10]] or None,
            "message_type": header.message_type[:limits[9]] or None}


def _left_received(failure: Failure, message_id: int) -> None:
    """After-commit mode: the sender has its ACK; a message the decider could not take
    (stopping) or whose decision's commit failed (the decider logs it) stays RECEIVED, for
    the recovery scan."""
    if not failure.check(DeciderStopped):
        log.debug("message %d left RECEIVED: %s", message_id, failure.getErrorMessage())


def _tell(committed: defer.Deferred, outcome: Any) -> None:
    """Pass the commit's ``outcome`` (its IngestResult, or a Failure) to ``committed``."""
    if isinstance(outcome, Failure):
        committed.errback(outcome)
    else:
        committed.callback(outcome)


def _unanswered(outcome: Any) -> None:
    """The reply of a message handed over by another channel: its ACK goes to nobody; a
    failure to make it is logged."""
    if isinstance(outcome, Failure):
        log.error("the ACK of a handed-over message could not be made: %s",
                  outcome.getErrorMessage())


def _peer_text(peer: Any) -> str:
    address = getattr(peer, "address", None)
    transport = getattr(peer, "transport", None)
    if address is None:
        return str(peer)[:255]
    if transport == HANDOVER_TRANSPORT:  # another channel: "channel:adt-in/message 42"
        return f"{transport}:{address}"[:255]
    return f"{transport}://{address}"[:255]
