"""
Runs committed messages through their channel's pipeline, off the acknowledgement path.

A message enters here only after its RECEIVED commit, and in after-commit mode after its ACK
has been written: the processor queues it and drains the queue on a later reactor turn, in
slices, so that a burst of processing never delays the ACKs of the next batch. The pipeline is
pure Python (a thread would buy no parallelism under the GIL, only interleaving), and its
outcome is committed through the group-commit writer, after which the delivery lanes that got
new work are woken.

Messages that are RECEIVED in the store but not in memory — left by a crash, or set back to
RECEIVED by ``aiguillage messages replay`` — are found by a periodic scan. The writer refuses
to record an outcome for a message that is no longer RECEIVED, so a message seen both ways is
still processed once.

test-case-name: tests.flow.test_processor
"""
from __future__ import annotations

import logging
from collections import deque
from typing import Any, Callable

from twisted.internet import defer

from engine.flow import pipeline
from engine import status as st
from engine.store import queries
from engine.store.records import ProcessingResult
from mllp.header import HeaderError, decode_payload, read_header

log = logging.getLogger(__name__)

class ProcessorStopped(Exception):
    """The engine stopped before this message's pipeline ran; it stays RECEIVED."""


SLICE = 200  # messages processed per reactor turn
SCAN_INTERVAL = 1.0
SCAN_BATCH = 500


class Processor:
    """Queue of committed messages waiting for their pipeline run."""

    def __init__(self, store: Any, clock: Any, channels: dict[str, pipeline.ChannelPlan],
                 wake_lanes: Callable[[ProcessingResult, list[int], pipeline.InboundMessage], None],
                 *,
                 scan_interval: float = SCAN_INTERVAL):
        self._store = store
        self._clock = clock
        self.channels = channels
        self._wake_lanes = wake_lanes
        self._scan_interval = scan_interval
        self._queue: deque = deque()
        self._inflight: set[int] = set()
        self._drain_call: Any = None
        self._scan_call: Any = None
        self._scan_cursor = 0
        self._running = False
        self.processed = 0

    def start(self) -> None:
        self._running = True
        self._scan()

    def stop(self) -> None:
        """Stop processing; messages still queued stay RECEIVED in the store and are
        processed after the next start. Their Deferreds fail, so nothing waits forever."""
        self._running = False
        for call in (self._drain_call, self._scan_call):
            if call is not None and call.active():
                call.cancel()
        self._drain_call = self._scan_call = None
        while self._queue:
            message, _, d = self._queue.popleft()
            self._inflight.discard(message.message_id)
            d.errback(ProcessorStopped(f"message {message.message_id} left for the next start"))

    def enqueue(self, message: pipeline.InboundMessage, channel: str) -> defer.Deferred:
        """Process ``message`` soon; Deferred[ProcessingResult] fires once it is committed."""
        d = defer.Deferred()
        self._inflight.add(message.message_id)
        self._queue.append((message, channel, d))
        if self._drain_call is None:
            self._drain_call = self._clock.callLater(0, self._drain)
        return d

    def settle(self, channel: str) -> defer.Deferred:
        """Deferred firing once the messages of ``channel`` queued now have been run.

        A reload that removes a channel waits for this before dropping the channel's plan,
        so that what its source accepted is processed with the plan it was accepted under.
        """
        waits = []
        for _, name, d in self._queue:
            if name == channel:
                done: defer.Deferred = defer.Deferred()
                d.addBoth(_passing_to, done)
                waits.append(done)
        return defer.gatherResults(waits).addCallback(lambda _: None)

    def _drain(self) -> None:
        self._drain_call = None
        for _ in range(min(SLICE, len(self._queue))):
            message, channel, d = self._queue.popleft()
            self._run_one(message, channel).chainDeferred(d)
        if self._queue:
            self._drain_call = self._clock.callLater(0, self._drain)

    def _run_one(self, message: pipeline.InboundMessage, channel: str) -> defer.Deferred:
        plan = self.channels.get(channel)
        if plan is None:
            result = ProcessingResult(message.message_id, channel, st.ERROR,
                                      error=f"channel {channel!r} is not loaded")
        else:
            try:
                result = pipeline.process(plan, message)
            except Exception as exc:  # a bug in a step must not stop the others
                log.exception("pipeline of channel %s failed on message %d", channel,
                              message.message_id)
                result = ProcessingResult(message.message_id, channel, st.ERROR,
                                          error=f"{type(exc).__name__}: {exc}")
        d = self._store.record_processing(result)
        d.addCallback(self._recorded, result, message)
        d.addBoth(self._done, message.message_id)
        return d

    def _recorded(self, delivery_ids: list[int] | None, result: ProcessingResult,
                  message: pipeline.InboundMessage) -> ProcessingResult:
        if delivery_ids is not None:  # None: the message had been processed already
            self.processed += 1
        if delivery_ids:
            self._wake_lanes(result, delivery_ids, message)
        return result

    def _done(self, outcome: Any, message_id: int) -> Any:
        self._inflight.discard(message_id)
        return outcome

    # -- recovery and replays ----------------------------------------------------------

    def _scan(self) -> None:
        self._scan_call = None
        if not self._running:
            return
        d = self._store.read(queries.received_messages, self._scan_cursor, SCAN_BATCH)
        d.addCallbacks(self._scanned, self._scan_failed)

    def _scanned(self, rows: list) -> None:
        for row in rows:
            if row.id not in self._inflight:
                self._requeue(row)
        if len(rows) == SCAN_BATCH:
            self._scan_cursor = rows[-1].id
            self._scan_call = self._clock.callLater(0, self._scan)
            return
        self._scan_cursor = 0
        self._schedule_scan()

    def _scan_failed(self, failure: Any) -> None:
        log.error("scanning for unprocessed messages failed: %s", failure.getErrorMessage())
        self._schedule_scan()

    def _schedule_scan(self) -> None:
        if self._running:
            self._scan_call = self._clock.callLater(self._scan_interval, self._scan)

    def _requeue(self, row: Any) -> None:
        plan = self.channels.get(row.channel)
        # The character set the message was accepted in when its MSH-18 is empty (a message
        # handed over by another channel keeps that channel's); for one stored in ERROR
        # without MSH-18, none was settled and the channel's encoding, perhaps fixed since,
        # is tried.
        encoding = row.charset or (plan.encoding if plan else "UNICODE UTF-8")
        try:
            header = read_header(row.raw)
            text = decode_payload(row.raw, header, encoding)
        except Exception as error:  # HeaderError, or e.g. a channel encoding gone bad
            reason = str(error) if isinstance(error, HeaderError) else f"{type(error).__name__}: {error}"
            result = ProcessingResult(row.id, row.channel, st.ERROR, error=reason)
            self._inflight.add(row.id)
            d = self._store.record_processing(result)
            d.addBoth(self._done, row.id)
            d.addErrback(self._log_failure, row.id)
            return
        message = pipeline.InboundMessage(row.id, text, header.field_separator,
                                          header.encoding_characters, row.raw, row.control_id,
                                          row.message_type, row.charset)
        self.enqueue(message, row.channel).addErrback(self._log_failure, row.id)

    def _log_failure(self, failure: Any, message_id: int) -> None:
        log.error("processing message %d failed: %s", message_id, failure.getErrorMessage())


def _passing_to(result: Any, waiter: defer.Deferred) -> Any:
    """Fire ``waiter`` and hand ``result`` on unchanged down its own chain."""
    waiter.callback(None)
    return result
