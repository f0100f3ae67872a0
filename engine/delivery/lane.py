"""
Delivery lanes: send each destination's queued deliveries, in order, with retries.

A :class:`Lane` is one FIFO of one destination. It reads due deliveries from the store in
batches, sends them one at a time through its own :class:`~engine.interfaces.Destination`
(so message n+1 is never sent before message n is SENT or parked), and records each outcome
through the group-commit writer. A failed send is retried after the destination's backoff,
holding the lane (that is what keeps order); once the retries are spent, or when the peer
rejects the message outright, the delivery is parked in ERROR and the lane moves on.

Recording SENT is not awaited before the next send: if the engine dies between a send and its
commit, the delivery is sent again after restart (at-least-once; receivers dedupe on MSH-10).

Under load the lane does not read its work back from the store: the processor offers each
delivery it has just committed, payload included (:meth:`Lane.offer`). The lane takes offers
only while it is caught up with the store (its last read reached the end of its queue) and its
buffer has room; otherwise it drops them and reads them from the store later, in order. The
ids of deliveries whose outcome is committed while a read is under way are kept until that
read returns, so that a read started before such a commit cannot bring the delivery back; a
delivery finished before a read started and still QUEUED in it was queued again (a replay).
An offer can also come late: the writer thread may report a commit only after the lane has
read that delivery from the store, sent it and committed its outcome (seen under heavy load).
The node's single writer gives delivery ids in commit order (one node per store, as
docs/operations.md requires), so an offered id at or below the highest id a read returned was
committed before that read, which saw it (and the lane sent it) or found it finished: such an
offer is stale and dropped.

test-case-name: tests.delivery.test_lane
"""
from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer

from engine import status as st
from engine.interfaces import DeliveryContext, DeliveryFailed, DeliveryOutcome
from engine.store import queries
from engine.store.records import DeliveryUpdate, DueDelivery

log = logging.getLogger(__name__)

FETCH_BATCH = 500
BUFFER_MAX = 5000  # deliveries held in memory per lane; beyond, the store is the queue
POLL_INTERVAL = 1.0
MAX_ERROR_TEXT = 2000


@dataclass(frozen=True)
class LaneKey:
    channel: str
    destination: str
    lane: int


