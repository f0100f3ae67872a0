"""
The intake: where a source hands over inbound bytes, and where the acknowledgement is decided.

Every payload is committed before it is acknowledged — readable or not. Only MSH is read on
this path (mllp.header), the payload is decoded once with its character set, and the decoded
text travels on to the pipeline so nothing is parsed twice:

- unreadable MSH (no MSH first, MSH-9/10/12 missing, bad separators): stored in ERROR and
  answered AR (CR in enhanced mode) with the ERR code, since the sender must not resend it as is;
- bytes that do not decode in the declared character set: stored in ERROR, answered AE/CE;
- a duplicate (same sender and MSH-10 on this channel): stored as DUPLICATE, answered AA again;
- a store failure: answered AE/CE 207 so the sender keeps the message and retries.

In after-commit mode the ACK goes out as soon as the commit is done and the message is queued
for processing; in after-processing mode the ACK waits for the pipeline and reports its outcome.
A channel whose steps are all built-in has its pipeline run here, before the one commit
(engine.intakepipeline), so that message, outcome and deliveries commit together.

test-case-name: tests.test_intake
"""
from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any, Callable

from twisted.internet import defer

from engine import status as st
from engine import pipeline
from engine.intakepipeline import IntakePipeline
from engine.pipeline import ACK_AFTER_PROCESSING, ChannelPlan, InboundMessage
from engine.store.records import InboundRecord, IngestResult, ProcessingResult
from mllp import ack
from mllp.header import EncodingError, HeaderError, MSHHeader, decode_payload, read_header

log = logging.getLogger(__name__)

MAX_STORED_ERROR = 4000


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


