"""
Ids of messages and deliveries, handed out by the engine from blocks it reserves.

Why the engine gives ids rather than the database: a whole batch of messages is inserted with
one ``executemany`` and its deliveries name their message without a round trip
(engine.store.schema's ``id_blocks``).

test-case-name: tests.store.test_ids
"""
from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import update

from engine.store.schema import id_blocks

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
            first, self._next = self._next, self._next + count
            if self._next <= self._end:  # nearly always: the current block holds them
                return list(range(first, self._next))
            self._next = first
            ids: list[int] = []
            while len(ids) < count:
                if self._next >= self._end:
                    self._reserve(max(self._block_size, count - len(ids)))
                grab = min(count - len(ids), self._end - self._next)
                ids.extend(range(self._next, self._next + grab))
                self._next += grab
            return ids

    def mark(self) -> tuple[int, int]:
        """Where the allocator stands, for :meth:`rewind`."""
        with self._lock:
            return self._next, self._end

    def rewind(self, mark: tuple[int, int]) -> None:
        """Hand out again the ids taken since ``mark`` (a batch that did not commit is
        written again with the same ids), when they are still in the current block."""
        with self._lock:
            if self._end == mark[1] and mark[0] <= self._next:
                self._next = mark[0]

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