class Lane:
    """One ordered queue of one destination."""

    def __init__(self, key: LaneKey, destination: Any, retry: Any, store: Any, clock: Any,
                 *, poll_interval: float = POLL_INTERVAL, fetch_batch: int = FETCH_BATCH):
        self.key = key
        self._destination = destination
        self._retry = retry
        self._store = store
        self._clock = clock
        self._poll_interval = poll_interval
        self._fetch_batch = fetch_batch
        self._buffer: deque[DueDelivery] = deque()
        self._known: set[int] = set()  # in the buffer, or sent with the outcome not committed
        self._finished_during_read: set[int] = set()
        self._offers: list[DueDelivery] = []  # offered while a read was under way
        self._fetching = False
        self._caught_up = False  # the last read reached the end of the queue in the store
        self._cursor = 0
        self._read_up_to = 0  # the highest delivery id any read returned: older offers are stale
        self._busy = False  # a fetch, a send or a backoff is under way
        self._wanted = False  # woken while busy: fetch again when free
        self._timer: Any = None  # a backoff, or a wait for a delivery's next attempt
        self._poll_call: Any = None  # the next read of the store when idle
        self._running = False
        self._sending = False  # a send() has not answered yet
        self._idle: defer.Deferred | None = None  # stop() waiting for that answer
        self._advancing = False  # _advance's loop is on the stack
        self._advance_again = False
        self._recording: set[defer.Deferred] = set()  # outcomes not yet committed
        self._retry_now = False  # the next attempt ignores the wait read from the store
        self.sent = 0
        self.reads = 0
        self.failed_attempts = 0
        self.parked = 0

    def start(self) -> None:
        """Start, or start again after :meth:`stop` (a stop may have left a wait pending)."""
        self._running = True
        self._busy = self._sending
        self.wake()

    def stop(self) -> defer.Deferred:
        """Stop after the send under way, if any; Deferred fires when the lane is idle."""
        self._running = False
        for call in (self._timer, self._poll_call):
            if call is not None and call.active():
                call.cancel()
        self._timer = self._poll_call = None
        if not self._sending:
            return defer.succeed(None)
        if self._idle is None:
            self._idle = defer.Deferred()
        return self._idle

    def retry_now(self) -> None:
        """Attempt the next delivery at once, even if the store says to wait.

        For a lane rebuilt because its destination's configuration changed: the wait was
        computed for the old configuration (a host now fixed, a policy now shorter). Only that
        attempt is hurried: if it fails, the lane's own policy applies again.
        """
        self._retry_now = True

    def settled(self) -> defer.Deferred:
        """Deferred firing once every outcome this lane has recorded is committed.

        After :meth:`stop` has fired, nothing is recorded any more: another lane may then
        read this one's queue from the store without sending a delivery twice.
        """
        pending = list(self._recording)
        return defer.DeferredList(pending, consumeErrors=True).addCallback(lambda _: None)

    def _record(self, update: DeliveryUpdate) -> defer.Deferred:
        d = self._store.record_delivery(update)
        self._recording.add(d)

        def recorded(result: Any) -> Any:
            self._recording.discard(d)
            return result
        return d.addBoth(recorded)

    def _fire_idle(self) -> None:
        if self._idle is not None:
            idle, self._idle = self._idle, None
            idle.callback(None)

    def offer(self, due: DueDelivery) -> None:
        """A delivery just committed for this lane, with its payload (see the module doc)."""
        if not self._running or self._is_known(due.delivery_id) or self._stale(due):
            return
        if self._fetching:
            self._offers.append(due)
            return
        if not self._caught_up or len(self._buffer) >= BUFFER_MAX:
            self.wake()
            return
        self._take([due])
        if not self._busy:
            self._advance()

    def _is_known(self, delivery_id: int) -> bool:
        return delivery_id in self._known or delivery_id in self._finished_during_read

    def _stale(self, offered: DueDelivery) -> bool:
        return offered.delivery_id <= self._read_up_to

    def _take(self, dues: list[DueDelivery]) -> None:
        for due in dues:
            if not self._is_known(due.delivery_id):
                self._known.add(due.delivery_id)
                self._buffer.append(due)

    def wake(self) -> None:
        """Work may be queued in the store: read it now, or once the send under way is done."""
        if not self._running:
            return
        self._caught_up = False
        if self._busy:
            self._wanted = True
            return
        if self._poll_call is not None and self._poll_call.active():
            self._poll_call.cancel()
        self._poll_call = None
        self._next()

    def _next(self) -> None:
        if not self._running:
            self._busy = False
            self._fire_idle()
            return
        if self._buffer:
            self._busy = True
            self._attempt(self._buffer[0])
            return
        if self._caught_up and not self._wanted:
            # Nothing left in the store either: wait for offers, or poll, rescanning from the
            # start so that deliveries queued again by a replay (older ids) are found too.
            self._busy = False
            self._cursor = 0
            self._schedule_poll()
            return
        self._busy = True
        self._wanted = False
        self._fetching = True
        self.reads += 1
        d = self._store.read(queries.fetch_due, self.key.channel, self.key.destination,
                             self.key.lane, self._cursor, self._fetch_batch)
        d.addCallbacks(self._fetched, self._fetch_failed)

    def _fetched(self, due: list[DueDelivery]) -> None:
        self._fetching = False
        offers, self._offers = self._offers, []
        fresh = [d for d in due if not self._is_known(d.delivery_id)]
        self._finished_during_read.clear()
        if due:
            self._cursor = due[-1].delivery_id
            self._read_up_to = max(self._read_up_to, self._cursor)
        self._caught_up = len(due) < self._fetch_batch
        self._take(fresh)
        if self._caught_up:  # offers made during the read come after what it found
            self._take(sorted((d for d in offers if not self._stale(d)),
                              key=lambda d: d.delivery_id))
        # Send what was found, read the next page, or (caught up, nothing left) go idle.
        self._next()

    def _fetch_failed(self, failure: Any) -> None:
        self._fetching = False
        self._offers = []
        self._finished_during_read.clear()
        self._caught_up = False
        log.error("lane %s: reading the queue failed: %s", self.key, failure.getErrorMessage())
        self._busy = False
        self._schedule_poll()

    def _schedule_poll(self) -> None:
        if self._running and (self._poll_call is None or not self._poll_call.active()):
            self._poll_call = self._clock.callLater(self._poll_interval, self.wake)

    def _attempt(self, due: DueDelivery) -> None:
        wait = due.next_attempt_at - self._clock.seconds()
        if due.attempts and wait > 0 and not self._retry_now:
            self._timer = self._clock.callLater(wait, self._send, due)
        else:
            self._retry_now = False
            self._send(due)

    def _send(self, due: DueDelivery) -> None:
        self._timer = None
        context = DeliveryContext(self.key.channel, due.message_id, due.delivery_id,
                                  due.control_id, due.message_type, due.attempts + 1,
                                  due.charset)
        self._sending = True
        d = defer.maybeDeferred(self._destination.send, due.raw, context)
        d.addCallbacks(self._succeeded, self._failed, callbackArgs=(due,), errbackArgs=(due,))
        d.addErrback(self._crashed, due)

    def _succeeded(self, outcome: DeliveryOutcome | None, due: DueDelivery) -> None:
        self._sending = False
        response = outcome.response if isinstance(outcome, DeliveryOutcome) else None
        self.sent += 1
        self._finish(due, DeliveryUpdate(due.delivery_id, due.message_id, st.SENT,
                                         due.attempts + 1, self._clock.seconds(), None, response))

    def _failed(self, failure: Any, due: DueDelivery) -> None:
        self._sending = False
        error = failure.value
        retryable = not isinstance(error, DeliveryFailed) or error.retryable
        response = getattr(error, "response", None)
        reason = _describe(error)
        attempts = due.attempts + 1
        self.failed_attempts += 1
        if retryable and attempts < self._retry.max_attempts:
            delay = self._retry.delay_for(attempts)
            retry_at = self._clock.seconds() + delay
            log.warning("%s: delivery %d attempt %d failed (%s); retrying in %.1fs",
                        self.key, due.delivery_id, attempts, reason, delay)
            self._record(DeliveryUpdate(
                due.delivery_id, due.message_id, st.QUEUED, attempts, retry_at, reason, response,
            )).addErrback(self._record_failed)
            self._buffer[0] = DueDelivery(due.delivery_id, due.message_id, attempts, retry_at,
                                          due.raw, due.control_id, due.message_type, due.charset)
            if self._running:
                self._timer = self._clock.callLater(delay, self._next)
            else:
                self._next()  # stopped during the send: go idle, retry after restart
            return
        log.error("%s: delivery %d parked in ERROR after %d attempt(s): %s",
                  self.key, due.delivery_id, attempts, reason)
        self.parked += 1
        self._finish(due, DeliveryUpdate(due.delivery_id, due.message_id, st.ERROR, attempts,
                                         self._clock.seconds(), reason, response))

    def _finish(self, due: DueDelivery, update: DeliveryUpdate) -> None:
        self._buffer.popleft()
        d = self._record(update)
        d.addBoth(self._committed, due.delivery_id)
        self._advance()

    def _advance(self) -> None:
        """Go on to the next delivery, in a loop rather than by recursion.

        A destination may answer from within ``send`` (an already-fired Deferred): then
        ``_finish`` is reached again before ``_next`` has returned, and calling ``_next``
        from there would nest one level per delivery until the stack runs out.
        """
        if self._advancing:
            self._advance_again = True
            return
        self._advancing = True
        try:
            self._advance_again = True
            while self._advance_again:
                self._advance_again = False
                self._next()
        finally:
            self._advancing = False

    def _committed(self, result: Any, delivery_id: int) -> None:
        self._known.discard(delivery_id)
        if self._fetching:
            self._finished_during_read.add(delivery_id)
        if isinstance(result, Exception) or hasattr(result, "getErrorMessage"):
            self._record_failed(result)

    def _record_failed(self, failure: Any) -> None:
        message = getattr(failure, "getErrorMessage", lambda: str(failure))()
        log.error("%s: recording a delivery outcome failed: %s", self.key, message)

    def _crashed(self, failure: Any, due: DueDelivery) -> None:
        log.error("%s: lane failed on delivery %d: %s", self.key, due.delivery_id,
                  failure.getTraceback())
        self._sending = False
        self._busy = False
        self._fire_idle()
        self._schedule_poll()


def _describe(error: BaseException) -> str:
    reason = getattr(error, "reason", None) or str(error) or type(error).__name__
    text = f"{type(error).__name__}: {reason}" if not isinstance(error, DeliveryFailed) else reason
    return text[:MAX_ERROR_TEXT]
