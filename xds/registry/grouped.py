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
from typing import Any, Callable, Mapping, Sequence

from xds.metadata.content import DocumentContent
from xds.metadata.errors import RegistryError
from xds.metadata.model import Submission
from xds.registry.register import provide_and_register


@dataclass
class Queued:
    """One piece of work waiting for a group: ``work(conn, *args)``, run in the group's
    transaction (``register.register`` or ``provide_and_register``, or a function wrapping
    one, which open a savepoint of their own there).

    *failed*, if given, is the answer when the group cannot be stored (a connection that
    cannot be opened, a commit that fails): ``failed(conn, error)``, *conn* None when no
    connection was had; what it returns is the result, what it raises the exception.
    Without it, the Future holds the group's exception.
    """

    work: Callable[..., Any]
    args: tuple = ()
    failed: Callable[[Any, BaseException], Any] | None = None
    result: Future = field(default_factory=Future)

    def run(self, conn: Any) -> Any:
        return self.work(conn, *self.args)

    def fail(self, conn: Any, error: BaseException) -> None:
        """Answer this work when its group was not stored."""
        if self.failed is None:
            self.result.set_exception(error)
            return
        try:
            self.result.set_result(self.failed(conn, error))
        except BaseException as answer:
            self.result.set_exception(answer)


class Provided(Queued):
    """One ITI-41 submission waiting for a group: what ``provide_and_register`` takes."""

    def __init__(self, submission: Submission, documents: Mapping[str, DocumentContent],
                 repository_unique_id: str):
        super().__init__(provide_and_register, (submission, documents, repository_unique_id))


def provide_and_register_group(conn: Any, group: Sequence[Queued]
                               ) -> list[list[RegistryError] | BaseException]:
    """Provide and register (or register) every submission of *group* in one transaction.

    One result per submission, in order: its errors (empty or warnings only
    when it was stored) or the exception that rolled back its savepoint. If
    the commit itself fails, the exception propagates: nothing was stored.
    *conn* must be outside any transaction.
    """
    results: list[list[RegistryError] | BaseException] = []
    if len(group) == 1 and conn.dialect.name != "sqlite":
        # alone: its own transaction, without the savepoint's two round trips to the server
        # (SQLite keeps BEGIN IMMEDIATE below: the lock before the checks read)
        try:
            results.append(group[0].run(conn))
        except Exception as error:  # rolled back: nothing of it was stored
            results.append(error)
        return results
    with conn.begin():  # transaction boundary: the whole group, one commit
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        for item in group:
            try:  # each submission in its own savepoint (see register._transaction)
                results.append(item.run(conn))
            except Exception as error:  # its savepoint was rolled back; the others go on
                results.append(error)
    return results


class GroupCommitter:
    """A writer thread that commits the ITI-41 submissions waiting, as one group each time,
    each group on a connection taken from *engine*'s pool.

    With *threads* above one, as many writers take groups from the one queue: on
    PostgreSQL a group spends much of its time waiting for the server's answers, and
    concurrent transactions are safe (a uniqueId two groups race for is refused by the
    unique constraint in the second, as a duplicate). On SQLite, whose writers take
    turns, one is enough.

    ``submit`` returns a Future of the submission's errors, set after the commit
    (or of the exception that kept it out). ``stop`` ends the thread once the
    submissions already queued are stored.
    """

    def __init__(self, engine: Any, *, max_group: int = 64, name: str = "xds-registry-writer",
                 threads: int = 1):
        if max_group < 1:
            raise ValueError("max_group must be at least 1")
        if threads < 1:
            raise ValueError("threads must be at least 1")
        self.engine = engine
        self.max_group = max_group
        self.groups = 0      # how many commits, for benches and tests
        self._counting = threading.Lock()
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._run, name=f"{name}-{number}",
                                          daemon=True) for number in range(threads)]
        for thread in self._threads:
            thread.start()

    def submit(self, submission: Submission, documents: Mapping[str, DocumentContent],
               repository_unique_id: str) -> Future:
        """Queue one submission; its Future holds its errors once committed."""
        return self.queue(Provided(submission, documents, repository_unique_id))

    def queue(self, item: Queued) -> Future:
        """Queue any work for the next group; its Future holds its result once committed."""
        self._queue.put(item)
        return item.result

    def stop(self, timeout: float | None = None) -> None:
        """Store what is queued, then end the threads (blocking)."""
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            group, stopping = self._next_group()
            if group:
                self._commit(group)
            if stopping:
                return

    def _next_group(self) -> tuple[list[Queued], bool]:
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

    def _commit(self, group: list[Queued]) -> None:
        """Store *group* on a connection from the pool (a broken one is not kept), then
        answer each submission; a failure to connect or to commit fails them all."""
        results = None
        answered = False
        try:
            with self.engine.connect() as conn:
                try:
                    results = provide_and_register_group(conn, group)
                except Exception as error:  # nothing of the group was stored
                    answered = True
                    for item in group:
                        item.fail(conn, error)
        except Exception as error:  # no connection; a failed close after the commit (the
            if results is None and not answered:  # group was stored) is not the group's
                answered = True
                for item in group:
                    item.fail(None, error)
        if answered or results is None:
            return
        with self._counting:
            self.groups += 1
        for item, result in zip(group, results):
            if isinstance(result, BaseException):
                item.result.set_exception(result)
            else:
                item.result.set_result(result)
