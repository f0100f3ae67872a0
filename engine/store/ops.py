"""
The writes the engine makes, each applied to a whole batch at once (writer thread only).

Every function here runs inside the group-commit transaction opened by
:class:`engine.store.writer.GroupCommitWriter`; none of them commits.

test-case-name: tests.store.test_ops
"""
from __future__ import annotations

import threading
import time
from typing import Any, Sequence

from sqlalchemy import update

from engine import status as st
from engine.store.records import (
    DeliveryUpdate,
    InboundRecord,
    IngestResult,
    ProcessingResult,
)
from engine.store.rawsql import RawStatements, execute_many, fetch_all
from engine.store.schema import deliveries, id_blocks, journal, messages
from engine.store.writer import WriteOp

ID_BLOCK_SIZE = 10_000


class IdAllocator:
    """Hands out ids from blocks reserved in ``id_blocks``, one short transaction per block.

    Reserving a block in its own transaction (not the batch's) keeps the row lock on
    PostgreSQL for microseconds, so several nodes sharing one database do not serialise
    their group commits on it.
    """

    def __init__(self, engine: Any, name: str, block_size: int = ID_BLOCK_SIZE):
        self._engine = engine
        self._name = name
        self._block_size = block_size
        self._next = 0
        self._end = 0
        self._lock = threading.Lock()

    def take(self, count: int) -> list[int]:
        """Return ``count`` fresh ids, in increasing order."""
        with self._lock:
            ids: list[int] = []
            while len(ids) < count:
                if self._next >= self._end:
                    self._reserve(max(self._block_size, count - len(ids)))
                grab = min(count - len(ids), self._end - self._next)
                ids.extend(range(self._next, self._next + grab))
                self._next += grab
            return ids

    def reserve(self, count: int) -> None:
        """Make sure the next ``take(count)`` needs no database round trip.

        The writer calls this (through :meth:`WriteOp.prepare`) before it opens a batch's
        transaction; what is left of the current block is skipped when it is too short.
        """
        with self._lock:
            if self._end - self._next < count:
                self._reserve(max(self._block_size, count))

    def _reserve(self, size: int) -> None:
        stmt = (
            update(id_blocks)
            .where(id_blocks.c.name == self._name)
            .values(next_value=id_blocks.c.next_value + size)
            .returning(id_blocks.c.next_value)
        )
        with self._engine.begin() as conn:  # transaction boundary: one id block
            end = conn.execute(stmt).scalar_one()
        self._next, self._end = end - size, end


def dedupe_key(record: InboundRecord) -> str | None:
    """The key that makes a later copy of this message a duplicate, or None if it has none."""
    if not record.dedupe or record.status != st.RECEIVED or not record.control_id:
        return None
    return f"{record.channel}|{record.sender or ''}|{record.control_id}"


MESSAGE_COLUMNS = tuple(c.name for c in messages.c)
DELIVERY_COLUMNS = tuple(c.name for c in deliveries.c)
JOURNAL_COLUMNS = ("message_id", "delivery_id", "status", "at", "detail")
DELIVERY_UPDATE_COLUMNS = ("status", "attempts", "updated_at", "next_attempt_at", "last_error",
                           "response")


class IngestOp(WriteOp):
    """Insert inbound messages (and their first journal lines), detecting duplicates.

    A record routed at intake (``record.routed``) is committed TRANSFORMED with its
    deliveries in the same transaction: RECEIVED, TRANSFORMED and QUEUED are all journaled.
    A record whose pipeline ran at intake (``record.processed``) is committed likewise with
    the pipeline's status (TRANSFORMED, FILTERED or ERROR), error and deliveries, exactly as
    :class:`ProcessedOp` would have recorded them after a commit of its own.
    """

    rank = 10

    def __init__(self, message_ids: IdAllocator, node: str, sql: RawStatements,
                 delivery_ids: IdAllocator | None = None):
        self._ids = message_ids
        self._delivery_ids = delivery_ids
        self._node = node
        self._sql = sql
        self._insert_message = sql.insert(messages, MESSAGE_COLUMNS)
        self._insert_delivery = sql.insert(deliveries, DELIVERY_COLUMNS)
        self._insert_line = sql.insert(journal, JOURNAL_COLUMNS)

    def prepare(self, items: Sequence[InboundRecord]) -> None:
        self._ids.reserve(len(items))
        routed = sum(len(_decided_deliveries(r)) for r in items)
        if routed and self._delivery_ids is not None:
            self._delivery_ids.reserve(routed)

    def apply(self, conn: Any, items: Sequence[InboundRecord]) -> list[IngestResult]:
        ids = self._ids.take(len(items))
        keys = [dedupe_key(r) for r in items]
        seen = self._existing_keys(conn, [k for k in keys if k])
        rows, lines, queued, results = [], [], [], []
        for message_id, record, key in zip(ids, items, keys):
            status, duplicate_of = record.status, None
            if key is not None and key in seen:
                status, duplicate_of, key = st.DUPLICATE, seen[key], None
            elif key is not None:
                seen[key] = message_id
            st.check_transition("message", None, status)
            lines.append((message_id, None, status, record.received_at, record.error))
            delivery_ids: tuple[int, ...] = ()
            error = record.error
            if status == st.RECEIVED and (record.routed is not None
                                          or record.processed is not None):
                status, error, detail = _decided_status(record)
                st.check_transition("message", st.RECEIVED, status)
                lines.append((message_id, None, status, record.received_at, detail))
                delivery_ids = self._route(message_id, record, queued, lines)
            rows.append((message_id, record.channel, record.received_at, self._node,
                         record.peer, record.sender, record.control_id, record.message_type,
                         record.charset, status, error, key, duplicate_of, record.raw))
            results.append(IngestResult(message_id, status, duplicate_of, delivery_ids))
        execute_many(conn, self._insert_message, rows)
        execute_many(conn, self._insert_delivery, queued)
        execute_many(conn, self._insert_line, lines)
        return results

    def _route(self, message_id: int, record: InboundRecord, queued: list,
               lines: list) -> tuple[int, ...]:
        if self._delivery_ids is None:
            raise RuntimeError("this IngestOp was built without a delivery id allocator")
        at = record.received_at
        decided = _decided_deliveries(record)
        ids = self._delivery_ids.take(len(decided))
        for delivery_id, new in zip(ids, decided):
            queued.append((delivery_id, message_id, record.channel, new.destination, new.lane,
                           st.QUEUED, 0, at, at, at, None, None, new.payload))
            lines.append((message_id, delivery_id, st.QUEUED, at, new.destination))
        return tuple(ids)

    def _existing_keys(self, conn: Any, keys: list[str]) -> dict[str, int]:
        if not keys:
            return {}
        sql = self._sql.select_in(messages, ("dedupe_key", "id"), "dedupe_key", len(keys))
        return dict(fetch_all(conn, sql, keys))


