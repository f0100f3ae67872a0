"""
The threads a served registry runs its transactions in, apart from the rest
of the engine: a writer thread that commits the ITI-41 and ITI-42
submissions waiting as one group (:class:`xds.registry.grouped.GroupCommitter`:
one fsync for all, each submission in a savepoint of its own; on PostgreSQL
three such writers, as one spends most of its time waiting for the server's
answers: bench/README.md), and a small pool of reader threads for ITI-18 and
ITI-43.

Why threads of its own: the engine store's read pool also claims and
renews the delivery lanes' leases; ITI-41s run there one transaction each
held those threads (and paid an fsync each on SQLite), and reads queued
behind them. Here a burst of submissions waits for the writer only, the
reads run beside it (SQLite's WAL lets readers go on while the writer
commits), and the store's threads stay free for the delivery lanes.

Both sides hand Twisted a Deferred fired in the reactor thread after the
work (for a write: after its group's commit; persist before answer); the answers
of one group reach the reactor in one hand-off.

test-case-name: tests.e2e.test_shared_record_grouped
"""
from __future__ import annotations

import threading
from typing import Any, Callable

from twisted.internet import defer, threads
from twisted.python.threadpool import ThreadPool

from xds.registry.grouped import GroupCommitter, Queued

READ_THREADS = 2
MAX_GROUP = 64
WRITERS = {"sqlite": 1}  # by dialect; others: DEFAULT_WRITERS
DEFAULT_WRITERS = 3


class RegistryThreads:
    """A writer thread (grouped commits) and reader threads over SQLAlchemy *engine*.

    ``read(function, *args)`` runs ``function(conn, *args)`` on a connection outside any
    transaction in a reader thread; ``write(work, *args, failed=...)`` queues
    ``work(conn, *args)`` for the next group (see :class:`xds.registry.grouped.Queued`).
    Both return Deferreds. :meth:`start` before use, :meth:`stop` at the end.
    """

    def __init__(self, engine: Any, reactor: Any, *, read_threads: int = READ_THREADS,
                 max_group: int = MAX_GROUP):
        self.engine = engine
        self._reactor = reactor
        self._max_group = max_group
        self._pool = ThreadPool(minthreads=1, maxthreads=read_threads,
                                name="aiguillage-registry-read")
        self.writer: GroupCommitter | None = None
        self._answers: list[tuple[defer.Deferred, Any]] = []  # committed, to be fired
        self._answers_lock = threading.Lock()
        self._answers_scheduled = False

    def start(self) -> None:
        self.writer = GroupCommitter(self.engine, max_group=self._max_group,
                                     name="aiguillage-registry-writer", threads=self.writers)
        self._pool.start()

    def stop(self) -> defer.Deferred:
        """Store the submissions queued, then stop the threads; Deferred firing when done."""
        writer, self.writer = self.writer, None
        if writer is None:
            return defer.succeed(None)

        def stopping() -> None:  # blocking: joins the writer, then the readers
            writer.stop()
            self._pool.stop()

        return threads.deferToThread(stopping)

    @property
    def writers(self) -> int:
        """How many writer threads: one on SQLite (its writers take turns), more on a
        database server, where a group spends much of its time waiting for the answers."""
        return WRITERS.get(self.engine.dialect.name, DEFAULT_WRITERS)

    @property
    def groups(self) -> int:
        """How many group commits so far (for benches and tests)."""
        return 0 if self.writer is None else self.writer.groups

    def read(self, function: Callable, *args: Any) -> defer.Deferred:
        return threads.deferToThreadPool(self._reactor, self._pool, self._read, function, args)

    def _read(self, function: Callable, args: tuple) -> Any:
        with self.engine.connect() as conn:
            return function(conn, *args)

    def write(self, work: Callable, *args: Any,
              failed: Callable[[Any, BaseException], Any] | None = None) -> defer.Deferred:
        if self.writer is None:
            return defer.fail(RuntimeError("the registry's writer is not running"))
        answer: defer.Deferred = defer.Deferred()

        def done(future: Any) -> None:  # in the writer thread, after the commit
            self._answered(answer, future)

        self.writer.queue(Queued(work, args, failed)).add_done_callback(done)
        return answer

    def _answered(self, answer: defer.Deferred, future: Any) -> None:
        """Hand a committed submission's result to the reactor (from the writer thread):
        the answers of one group go in one ``callFromThread``, one wake-up of the reactor,
        whichever answer comes first scheduling it for those that follow."""
        with self._answers_lock:
            self._answers.append((answer, future))
            if self._answers_scheduled:
                return
            self._answers_scheduled = True
        self._reactor.callFromThread(self._fire_answers)

    def _fire_answers(self) -> None:
        """Fire every answer handed over so far (in the reactor thread)."""
        with self._answers_lock:
            answers, self._answers = self._answers, []
            self._answers_scheduled = False
        for answer, future in answers:
            error = future.exception()
            if error is not None:
                answer.errback(error)
            else:
                answer.callback(future.result())
