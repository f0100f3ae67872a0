"""
One SQLite database, several writing processes: their group commits take turns on a file
lock instead of SQLite's busy handler.

A node runs its intake and its delivery workers in processes of their own, all writing to
the same SQLite file, and SQLite lets one write at a time. When a writer finds the database
locked, SQLite's busy handler sleeps and tries again, 1, 2, 5, 10... ms later: a lock
released a microsecond after the first try still costs the waiter a millisecond or more,
and an ACK waits for its commit. So each group commit on SQLite first takes an exclusive
``flock`` on a file beside the database (``<database>.writelock``): the kernel wakes the next
writer the moment the lock is released, and SQLite then finds its own lock free. A write
that does not go through a group commit (a lease claim, a command of the CLI) still meets
SQLite's busy handler, as before; this only takes the writers' turns off it.

Held from the batch's first statement to its commit, the lock also keeps another process
from committing between a batch's reads and its writes.

Each :class:`WriteTurns` opens its own descriptor (``flock`` locks belong to an open file:
two writers of one process must not share one), in the writer thread, at its first batch.

test-case-name: tests.store.test_sqlitelock
"""
from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any, Callable, ContextManager

LOCK_SUFFIX = ".writelock"


def lock_path(database: Path) -> Path:
    """The lock file of ``database``: beside it, as SQLite's ``-wal`` and ``-shm`` are."""
    return database.with_name(database.name + LOCK_SUFFIX)


class WriteTurns:
    """A group commit's transaction (``transaction(conn)``, a context manager) that holds
    the database's write lock around ``inner(conn)``."""

    def __init__(self, database: Path, inner: Callable[[Any], ContextManager]):
        self.path = lock_path(database)
        self._inner = inner
        self._descriptor: int | None = None
        self.waits = 0  # batches that found the lock taken by another writer

    def __call__(self, conn: Any) -> "Turn":
        return Turn(self, self._inner(conn))

    def take(self) -> int:
        """Wait for the lock (in the writer thread); the descriptor that holds it."""
        descriptor = self._open()
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.waits += 1
            fcntl.flock(descriptor, fcntl.LOCK_EX)  # blocks the writer thread only
        return descriptor

    def _open(self) -> int:
        if self._descriptor is None:
            self._descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        return self._descriptor

    def close(self) -> None:
        descriptor, self._descriptor = self._descriptor, None
        if descriptor is not None:
            os.close(descriptor)


class Turn:
    """One group commit's turn: the lock taken, then ``inner`` entered; ``inner`` left, then
    the lock released. A class rather than a ``contextmanager`` generator: it is entered once
    per group commit."""

    __slots__ = ("_turns", "_inner", "_descriptor")

    def __init__(self, turns: WriteTurns, inner: ContextManager):
        self._turns = turns
        self._inner = inner
        self._descriptor = -1

    def __enter__(self) -> None:
        self._descriptor = self._turns.take()
        try:
            self._inner.__enter__()
        except BaseException:
            fcntl.flock(self._descriptor, fcntl.LOCK_UN)
            raise

    def __exit__(self, kind: type | None, error: BaseException | None, trace: Any) -> bool | None:
        try:
            return self._inner.__exit__(kind, error, trace)
        finally:
            fcntl.flock(self._descriptor, fcntl.LOCK_UN)
