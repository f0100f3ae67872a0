"""
The store's read threads: a query handed to a thread and its answer handed back, with as
little as possible around it.

Why not Twisted's ``deferToThreadPool``: a delivery lane reads its queue after every batch it
sends, and a lane that keeps up with the intake sends small batches; the thread pool's
bookkeeping for each call (its coordinator, the worker's queue and condition, the call's
context, taken and restored in both threads) cost more instructions than the read of a few
deliveries itself. Here a call is one put on a queue the threads wait on (``SimpleQueue``,
in C), and its answer one ``callFromThread`` that fires its Deferred.

On SQLite each thread also keeps its connection from one read to the next (its own, checked
out of SQLAlchemy's pool once): taking it out of the pool and giving it back (its events, its
reset's rollback) cost about as much again. A SQLite connection needs no check before use (no
server, no network); each read still ends its transaction (:func:`read_on`), so a kept
connection holds no snapshot between reads and never keeps a checkpoint from resetting the
WAL. One that fails is closed, and the next read of its thread opens another. Elsewhere
(PostgreSQL) each read checks a connection out of the pool, pinged first, as before.

test-case-name: tests.store.test_readthreads
"""
from __future__ import annotations

import logging
import queue
import threading
from typing import Any, Callable

from twisted.internet import defer
from twisted.python.failure import Failure

log = logging.getLogger(__name__)

_STOP = object()


def read_on(conn: Any, query: Callable, args: tuple, kwargs: dict) -> Any:
    """``query(conn, *args, **kwargs)``, its transaction then ended (runs in a read thread)."""
    result = query(conn, *args, **kwargs)
    # transaction boundary: the read's, ended by a commit (it wrote nothing). Left to the
    # pool, it would be rolled back, and psycopg forgets every statement it prepared on a
    # connection at each rollback: a lane's read of its queue, run after every batch it
    # sends, was then parsed and planned every time. A query on the DBAPI cursor
    # (engine.store.rawsql) began a transaction SQLAlchemy does not know of.
    if conn.in_transaction():
        conn.commit()
    else:
        conn.connection.commit()
    return result


class ReadThreads:
    """``count`` threads running queries on ``engine``'s connections (``keep``: each thread
    keeps its own, see the module doc)."""

    def __init__(self, engine: Any, reactor: Any, count: int, *, keep: bool,
                 name: str = "aiguillage-read"):
        self._engine = engine
        self._reactor = reactor
        self._count = count
        self._keep = keep
        self._name = name
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._stopped = False

    def start(self) -> None:
        """Start the threads (a call made before waits for them)."""
        for n in range(self._count):
            thread = threading.Thread(target=self._run, name=f"{self._name}-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Answer the calls queued, then end the threads (blocking until they have ended)."""
        self._stopped = True
        for _ in self._threads:
            self._queue.put(_STOP)
        for thread in self._threads:
            thread.join()
        self._threads = []

    def read(self, query: Callable, args: tuple, kwargs: dict) -> defer.Deferred:
        """Deferred[``query(conn, *args, **kwargs)``] run in one of the threads (on the
        reactor thread; the Deferred fires there)."""
        if self._stopped:
            return defer.fail(RuntimeError("the store's read threads have stopped"))
        answer = defer.Deferred()
        self._queue.put((query, args, kwargs, answer))
        return answer

    # -- read threads -----------------------------------------------------------------

    def _run(self) -> None:
        conn: Any = None  # this thread's kept connection (keep), opened at its first read
        try:
            while True:
                call = self._queue.get()
                if call is _STOP:
                    return
                query, args, kwargs, answer = call
                try:
                    if not self._keep:
                        with self._engine.connect() as pooled:
                            result = read_on(pooled, query, args, kwargs)
                    else:
                        if conn is None:
                            conn = self._engine.connect()
                        result = read_on(conn, query, args, kwargs)
                except BaseException:
                    failed = Failure()
                    if conn is not None:
                        conn = _closed(conn)  # the next read opens another
                    self._reactor.callFromThread(answer.errback, failed)
                else:
                    self._reactor.callFromThread(answer.callback, result)
        finally:
            if conn is not None:
                _closed(conn)


def _closed(conn: Any) -> None:
    """Close ``conn`` (rolled back by the pool if a transaction was left open); None."""
    try:
        conn.close()
    except Exception:
        log.exception("closing a read connection failed")
    return None