def _decided_status(record: InboundRecord) -> tuple[str, str | None, str | None]:
    """(status, error, journal detail) of a message whose outcome the intake decided."""
    processed = record.processed
    if processed is None:
        return st.TRANSFORMED, None, "routed at intake"
    return processed.status, processed.error, processed.error or processed.detail


def _decided_deliveries(record: InboundRecord) -> tuple:
    """The deliveries decided at intake for ``record`` (none if the processor decides)."""
    if record.processed is not None:
        return record.processed.deliveries
    return record.routed or ()


class ProcessedOp(WriteOp):
    """Record the pipeline's outcome: the message's new status and its queued deliveries."""

    rank = 20

    def __init__(self, delivery_ids: IdAllocator, sql: RawStatements):
        self._ids = delivery_ids
        self._sql = sql
        self._set_status = sql.update(messages, ("status", "error"), ("id", "status"))
        self._insert_delivery = sql.insert(deliveries, DELIVERY_COLUMNS)
        self._insert_line = sql.insert(journal, JOURNAL_COLUMNS)

    def prepare(self, items: Sequence[ProcessingResult]) -> None:
        # An upper bound: results for messages no longer RECEIVED leave a gap in the ids.
        self._ids.reserve(sum(len(r.deliveries) for r in items))

    def apply(self, conn: Any, items: Sequence[ProcessingResult]) -> list[list[int] | None]:
        """Results are the new delivery ids, or None for a message no longer RECEIVED.

        That check makes recording idempotent: a message processed twice (seen by the
        recovery scan while its first run was under way) gets its deliveries once.
        """
        now = time.time()
        fresh = self._still_received(conn, [r.message_id for r in items])
        count = sum(len(r.deliveries) for r in items if r.message_id in fresh)
        ids = iter(self._ids.take(count))
        updates, rows, lines, results = [], [], [], []
        for result in items:
            if result.message_id not in fresh:
                results.append(None)
                continue
            fresh.discard(result.message_id)
            st.check_transition("message", st.RECEIVED, result.status)
            updates.append((result.status, result.error, result.message_id, st.RECEIVED))
            lines.append((result.message_id, None, result.status, now,
                          result.error or result.detail))
            made = []
            for new in result.deliveries:
                delivery_id = next(ids)
                made.append(delivery_id)
                rows.append((delivery_id, result.message_id, result.channel, new.destination,
                             new.lane, st.QUEUED, 0, now, now, now, None, None,
                             new.payload))
                lines.append((result.message_id, delivery_id, st.QUEUED, now, new.destination))
            results.append(made)
        execute_many(conn, self._set_status, updates)
        execute_many(conn, self._insert_delivery, rows)
        execute_many(conn, self._insert_line, lines)
        return results

    def _still_received(self, conn: Any, message_ids: list[int]) -> set[int]:
        status = self._sql.equals_constant("status", st.RECEIVED)
        sql = self._sql.select_in(messages, ("id",), "id", len(message_ids), extra=status)
        if conn.dialect.name == "postgresql":
            sql += " FOR UPDATE"
        return {row[0] for row in fetch_all(conn, sql, message_ids)}


class DeliveryUpdateOp(WriteOp):
    """Record delivery attempts: SENT, QUEUED again for a retry, or parked in ERROR."""

    rank = 30

    def __init__(self, sql: RawStatements):
        # Only a QUEUED delivery changes: an outcome recorded late (by a process whose lane
        # another took over) never overwrites the SENT or ERROR the other one recorded.
        self._update = sql.update(deliveries, DELIVERY_UPDATE_COLUMNS, ("id", "status"))
        self._insert_line = sql.insert(journal, JOURNAL_COLUMNS)

    def apply(self, conn: Any, items: Sequence[DeliveryUpdate]) -> list[None]:
        now = time.time()
        updates, lines = [], []
        for u in items:
            st.check_transition("delivery", st.QUEUED, u.status)
            updates.append((u.status, u.attempts, now, u.next_attempt_at, u.last_error,
                            u.response, u.delivery_id, st.QUEUED))
            lines.append((u.message_id, u.delivery_id, u.status, now, u.last_error))
        execute_many(conn, self._update, updates)
        execute_many(conn, self._insert_line, lines)
        return [None] * len(items)
