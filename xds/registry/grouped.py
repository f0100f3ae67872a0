"""
Group commit for ITI-41: submissions that arrive together share one
transaction, so that one fsync (SQLite ``synchronous=FULL``) or one WAL flush
(PostgreSQL) serves them all, while each is still stored whole or not at all.

Each submission runs in its own savepoint inside the group's transaction (the
register module opens a savepoint when it finds a transaction open): a refused
submission, or one whose statements fail, is rolled back alone and the others
are committed. Nobody is answered before the commit: a failed commit fails
every submission of the group, none of which was kept (persist before
acknowledge).

On SQLite the group's transaction begins with ``BEGIN IMMEDIATE``: the write
lock is taken before the registry's checks read, so no other writer slips in
between a check and its insert, and a busy database is waited for (busy_timeout)
before any work rather than failing at the first insert.

:class:`GroupCommitter` is the blocking side of a server: one thread owning a
connection, fed by a queue, that takes every submission waiting (up to
*max_group*) as one group. It knows nothing of Twisted; a server turns its
``concurrent.futures.Future`` into a Deferred.

test-case-name: tests.xds.test_registry_grouped
"""
from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from xds.metadata.content import DocumentContent
from xds.metadata.errors import RegistryError
from xds.metadata.model import Submission
from xds.registry.register import provide_and_register


@dataclass
class Provided:
    """One ITI-41 submission waiting for a group: what ``provide_and_register`` takes."""

    submission: Submission
    documents: Mapping[str, DocumentContent]
    repository_unique_id: str
    result: Future = field(default_factory=Future)


def provide_and_register_group(conn: Any, group: Sequence[Provided]
                               ) -> list[list[RegistryError] | BaseException]:
    """Provide and register every submission of *group* in one transaction.

    One result per submission, in order: its errors (empty or warnings only
    when it was stored) or the exception that rolled back its savepoint. If
    the commit itself fails, the exception propagates: nothing was stored.
    *conn* must be outside any transaction.
    """
    results: list[list[RegistryError] | BaseException] = []
    with conn.begin():  # transaction boundary: the whole group, one commit
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        for item in group:
            try:  # each submission in its own savepoint (see register._transaction)
                results.append(provide_and_register(conn, item.submission, item.documents,
                                                    item.repository_unique_id))
            except Exception as error:  # its savepoint was rolled back; the others go on
                results.append(error)
    return results


class GroupCommitter:
    """A writer thread that commits the ITI-41 submissions waiting, as one group each time,
    each group on a connection taken from *engine*'s pool.

    ``submit`` returns a Future of the submission's errors, set after the commit
    (or of the exception that kept it out). ``stop`` ends the thread once the
    submissions already queued are stored.
    """

    def __init__(self, engine: Any, *, max_group: int = 64, name: str = "xds-registry-writer"):
        if max_group < 1:
            raise ValueError("max_group must be at least 1")
        self.engine = engine
        self.max_group = max_group
        self.groups = 0      # how many commits, for benches and tests
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, submission: Submission, documents: Mapping[str, DocumentContent],
               repository_unique_id: str) -> Future:
        """Queue one submission; its Future holds its errors once committed."""
        item = Provided(submission, documents, repository_unique_id)
        self._queue.put(item)
        return item.result

    def stop(self, timeout: float | None = None) -> None:
        """Store what is queued, then end the thread (blocking)."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            group, stopping = self._next_group()
            if group:
                self._commit(group)
            if stopping:
                return

    def _next_group(self) -> tuple[list[Provided], bool]:
        """Wait for one submission, then take those already waiting (up to max_group)."""
        first = self._queue.get()
        if first is None:
            return [], True
        group = [first]
        while len(group) < self.max_group:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return group, True
            group.append(item)
        return group, False

    def _commit(self, group: list[Provided]) -> None:
        """Store *group* on a connection from the pool (a broken one is not kept), then
        answer each submission; a failure to connect or to commit fails them all."""
        try:
            with self.engine.connect() as conn:
                results = provide_and_register_group(conn, group)
        except Exception as error:  # nothing of the group was stored
            for item in group:
                item.result.set_exception(error)
            return
        self.groups += 1
        for item, result in zip(group, results):
            if isinstance(result, BaseException):
                item.result.set_exception(result)
            else:
                item.result.set_result(result)
