"""
One delivery lane: the queued deliveries of one destination (or of one partition of its
ordering key), sent in order by the process that holds the lane's lease.

The store is the queue. The lane reads the first deliveries of its queue (by id, always from
the start: no cursor, see :func:`engine.store.queries.fetch_due`; at most ``fetch_batch`` of
them and ``fetch_bytes`` of payload, so what a lane holds is bounded in bytes whatever the
size of its messages), sends them one at a time (or a batch at a time) through its own
:class:`~engine.interfaces.Destination` (message n+1 is never sent before message n is SENT
or parked), and records the outcomes of each send, one or a batch's, as one write of the
group-commit writer. A send may start while the previous send's outcome is being committed
(that hides the commit's latency), not before the outcomes of the sends before it are
committed: so when the store fails, at most one send follows the first outcome it could not
record. The lane reads again only once every outcome it recorded is committed, so a read
never brings back a delivery already sent, and, while busy, no more often than
:mod:`engine.delivery.cadence` allows. A failed send is retried after the destination's
backoff, holding the lane (that keeps order); once its retries are spent, or when the peer
rejects the message, the delivery is parked in ERROR and the lane moves on.

When an outcome cannot be committed (the store is down, the disk full), the lane stops in
:attr:`LaneState.RECORDING`: it keeps what it sent as sent, in memory, retries the write with
backoff, and sends nothing more until the write is committed. A delivery is sent again only
after a crash (the process died between a send and its commit): then the lane's lease runs
out, another process takes the lane over and reads the delivery still QUEUED. It sends only
while its lease allows (:meth:`Lane.leased`; :mod:`engine.delivery.lease`).

Each state is a member of :class:`LaneState`; :meth:`Lane._next` is the one place that decides
what the lane does next, each ``_enter_*`` method one transition into a state, and each event
(a read, a send or a write answering, a timer, a wake, a lease change) ends by asking it again.

test-case-name: tests.delivery.test_lane
"""
from __future__ import annotations

import enum
import logging
from collections import deque
from dataclasses import dataclass, replace
from itertools import islice
from typing import Any

from twisted.internet import defer

from engine import status as st
from engine.delivery.cadence import (
    BUSY_READ, BUSY_READ_GAP, FETCH_BATCH, FETCH_BYTES, GATHER, NEVER, POLL_INTERVAL, READ_GAP,
    SEND_BATCH, read_gap, read_wait)
from engine.delivery.attempts import contexts_for, sent_update
from engine.delivery.lease import may_send
from engine.interfaces import (
    BatchDestination, DeliveryFailed, DeliveryOutcome, Destination)
from engine.store import queries
from engine.store.records import DeliveryUpdate, DueDelivery

log = logging.getLogger(__name__)

SENDS_AHEAD = 1  # earlier sends whose outcomes may still be committing when one starts
RECORD_RETRY_INITIAL = 0.5
RECORD_RETRY_MAX = 5.0
MAX_ERROR_TEXT = 2000


@dataclass(frozen=True)
class LaneKey:
    channel: str
    destination: str
    lane: int

    def __str__(self) -> str:  # in log lines
        return f"{self.channel}/{self.destination}/{self.lane}"


class LaneState(enum.Enum):
    """What a lane is doing; exactly one at a time."""

    UNLEASED = "unleased"  # no lease (not claimed yet, lost, or run out): sends nothing
    IDLE = "idle"  # nothing due known: waits for a wake or the next poll of the store
    READING = "reading"  # reading the first deliveries of its queue
    WAITING = "waiting"  # the first delivery's next attempt is later (a retry's backoff)
    SENDING = "sending"  # a send is under way
    SETTLING = "settling"  # waiting for recorded outcomes to commit before reading again
    RECORDING = "recording"  # an outcome could not be committed: retrying it, sending nothing
    STOPPED = "stopped"


