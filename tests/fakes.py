"""
Fakes for the engine's runtime tests: an in-memory store and a scripted destination.

:class:`FakeStore` stands for :class:`engine.store.store.Store` as the delivery lanes, the
decider and the recovery scan use it; :class:`FakeDestination` for :class:`engine.interfaces.Destination`;
:class:`FakeIntake` for the intake's ``hand_over``. Each is checked against what it stands
for, so an interface change breaks it loudly: the methods and signatures in
``tests/delivery/test_lane.py``, ``tests/flow/test_decider.py`` and ``tests/flow/test_handover.py``, the
fake's reads and writes against a real store in ``tests/store/test_fakes.py``.

test-case-name: tests.store.test_fakes
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

from twisted.internet import defer

from engine import status as st
from engine.interfaces import DeliveryContext, DeliveryFailed, DeliveryOutcome
from engine.store import queries
from engine.store.records import DecidedMessage, DeliveryUpdate, DueDelivery, IngestResult


@dataclass(frozen=True)
class MessageRow:
    """What ``queries.received_messages`` returns for one message (and its status)."""

    id: int
    channel: str
    raw: bytes
    charset: str | None = None
    control_id: str | None = None
    message_type: str | None = None
    status: str = st.RECEIVED
    peer: str | None = None


@dataclass(frozen=True)
class DeliveryRow:
    id: int
    message_id: int
    channel: str
    destination: str
    lane: int = 0
    status: str = st.QUEUED
    attempts: int = 0
    next_attempt_at: float = 0.0
    last_error: str | None = None


class FakeStore:
    """The store in memory: two reads, two writes, and the status rules of the real one.

    Writes commit at once unless ``hold_commits`` is set: then each write's Deferred waits in
    :attr:`pending` until :meth:`commit`, as a group commit under way would. While
    ``failing`` holds an exception, every write fails with it and changes nothing (a full
    disk, a database that cannot be reached). ``reads`` counts the reads by query name.
    """

    def __init__(self, *, hold_commits: bool = False):
        self.messages: dict[int, MessageRow] = {}
        self.deliveries: dict[int, DeliveryRow] = {}
        self.decided: list[DecidedMessage] = []
        self.updates: list[DeliveryUpdate] = []
        self.delivery_writes = 0  # calls of record_deliveries: one per lane batch
        self.hold_commits = hold_commits
        self.failing: BaseException | None = None
        self.pending: list[tuple[defer.Deferred, Callable[[], Any]]] = []
        self.reads: dict[str, int] = {}
        self._next_id = 1
        self._queries = {queries.fetch_due: self._fetch_due,
                         queries.received_messages: self._received_messages}

    # -- filling it ----------------------------------------------------------------------

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id - 1

    def add_message(self, channel: str, raw: bytes, **fields: Any) -> int:
        message_id = self._new_id()
        self.messages[message_id] = MessageRow(message_id, channel, raw, **fields)
        return message_id

    def add_delivery(self, message_id: int, destination: str, lane: int = 0,
                     **fields: Any) -> int:
        delivery_id = self._new_id()
        channel = self.messages[message_id].channel
        self.deliveries[delivery_id] = DeliveryRow(delivery_id, message_id, channel,
                                                   destination, lane, **fields)
        return delivery_id

    # -- the Store's interface -----------------------------------------------------------

    def read(self, query: Callable, *args: Any, **kwargs: Any) -> defer.Deferred:
        name = query.__name__
        self.reads[name] = self.reads.get(name, 0) + 1
        if query not in self._queries:
            return defer.fail(NotImplementedError(f"FakeStore cannot run {name}"))
        return defer.succeed(self._queries[query](None, *args, **kwargs))

    def record_decision(self, decided: DecidedMessage) -> defer.Deferred:
        self.decided.append(decided)
        return self._write(lambda: self._apply_decision(decided))

    def record_delivery(self, update: DeliveryUpdate) -> defer.Deferred:
        return self.record_deliveries([update])

    def record_deliveries(self, updates: Sequence[DeliveryUpdate]) -> defer.Deferred:
        updates = tuple(updates)
        self.updates.extend(updates)
        self.delivery_writes += 1
        return self._write(lambda: self._apply_deliveries(updates))

    # -- commits -------------------------------------------------------------------------

    def _write(self, apply: Callable[[], Any]) -> defer.Deferred:
        if self.failing is not None:
            return defer.fail(self.failing)
        if not self.hold_commits:
            return defer.maybeDeferred(apply)
        d = defer.Deferred()
        self.pending.append((d, apply))
        return d

    def commit(self) -> None:
        """Commit the held writes, in order, and fire their Deferreds."""
        pending, self.pending = self.pending, []
        for d, apply in pending:
            defer.maybeDeferred(apply).chainDeferred(d)

    def _apply_decision(self, decided: DecidedMessage) -> IngestResult | None:
        message = self.messages.get(decided.message_id)
        if message is None or message.status != st.RECEIVED:
            return None
        decision = decided.decision
        st.check_transition("message", st.RECEIVED, decision.status)
        self.messages[message.id] = replace(message, status=decision.status)
        ids = tuple(self.add_delivery(message.id, new.destination, new.lane)
                    for new in decision.deliveries)
        return IngestResult(message.id, decision.status, None, ids)

    def _apply_deliveries(self, updates: tuple[DeliveryUpdate, ...]) -> None:
        """All or nothing, as one transaction of the store."""
        for update in updates:
            st.check_transition("delivery", st.QUEUED, update.status)
        for update in updates:
            self._apply_delivery(update)

    def _apply_delivery(self, update: DeliveryUpdate) -> None:
        row = self.deliveries[update.delivery_id]
        if row.status != st.QUEUED:  # as the store's conditional UPDATE: only QUEUED changes
            return
        self.deliveries[update.delivery_id] = replace(
            row, status=update.status, attempts=update.attempts,
            next_attempt_at=update.next_attempt_at, last_error=update.last_error)

    # -- the queries, over the dictionaries (same arguments as engine.store.queries) -----

    def _fetch_due(self, _conn: Any, channel: str, destination: str, lane: int,
                   limit: int, max_bytes: int | None = None) -> list[DueDelivery]:
        rows = sorted((d for d in self.deliveries.values()
                       if (d.channel, d.destination, d.lane, d.status)
                       == (channel, destination, lane, st.QUEUED)),
                      key=lambda d: d.id)[:limit]
        due = [self._due(d) for d in rows]
        if max_bytes is None:
            return queries.DueList(due)
        chosen = queries.within_budget([(d.delivery_id, len(d.raw)) for d in due], max_bytes)
        return queries.DueList(due[:len(chosen)], cut=len(chosen) < len(due))

    def _due(self, row: DeliveryRow) -> DueDelivery:
        m = self.messages[row.message_id]
        return DueDelivery(row.id, row.message_id, row.attempts, row.next_attempt_at, m.raw,
                           m.control_id, m.message_type, m.charset, m.peer)

    def _received_messages(self, _conn: Any, after_id: int, limit: int) -> list[MessageRow]:
        return sorted((m for m in self.messages.values()
                       if m.status == st.RECEIVED and m.id > after_id),
                      key=lambda m: m.id)[:limit]


SUCCESS = "success"


class FakeDestination:
    """A destination answering each send with the next scripted outcome.

    An outcome is :data:`SUCCESS` (a DeliveryOutcome whose response names the control id),
    an exception (the send fails with it, e.g. ``DeliveryFailed("AE", retryable=True)``), or
    a Deferred the test fires later. With the script empty, sends succeed.
    """

    def __init__(self, name: str = "archive", outcomes: tuple = ()):
        self.name = name
        self.outcomes: deque = deque(outcomes)
        self.sent: list[tuple[bytes, DeliveryContext]] = []
        self.running = False

    def script(self, *outcomes: Any) -> None:
        self.outcomes.extend(outcomes)

    def start(self) -> defer.Deferred:
        self.running = True
        return defer.succeed(None)

    def stop(self) -> defer.Deferred:
        self.running = False
        return defer.succeed(None)

    def send(self, payload: bytes, context: DeliveryContext) -> defer.Deferred:
        self.sent.append((payload, context))
        outcome = self.outcomes.popleft() if self.outcomes else SUCCESS
        if isinstance(outcome, defer.Deferred):
            return outcome
        if isinstance(outcome, BaseException):
            return defer.fail(outcome)
        if outcome == SUCCESS:
            return defer.succeed(DeliveryOutcome(f"ACK {context.control_id}".encode()))
        raise ValueError(f"unknown scripted outcome {outcome!r}")

    @property
    def delivery_ids(self) -> list[int]:
        """The delivery id of each send, in order (a retry appears once per attempt)."""
        return [context.delivery_id for _, context in self.sent]


class FakeBatchDestination(FakeDestination):
    """A FakeDestination that also sends batches (engine.interfaces.BatchDestination).

    Each batch is one call in :attr:`batches`; each payload in it takes the next scripted
    outcome as ``send`` would, and the batch stops at the first failure (the rest not
    attempted), as the interface says.
    """

    def __init__(self, name: str = "archive", outcomes: tuple = ()):
        super().__init__(name, outcomes)
        self.batches: list[list[int]] = []

    def send_batch(self, payloads: Any, contexts: Any) -> defer.Deferred:
        self.batches.append([context.delivery_id for context in contexts])
        results: list[Any] = []
        for payload, context in zip(payloads, contexts):
            self.sent.append((payload, context))
            outcome = self.outcomes.popleft() if self.outcomes else SUCCESS
            if isinstance(outcome, BaseException):
                results.append(outcome)
                break
            results.append(DeliveryOutcome(f"ACK {context.control_id}".encode()))
        return defer.succeed(results)


def refused(reason: str = "connection refused") -> DeliveryFailed:
    """A retryable failure."""
    return DeliveryFailed(reason, retryable=True)


def rejected(reason: str = "AR: unknown patient") -> DeliveryFailed:
    """A failure retrying cannot cure (the peer rejected the message)."""
    return DeliveryFailed(reason, retryable=False, response=b"MSA|AR")


class FakeIntake:
    """``hand_over`` of :class:`engine.flow.intake.Intake`, for the ``channel`` destination.

    Records each call; answers with the next scripted outcome: an :class:`IngestResult`, an
    exception (the hand-over fails with it), or a Deferred the test fires. With the script
    empty, each hand-over is committed as the next message id, from 1000, RECEIVED.
    """

    def __init__(self, outcomes: tuple = ()):
        self.outcomes: deque = deque(outcomes)
        self.calls: list[tuple[str, bytes, Any, str | None]] = []

    def script(self, *outcomes: Any) -> None:
        self.outcomes.extend(outcomes)

    def hand_over(self, channel: str, payload: bytes, peer: Any,
                  charset: str | None = None) -> defer.Deferred:
        self.calls.append((channel, payload, peer, charset))
        outcome = (self.outcomes.popleft() if self.outcomes
                   else IngestResult(999 + len(self.calls), st.RECEIVED))
        if isinstance(outcome, defer.Deferred):
            return outcome
        if isinstance(outcome, BaseException):
            return defer.fail(outcome)
        return defer.succeed(outcome)