class Intake:
    """Implements :class:`engine.interfaces.Receiver` for every channel of an engine."""

    def __init__(self, store: Any, processor: Any, channels: dict[str, ChannelPlan],
                 deliver: Callable[[ProcessingResult, list[int], InboundMessage], None]
                 | None = None):
        self._store = store
        self._processor = processor
        self.channels = channels
        self._deliver = deliver  # hands deliveries committed with their message to the lanes
        self._clock = AckClock()
        self.pipeline = IntakePipeline()  # runs built-in steps before the commit
        self.received = 0
        self.rejected = 0

    # -- Receiver ----------------------------------------------------------------------

    def receive(self, channel: str, payload: bytes, peer: Any) -> defer.Deferred:
        """Commit ``payload``, then return a Deferred firing with the ACK bytes."""
        self.received += 1
        plan = self.channels[channel]
        try:
            header = read_header(payload)
        except HeaderError as error:
            return self._store_unreadable(plan, payload, peer, None, error)
        try:
            text = decode_payload(payload, header, plan.encoding)
        except EncodingError as error:
            return self._store_unreadable(plan, payload, peer, header, error)
        routed = self._route(plan, header, text)
        processed = None if routed is not None else self.pipeline.process(
            plan, text, header.field_separator, header.encoding_characters, payload,
            header.charset or plan.encoding)
        record = InboundRecord(
            channel=channel, received_at=time.time(), peer=_peer_text(peer), raw=payload,
            status=st.RECEIVED, sender=f"{header.sending_application}|{header.sending_facility}",
            control_id=header.control_id, message_type=header.message_type,
            charset=header.charset or plan.encoding, dedupe=plan.dedupe,
            routed=routed, processed=processed,
        )
        d = self._store.ingest(record)
        d.addCallbacks(self._committed, self._commit_failed,
                       callbackArgs=(plan, header, text, payload, routed, processed),
                       errbackArgs=(header,))
        return d

    def reject(self, channel: str, payload: bytes, peer: Any, error: str) -> defer.Deferred:
        """Store input that never became a frame (oversized, broken); Deferred[IngestResult]."""
        self.rejected += 1
        record = InboundRecord(channel=channel, received_at=time.time(), peer=_peer_text(peer),
                               raw=payload, status=st.ERROR, error=error[:MAX_STORED_ERROR])
        d = self._store.ingest(record)
        d.addErrback(self._log_lost, channel, error)
        return d

    # -- outcomes ----------------------------------------------------------------------

    def _committed(self, result: IngestResult, plan: ChannelPlan, header: MSHHeader,
                   text: str, raw: bytes, routed: tuple | None,
                   processed: ProcessingResult | None = None) -> Any:
        if result.status == st.DUPLICATE:
            return self._ack(header, ack.ACCEPT, result.message_id,
                             text=f"duplicate of message {result.duplicate_of}, not processed again")
        message = InboundMessage(result.message_id, text, header.field_separator,
                                 header.encoding_characters, raw, header.control_id,
                                 header.message_type, header.charset or plan.encoding)
        if processed is not None:  # the pipeline ran at intake, its outcome committed with it
            return self._processed_at_intake(result, processed, plan, header, message)
        if result.status == st.TRANSFORMED:  # routed at intake, deliveries committed with it
            routed = ProcessingResult(result.message_id, plan.name, st.TRANSFORMED,
                                      deliveries=routed)
            if self._deliver is not None:
                self._deliver(routed, list(result.delivery_ids), message)
            return self._ack(header, ack.ACCEPT, result.message_id)
        processed = self._processor.enqueue(message, plan.name)
        if plan.ack_mode != ACK_AFTER_PROCESSING:
            return self._ack(header, ack.ACCEPT, result.message_id)
        processed.addCallback(self._processed_ack, header)
        processed.addErrback(self._processing_failed, header, result.message_id)
        return processed

    def _processed_at_intake(self, result: IngestResult, processed: ProcessingResult,
                             plan: ChannelPlan, header: MSHHeader,
                             message: InboundMessage) -> Any:
        """Hand the committed deliveries to the lanes and answer as the processor path would."""
        outcome = replace(processed, message_id=result.message_id)
        if self._deliver is not None and result.delivery_ids:
            self._deliver(outcome, list(result.delivery_ids), message)
        if plan.ack_mode != ACK_AFTER_PROCESSING:
            return self._ack(header, ack.ACCEPT, result.message_id)
        return self._processed_ack(outcome, header)

    @staticmethod
    def _route(plan: ChannelPlan, header: MSHHeader, text: str) -> tuple | None:
        """The deliveries when the channel only routes; None when the processor decides."""
        if not plan.routes_at_intake:
            return None
        return pipeline.route(plan, text, header.field_separator, header.encoding_characters)

    def _processed_ack(self, outcome: ProcessingResult, header: MSHHeader) -> bytes:
        if outcome.status == st.ERROR:
            error = ack.HL7Error(ack.APPLICATION_INTERNAL_ERROR, outcome.error or "processing failed")
            return self._ack(header, ack.ERROR, outcome.message_id, errors=(error,),
                             text=outcome.error or "")
        text = "filtered" if outcome.status == st.FILTERED else ""
        return self._ack(header, ack.ACCEPT, outcome.message_id, text=text)

    def _processing_failed(self, failure: Any, header: MSHHeader, message_id: int) -> bytes:
        log.error("message %d: recording its processing failed: %s", message_id,
                  failure.getErrorMessage())
        error = ack.HL7Error(ack.APPLICATION_INTERNAL_ERROR, "processing could not be recorded")
        return self._ack(header, ack.ERROR, message_id, errors=(error,))

    def _commit_failed(self, failure: Any, header: MSHHeader) -> bytes:
        log.error("commit of message %s failed: %s", header.control_id, failure.getErrorMessage())
        error = ack.HL7Error(ack.APPLICATION_INTERNAL_ERROR,
                             "the message could not be stored; send it again later")
        return self._ack(header, ack.ERROR, None, errors=(error,))

    def _store_unreadable(self, plan: ChannelPlan, payload: bytes, peer: Any,
                          header: MSHHeader | None, error: HeaderError) -> defer.Deferred:
        record = InboundRecord(
            channel=plan.name, received_at=time.time(), peer=_peer_text(peer), raw=payload,
            status=st.ERROR, error=str(error)[:MAX_STORED_ERROR],
            sender=f"{header.sending_application}|{header.sending_facility}" if header else None,
            control_id=header.control_id if header else None,
            message_type=header.message_type if header else None,
            charset=header.charset if header else None,
        )
        outcome = ack.ERROR if header is not None else ack.REJECT
        d = self._store.ingest(record)
        d.addCallback(lambda result: self._nak(header, outcome, error, result.message_id))
        d.addErrback(lambda failure: self._nak(header, ack.ERROR, error, None))
        return d

    # -- ACK building ------------------------------------------------------------------

    def _ack(self, header: MSHHeader, outcome: str, message_id: int | None, *,
             text: str = "", errors: tuple = ()) -> bytes:
        code = ack.ack_code(outcome, ack.ack_mode_for(header))
        return ack.build_ack(header, code, text=text, errors=errors,
                             control_id=_ack_control_id(message_id), timestamp=self._clock.now())

    def _nak(self, header: MSHHeader | None, outcome: str, error: HeaderError,
             message_id: int | None) -> bytes:
        hl7_error = ack.HL7Error.from_exception(error)
        if header is None:
            return ack.build_nak_without_header(hl7_error, _ack_control_id(message_id),
                                                self._clock.now())
        return self._ack(header, outcome, message_id, text=error.text, errors=(hl7_error,))

    def _log_lost(self, failure: Any, channel: str, error: str) -> None:
        log.error("channel %s: could not store rejected input (%s): %s", channel, error,
                  failure.getErrorMessage())


def _ack_control_id(message_id: int | None) -> str:
    """MSH-10 of our ACK: tied to the stored message so an ACK can be traced back to it."""
    return f"ACK{message_id}" if message_id is not None else f"ACKX{time.time_ns() % 10**12}"


def _peer_text(peer: Any) -> str:
    address = getattr(peer, "address", None)
    transport = getattr(peer, "transport", None)
    if address is None:
        return str(peer)[:255]
    return f"{transport}://{address}"[:255]
