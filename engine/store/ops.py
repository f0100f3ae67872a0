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

from sqlalchemy import bindparam, select, update

from engine import status as st
from engine.store.records import (
    DeliveryUpdate,
    InboundRecord,
    IngestResult,
    ProcessingResult,
)
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


class IngestOp(WriteOp):
    """Insert inbound messages (and their first journal line), detecting duplicates."""

    rank = 10

    def __init__(self, message_ids: IdAllocator, node: str):
        self._ids = message_ids
        self._node = node

    def prepare(self, items: Sequence[InboundRecord]) -> None:
        self._ids.reserve(len(items))

    def apply(self, conn: Any, items: Sequence[InboundRecord]) -> list[IngestResult]:
        ids = self._ids.take(len(items))
        keys = [dedupe_key(r) for r in items]
        seen = _existing_keys(conn, [k for k in keys if k])
        rows, lines, results = [], [], []
        for message_id, record, key in zip(ids, items, keys):
            status, duplicate_of = record.status, None
            if key is not None and key in seen:
                status, duplicate_of, key = st.DUPLICATE, seen[key], None
            elif key is not None:
                seen[key] = message_id
            st.check_transition("message", None, status)
            rows.append(_message_row(message_id, self._node, record, status, key, duplicate_of))
            lines.append(_line(message_id, None, status, record.received_at, record.error))
            results.append(IngestResult(message_id, status, duplicate_of))
        conn.execute(messages.insert(), rows)
        conn.execute(journal.insert(), lines)
        return results


def _existing_keys(conn: Any, keys: list[str]) -> dict[str, int]:
    if not keys:
        return {}
    query = select(messages.c.dedupe_key, messages.c.id).where(messages.c.dedupe_key.in_(keys))
    return {key: message_id for key, message_id in conn.execute(query)}


def _message_row(message_id: int, node: str, record: InboundRecord, status: str,
                 key: str | None, duplicate_of: int | None) -> dict:
    return {
        "id": message_id,
        "channel": record.channel,
        "received_at": record.received_at,
        "node": node,
        "peer": record.peer,
        "sender": record.sender,
        "control_id": record.control_id,
        "message_type": record.message_type,
        "charset": record.charset,
        "status": status,
        "error": record.error,
        "dedupe_key": key,
        "duplicate_of": duplicate_of,
        "raw": record.raw,
    }


def _line(message_id: int, delivery_id: int | None, status: str, at: float,
          detail: str | None) -> dict:
    return {"message_id": message_id, "delivery_id": delivery_id, "status": status,
            "at": at, "detail": detail}


_SET_MESSAGE_STATUS = (
    update(messages)
    .where(messages.c.id == bindparam("b_id"), messages.c.status == bindparam("b_from"))
    .values(status=bindparam("b_status"), error=bindparam("b_error"))
)


class ProcessedOp(WriteOp):
    """Record the pipeline's outcome: the message's new status and its queued deliveries."""

    rank = 20

    def __init__(self, delivery_ids: IdAllocator):
        self._ids = delivery_ids

    def prepare(self, items: Sequence[ProcessingResult]) -> None:
        # An upper bound: results for messages no longer RECEIVED leave a gap in the ids.
        self._ids.reserve(sum(len(r.deliveries) for r in items))

    def apply(self, conn: Any, items: Sequence[ProcessingResult]) -> list[list[int] | None]:
        """Results are the new delivery ids, or None for a message no longer RECEIVED.

        That check makes recording idempotent: a message processed twice (seen by the
        recovery scan while its first run was under way) gets its deliveries once.
        """
        now = time.time()
        fresh = _still_received(conn, [r.message_id for r in items])
        count = sum(len(r.deliveries) for r in items if r.message_id in fresh)
        ids = iter(self._ids.take(count))
        updates, rows, lines, results = [], [], [], []
        for result in items:
            if result.message_id not in fresh:
                results.append(None)
                continue
            fresh.discard(result.message_id)
            st.check_transition("message", st.RECEIVED, result.status)
            updates.append({"b_id": result.message_id, "b_from": st.RECEIVED,
                            "b_status": result.status, "b_error": result.error})
            lines.append(_line(result.message_id, None, result.status, now,
                               result.error or result.detail))
            made = []
            for new in result.deliveries:
                delivery_id = next(ids)
                made.append(delivery_id)
                rows.append(_delivery_row(delivery_id, result, new.destination, new.lane, now))
                lines.append(_line(result.message_id, delivery_id, st.QUEUED, now,
                                   new.destination))
            results.append(made)
        if updates:
            conn.execute(_SET_MESSAGE_STATUS, updates)
        if rows:
            conn.execute(deliveries.insert(), rows)
        if lines:
            conn.execute(journal.insert(), lines)
        return results


def _still_received(conn: Any, message_ids: list[int]) -> set[int]:
    query = select(messages.c.id).where(messages.c.id.in_(message_ids),
                                        messages.c.status == st.RECEIVED)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return set(conn.execute(query).scalars())


def _delivery_row(delivery_id: int, result: ProcessingResult, destination: str, lane: int,
                  now: float) -> dict:
    return {
        "id": delivery_id,
        "message_id": result.message_id,
        "channel": result.channel,
        "destination": destination,
        "lane": lane,
        "status": st.QUEUED,
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
        "next_attempt_at": now,
        "last_error": None,
        "response": None,
    }


_UPDATE_DELIVERY = (
    update(deliveries)
    .where(deliveries.c.id == bindparam("b_id"))
    .values(
        status=bindparam("b_status"),
        attempts=bindparam("b_attempts"),
        updated_at=bindparam("b_now"),
        next_attempt_at=bindparam("b_next"),
        last_error=bindparam("b_error"),
        response=bindparam("b_response"),
    )
)


class DeliveryUpdateOp(WriteOp):
    """Record delivery attempts: SENT, QUEUED again for a retry, or parked in ERROR."""

    rank = 30

    def apply(self, conn: Any, items: Sequence[DeliveryUpdate]) -> list[None]:
        now = time.time()
        updates, lines = [], []
        for u in items:
            st.check_transition("delivery", st.QUEUED, u.status)
            updates.append({"b_id": u.delivery_id, "b_status": u.status,
                            "b_attempts": u.attempts, "b_now": now,
                            "b_next": u.next_attempt_at, "b_error": u.last_error,
                            "b_response": u.response})
            lines.append(_line(u.message_id, u.delivery_id, u.status, now, u.last_error))
        conn.execute(_UPDATE_DELIVERY, updates)
        conn.execute(journal.insert(), lines)
        return [None] * len(items)