class Lane:
    """One ordered queue of one destination, sent while its lease allows."""

    def __init__(self, key: LaneKey, destination: Destination, retry: Any, store: Any,
                 clock: Any, *, poll_interval: float = POLL_INTERVAL,
                 fetch_batch: int = FETCH_BATCH, fetch_bytes: int = FETCH_BYTES,
                 sends_ahead: int = SENDS_AHEAD, gather: float = GATHER,
                 read_gap: float = READ_GAP, busy_read_gap: float = BUSY_READ_GAP,
                 busy_read: int = BUSY_READ, send_batch: int = SEND_BATCH,
                 record_retry: tuple[float, float] = (RECORD_RETRY_INITIAL, RECORD_RETRY_MAX)):
        self.key = key
        self._destination = destination
        self._retry = retry
        self._store = store
        self._clock = clock
        self._poll_interval = poll_interval
        self._fetch_batch = fetch_batch
        self._fetch_bytes = fetch_bytes
        self._sends_ahead = sends_ahead
        self._gather = gather
        self._read_gap, self._busy_read_gap, self._busy_read = read_gap, busy_read_gap, busy_read
        self._gap = read_gap  # after the last read that found work (cadence.read_gap)
        self._send_batch = send_batch if isinstance(destination, BatchDestination) else 1
        self._record_retry = record_retry
        self.state = LaneState.UNLEASED
        self._deadline = NEVER  # sends may start until then (clock time): the lease
        self._buffer: deque[DueDelivery] = deque()  # read, not yet finished; head first
        self._more = True  # the store may hold due work this lane has not read
        self._backlog = False  # the last read left due work unread (full, or cut)
        self._read_at = NEVER  # when the last read that found work started (clock time)
        self._in_flight = 0  # outcomes submitted to the writer, not answered yet
        self._sends = 0  # sends started; numbers the outcomes of each
        self._unsettled: dict[int, int] = {}  # send number -> its outcomes not answered yet
        self._failed: dict[int, DeliveryUpdate] = {}  # outcomes whose write failed: to retry
        self._record_delay = record_retry[0]
        self._timer: Any = None  # the poll (IDLE), the backoff (WAITING) or a write retry
        self._send: defer.Deferred | None = None  # the send under way
        self._read: defer.Deferred | None = None  # the read under way
        self._retry_now = False
        self._stop_waiters: list[defer.Deferred] = []
        self._settle_waiters: list[defer.Deferred] = []
        self._stepping = False  # _step's loop is on the stack (see _step)
        self._step_again = False
        self.sent = 0
        self.reads = 0
        self.failed_attempts = 0
        self.parked = 0

    # -- events from the service ------------------------------------------------------------

    def leased(self, deadline: float) -> None:
        """This process holds the lane's lease: sends may start until ``deadline``."""
        self._deadline = deadline
        if self.state is LaneState.UNLEASED:
            self._more = True
            self._step()

    def unleased(self) -> None:
        """The lease is gone (another process holds the lane): send nothing more."""
        self._deadline = NEVER
        if self.state in (LaneState.IDLE, LaneState.WAITING):
            self._step()

    def wake(self) -> None:
        """Work was queued for this lane: read the store ``gather`` seconds from now if idle
        (at once if ``gather`` is 0), else after the work under way."""
        self._more = True
        if self.state is not LaneState.IDLE:
            return
        if self._gather <= 0:
            return self._step()
        read_at = self._clock.seconds() + self._gather
        if self._timer is None or self._timer.getTime() > read_at:  # the poll, later
            self._cancel_timer()
            self._timer = self._clock.callLater(self._gather, self._poll)

    def retry_now(self) -> None:
        """Attempt the next delivery at once, even if the store says to wait.

        For a lane rebuilt because its destination's configuration changed: the wait was
        computed for the old configuration. Only that attempt is hurried.
        """
        self._retry_now = True

    def stop(self) -> defer.Deferred:
        """Send nothing more; Deferred fires once the send under way, if any, has answered."""
        if self.state is not LaneState.STOPPED:
            self.state = LaneState.STOPPED
            self._cancel_timer()
            self._buffer.clear()
            if self._failed:  # one last try; what still fails is sent again after a restart
                self._record_failed_again()
        if self._send is None:
            return defer.succeed(None)
        waiter: defer.Deferred = defer.Deferred()
        self._stop_waiters.append(waiter)
        return waiter

    def settled(self) -> defer.Deferred:
        """Deferred firing once no outcome of this lane is waiting for its commit (committed,
        or given up after :meth:`stop`): then another lane may read this one's queue."""
        if not self._in_flight:
            return defer.succeed(None)
        waiter: defer.Deferred = defer.Deferred()
        self._settle_waiters.append(waiter)
        return waiter

    # -- the one decision -------------------------------------------------------------------

    def _step(self) -> None:
        """Run :meth:`_next`, in a loop rather than by recursion.

        A destination or a store may answer at once (an already-fired Deferred): the answer's
        handler asks for the next step before the previous one has returned, and nesting one
        level per delivery would run out of stack.
        """
        if self._stepping:
            self._step_again = True
            return
        self._stepping = True
        try:
            self._step_again = True
            while self._step_again:
                self._step_again = False
                self._next()
        finally:
            self._stepping = False

    def _next(self) -> None:
        """Decide the lane's next state from what it holds (the only place that decides)."""
        if self.state is LaneState.STOPPED or self._send is not None or self._read is not None:
            return  # stopped, or a send or a read under way: its answer asks again
        if self._failed or (self.state is LaneState.RECORDING and self._in_flight):
            return self._enter_recording()
        if self.state is LaneState.RECORDING:
            log.warning("%s: delivery outcomes recorded again; sending again", self.key)
        now = self._clock.seconds()
        if not may_send(self._deadline, now):
            return self._enter_unleased()
        if self._buffer and len(self._unsettled) <= self._sends_ahead:
            head = self._buffer[0]
            wait = head.next_attempt_at - now
            if head.attempts and wait > 0 and not self._retry_now:
                return self._enter_waiting(wait)
            self._retry_now = False
            return self._enter_sending(self._sendable(now))
        if self._in_flight:
            return self._enter_settling()
        if self._more:
            wait = read_wait(self._backlog, self._read_at, self._gap, now)
            return self._enter_reading() if wait <= 0 else self._enter_idle(wait)
        return self._enter_idle()

    # -- transitions ------------------------------------------------------------------------

    def _enter_unleased(self) -> None:
        self._cancel_timer()
        self._buffer.clear()  # another process may send them now: read them again if leased
        self.state = LaneState.UNLEASED

    def _enter_idle(self, wait: float | None = None) -> None:
        """Wait for a wake or the poll (in ``wait`` s if given: work known, see cadence)."""
        self._cancel_timer()
        self.state = LaneState.IDLE
        self._timer = self._clock.callLater(wait or self._poll_interval, self._poll)

    def _enter_reading(self) -> None:
        self._cancel_timer()
        self.state = LaneState.READING
        self._more = False
        self._read_at = self._clock.seconds()
        self.reads += 1
        self._read = read = self._store.read(queries.fetch_due, self.key.channel,
                                             self.key.destination, self.key.lane,
                                             self._fetch_batch, self._fetch_bytes)
        read.addCallbacks(self._read_done, self._read_failed)

    def _enter_waiting(self, wait: float) -> None:
        self._cancel_timer()
        self.state = LaneState.WAITING
        self._timer = self._clock.callLater(wait, self._timer_fired)

    def _enter_sending(self, batch: list[DueDelivery]) -> None:
        self._cancel_timer()
        self.state = LaneState.SENDING
        self._sends += 1
        contexts = contexts_for(self.key.channel, batch)
        # Set before the callbacks: a destination may answer at once, from within send.
        if len(batch) == 1:
            self._send = send = defer.maybeDeferred(self._destination.send, batch[0].raw,
                                                    contexts[0])
            send.addCallbacks(self._sent, self._send_failed, callbackArgs=(batch[0],),
                              errbackArgs=(batch[0],))
        else:
            self._send = send = defer.maybeDeferred(self._destination.send_batch,
                                                    [due.raw for due in batch], contexts)
            send.addCallbacks(self._batch_sent, self._batch_failed, callbackArgs=(batch,),
                              errbackArgs=(batch,))
        send.addErrback(self._crashed, batch[0])

    def _sendable(self, now: float) -> list[DueDelivery]:
        """The head, and for a destination that sends batches the deliveries behind it that
        are due now, up to the batch size."""
        batch = [self._buffer[0]]
        for due in islice(self._buffer, 1, self._send_batch):  # not a copy of the buffer
            if due.attempts and due.next_attempt_at > now:
                break
            batch.append(due)
        return batch

    def _enter_settling(self) -> None:
        self._cancel_timer()
        self.state = LaneState.SETTLING

    def _enter_recording(self) -> None:
        """Hold what was sent; retry the failed writes with backoff once none is under way."""
        if self.state is not LaneState.RECORDING:
            self._cancel_timer()
            log.error("%s: recording a delivery outcome failed; sending nothing more until "
                      "%d outcome(s) are recorded", self.key, len(self._failed))
            self.state = LaneState.RECORDING
        if self._in_flight or self._timer is not None:
            return
        delay = self._record_delay
        self._record_delay = min(delay * 2, self._record_retry[1])
        self._timer = self._clock.callLater(delay, self._retry_records)

    # -- answers and timers -----------------------------------------------------------------

    def _poll(self) -> None:
        self._timer = None
        self._more = True
        self._step()

    def _timer_fired(self) -> None:
        self._timer = None
        self._step()

    def _read_done(self, due: list[DueDelivery]) -> None:
        self._read = None
        if self.state is not LaneState.READING:
            return  # stopped meanwhile
        self._buffer.extend(due)
        self._backlog = len(due) >= self._fetch_batch or getattr(due, "cut", False)
        self._more = self._more or self._backlog
        self._read_at = self._read_at if due else NEVER  # none due: no gap before the next
        self._gap = read_gap(len(due), self._read_gap, self._busy_read_gap, self._busy_read)
        self._step()

    def _read_failed(self, failure: Any) -> None:
        self._read = None
        if self.state is not LaneState.READING:
            return
        log.error("%s: reading the queue failed: %s", self.key, failure.getErrorMessage())
        self._more = True
        self._enter_idle()  # read again at the next poll, not at once

    def _sent(self, outcome: DeliveryOutcome | None, due: DueDelivery) -> None:
        self._send = None
        self._record(self._succeeded(outcome, due))
        self._answered()

    def _send_failed(self, failure: Any, due: DueDelivery) -> None:
        self._send = None
        self._record(self._failed_attempt(failure.value, due))
        self._answered()

    def _batch_sent(self, outcomes: list, batch: list[DueDelivery]) -> None:
        """One outcome per delivery attempted, in order; the list stops at a failure. The
        batch's outcomes are recorded by one write."""
        self._send = None
        updates = []
        for due, outcome in zip(batch, outcomes):
            if isinstance(outcome, BaseException):
                updates.append(self._failed_attempt(outcome, due))
                break
            updates.append(self._succeeded(outcome, due))
        self._record(*updates)
        self._answered()

    def _batch_failed(self, failure: Any, batch: list[DueDelivery]) -> None:
        self._send = None
        # nothing of the batch is known sent
        self._record(self._failed_attempt(failure.value, batch[0]))
        self._answered()

    def _succeeded(self, outcome: DeliveryOutcome | None, due: DueDelivery) -> DeliveryUpdate:
        """The head delivery was sent: its SENT outcome, to record."""
        plain = not isinstance(outcome, DeliveryOutcome)
        response, note = (None, None) if plain else (outcome.response, outcome.note)
        self.sent += 1
        return self._finish(sent_update(due, self._clock.seconds(), response, note))

    def _failed_attempt(self, error: BaseException, due: DueDelivery) -> DeliveryUpdate:
        """A failed attempt's outcome, to record: QUEUED again after the backoff, or ERROR."""
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
            if self._buffer and self._buffer[0].delivery_id == due.delivery_id:
                self._buffer[0] = replace(due, attempts=attempts, next_attempt_at=retry_at)
            return DeliveryUpdate(due.delivery_id, due.message_id, st.QUEUED, attempts,
                                  retry_at, reason, response, None, due.attempts)
        log.error("%s: delivery %d parked in ERROR after %d attempt(s): %s",
                  self.key, due.delivery_id, attempts, reason)
        self.parked += 1
        return self._finish(DeliveryUpdate(due.delivery_id, due.message_id, st.ERROR, attempts,
                                           self._clock.seconds(), reason, response, None,
                                           due.attempts))

    def _finish(self, update: DeliveryUpdate) -> DeliveryUpdate:
        """The head delivery is done (SENT or parked): the lane goes on past it."""
        if self._buffer and self._buffer[0].delivery_id == update.delivery_id:
            self._buffer.popleft()
        return update

    def _answered(self) -> None:
        if self.state is LaneState.STOPPED:
            waiters, self._stop_waiters = self._stop_waiters, []
            for waiter in waiters:
                waiter.callback(None)
            return
        self._step()

    def _crashed(self, failure: Any, due: DueDelivery) -> None:
        """A bug in the lane's own handling of an answer: log it, read the queue again."""
        log.error("%s: lane failed on delivery %d: %s", self.key, due.delivery_id,
                  failure.getTraceback())
        self._send = None
        self._buffer.clear()
        self._more = True
        if self.state is not LaneState.STOPPED:
            self._enter_idle()

    # -- recording outcomes -----------------------------------------------------------------

    def _record(self, *updates: DeliveryUpdate) -> None:
        """Submit outcomes to the group-commit writer as one write (counted before it may
        answer): they commit together or fail together."""
        if not updates:
            return
        for update in updates:
            self._failed.pop(update.delivery_id, None)  # an older outcome is superseded
        self._in_flight += len(updates)
        send = self._sends
        self._unsettled[send] = self._unsettled.get(send, 0) + len(updates)
        d = self._store.record_deliveries(updates)
        d.addCallbacks(self._recorded, self._record_failed, callbackArgs=(len(updates), send),
                       errbackArgs=(updates, send))

    def _answered_write(self, send: int, count: int) -> None:
        self._in_flight -= count
        self._unsettled[send] -= count
        if not self._unsettled[send]:
            del self._unsettled[send]

    def _recorded(self, _result: Any, count: int, send: int) -> None:
        self._answered_write(send, count)
        if not self._failed:
            self._record_delay = self._record_retry[0]
        self._written(LaneState.SETTLING, LaneState.RECORDING)

    def _record_failed(self, failure: Any, updates: tuple[DeliveryUpdate, ...],
                       send: int) -> None:
        self._answered_write(send, len(updates))
        for update in updates:
            if self.state is LaneState.STOPPED:
                log.error("%s: the outcome of delivery %d (%s) could not be recorded: %s; it "
                          "stays QUEUED and is sent again by the next owner of the lane",
                          self.key, update.delivery_id, update.status,
                          failure.getErrorMessage())
            else:
                log.warning("%s: recording delivery %d %s failed: %s", self.key,
                            update.delivery_id, update.status, failure.getErrorMessage())
                self._failed[update.delivery_id] = update
        # Waiting states go to RECORDING now; SENDING and READING once they answer.
        self._written(LaneState.SETTLING, LaneState.RECORDING, LaneState.IDLE,
                      LaneState.WAITING, LaneState.UNLEASED)

    def _written(self, *step_in: LaneState) -> None:
        if not self._in_flight:
            waiters, self._settle_waiters = self._settle_waiters, []
            for waiter in waiters:
                waiter.callback(None)
        if self.state in step_in:
            self._step()

    def _retry_records(self) -> None:
        self._timer = None
        self._record_failed_again()
        if not self._in_flight:
            self._step()

    def _record_failed_again(self) -> None:
        self._record(*self._failed.values())

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None


def _describe(error: BaseException) -> str:
    reason = getattr(error, "reason", None) or str(error) or type(error).__name__
    text = f"{type(error).__name__}: {reason}" if not isinstance(error, DeliveryFailed) else reason
    return text[:MAX_ERROR_TEXT]
