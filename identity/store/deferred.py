"""
The index for the reactor: each operation in a thread, in a transaction of its own.

The operations are the synchronous functions of this package (what the CLI and
tests call with a connection); here each runs in one worker thread of its own
pool, inside ``engine.begin()`` (:func:`in_transaction`), and answers with a Deferred. One thread: the
index's writes are serialised, as SQLite needs and as keeps two resolutions of
the same newcomer from both creating a person.

test-case-name: tests.identity.store.test_deferred
"""
from __future__ import annotations

from typing import Any, Callable

from sqlalchemy.exc import IntegrityError
from twisted.internet import threads
from twisted.python.threadpool import ThreadPool

from identity.store import decisions, merges, persons
from identity.store.resolve import resolve as resolve_identity

ATTEMPTS = 3


def in_transaction(engine: Any, operation: Callable, *args: Any, **kwargs: Any) -> Any:
    """``operation(conn, *args, **kwargs)`` in one transaction of its own (blocking: a DB thread).

    Run again (up to :data:`ATTEMPTS` in all) when another writer (a pipeline worker beside
    this thread) gave an identifier this one found free: the unique key refuses the second
    holder (IntegrityError); the next attempt sees the holder.
    """
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with engine.begin() as conn:  # transaction boundary: one index operation
                return operation(conn, *args, **kwargs)
        except IntegrityError:
            if attempt == ATTEMPTS:
                raise


class DeferredIdentityIndex:
    """Deferred-returning operations of the index over a SQLAlchemy engine."""

    def __init__(self, engine: Any, reactor: Any) -> None:
        self.engine = engine
        self._reactor = reactor
        self._pool = ThreadPool(minthreads=1, maxthreads=1, name="aiguillage-identity")

    def start(self) -> None:
        self._pool.start()

    def stop(self) -> None:
        """Wait for the running operation, then stop the thread (blocking: call at shutdown)."""
        self._pool.stop()

    def run(self, operation: Callable, *args: Any, **kwargs: Any) -> Any:
        """``operation(conn, *args, **kwargs)`` in one transaction; Deferred[its result]."""
        return threads.deferToThreadPool(self._reactor, self._pool, self._in_transaction,
                                         operation, args, kwargs)

    def _in_transaction(self, operation: Callable, args: tuple, kwargs: dict) -> Any:
        return in_transaction(self.engine, operation, *args, **kwargs)

    def resolve(self, *args: Any, **kwargs: Any) -> Any:
        return self.run(resolve_identity, *args, **kwargs)

    def link(self, *args: Any) -> Any:
        return self.run(persons.link, *args)

    def unlink(self, *args: Any) -> Any:
        return self.run(persons.unlink, *args)

    def update_traits(self, *args: Any) -> Any:
        return self.run(persons.update_traits, *args)

    def merge(self, *args: Any) -> Any:
        return self.run(merges.merge, *args)

    def unmerge(self, *args: Any) -> Any:
        return self.run(merges.unmerge, *args)

    def accept(self, *args: Any) -> Any:
        return self.run(decisions.accept, *args)

    def reject(self, *args: Any) -> Any:
        return self.run(decisions.reject, *args)

    def link_review(self, *args: Any) -> Any:
        return self.run(decisions.link_to, *args)
