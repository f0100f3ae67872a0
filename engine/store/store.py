"""
The durable store's public face: Deferreds on the reactor side, SQLAlchemy in threads.

Writes go through one group-commit writer thread (see writer.py); reads run in a small thread
pool of their own, which SQLite's WAL mode lets proceed while the writer commits. Nothing here
blocks the reactor.

test-case-name: tests.store.test_store
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable, Sequence

from pathlib import Path

from sqlalchemy import create_engine, event, make_url
from twisted.internet import threads
from twisted.python.threadpool import ThreadPool

from engine.store import counters, migrate, ops, pgpipeline, sqlitebind, sqlitefile
from engine.store.pendingrates import FlushRatesOp
from engine.store.readthreads import ReadThreads, read_on
from engine.store.rawsql import DBAPITransaction, RawStatements
from engine.store.sqlitelock import WriteTurns
from engine.store.records import (
    DecidedMessage,
    DeliveryUpdate,
    InboundRecord,
)
from engine.store.writer import GroupCommitWriter, committed

log = logging.getLogger(__name__)

SQLITE_SYNCHRONOUS = ("FULL", "NORMAL")


def make_engine(url: str, *, sqlite_synchronous: str = "FULL") -> Any:
    """A SQLAlchemy engine for ``url`` with the engine's settings for that database.

    SQLite runs in WAL mode (readers never wait for the writer). ``synchronous=FULL`` makes
    each commit survive a power cut, not only a ``kill -9``; group commits make that cheap.
    """
    if url.startswith("sqlite"):
        if ":memory:" in url or url.rstrip("/") in ("sqlite:", "sqlite:/"):
            raise ValueError("the store needs a file database: an in-memory SQLite is per thread")
        if sqlite_synchronous not in SQLITE_SYNCHRONOUS:
            raise ValueError(f"sqlite synchronous must be one of {SQLITE_SYNCHRONOUS}")
        sqlitefile.prepare(sqlite_path(url))
        sqlitebind.register()
        engine = create_engine(url, connect_args={"timeout": 30}, pool_size=8, max_overflow=8)
        event.listen(engine, "connect", _sqlite_pragmas(sqlite_synchronous))
        return engine
    return create_engine(url, pool_size=8, max_overflow=8, pool_pre_ping=True)


def sqlite_path(url: str) -> Path | None:
    """The file of an SQLite URL; None for another database."""
    if not url.startswith("sqlite"):
        return None
    database = make_url(url).database
    return Path(database).expanduser() if database else None


def _sqlite_pragmas(synchronous: str) -> Callable:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute(f"PRAGMA journal_size_limit={sqlitefile.JOURNAL_SIZE_LIMIT}")
        cursor.close()

    return on_connect


def _transactions(engine: Any, path: Path | None) -> Callable | None:
    """The group commit's transactions for ``engine``'s database: pipelined on PostgreSQL
    (engine.store.pgpipeline), on the DBAPI connection on SQLite
    (:class:`engine.store.rawsql.DBAPITransaction`) taking turns with the other processes'
    writers (engine.store.sqlitelock), SQLAlchemy's ``begin()`` elsewhere (None)."""
    if pgpipeline.supported(engine):
        return pgpipeline.PipelinedTransactions(engine)
    if engine.dialect.name == "sqlite" and path is not None:
        return WriteTurns(path, DBAPITransaction)
    return None


class Store:
    """The engine's durable store. Call :meth:`start` before use and :meth:`stop` at the end."""

    def __init__(self, url: str, reactor: Any, *, node: str = "node", batch_max: int = 1000,
                 sqlite_synchronous: str = "FULL", read_threads: int = 3,
                 clock: Callable[[], float] = time.monotonic):
        """``clock``: what the writer times its writes of rate events by (a test's own)."""
        self.url = url
        self._reactor = reactor
        self.engine = make_engine(url, sqlite_synchronous=sqlite_synchronous)
        # reads, on SQLite each thread keeping its connection (engine.store.readthreads);
        # short transactions of their own (transact) in a pool beside them
        self._reads = ReadThreads(self.engine, reactor, read_threads,
                                  keep=url.startswith("sqlite"))
        self._pool = ThreadPool(minthreads=0, maxthreads=read_threads,
                                name="aiguillage-transact")
        message_ids = ops.IdAllocator(self.engine, "messages")
        delivery_ids = ops.IdAllocator(self.engine, "deliveries")
        sql = RawStatements(self.engine.dialect)
        self.path = sqlite_path(url)
        transaction = _transactions(self.engine, self.path)
        self._turns = transaction if isinstance(transaction, WriteTurns) else None
        # one for the writer's ops: their rate events are pending together (pendingrates)
        self._counts = counters.Counters(sql, node, clock)
        self._ingest = ops.IngestOp(message_ids, node, sql, delivery_ids, self._counts)
        self._delivery = ops.DeliveryUpdateOp(sql, node, self._counts)
        self._flush_rates = FlushRatesOp(self._counts)
        self._after_commit_hooks: list[Callable] = []
        self.wal = None if self.path is None else sqlitefile.WALCheckpointer(self.engine,
                                                                             self.path)
        self.writer = GroupCommitWriter(self.engine, reactor, batch_max=batch_max,
                                        after_commit=self._run_after_commit,
                                        on_idle=self._idle,
                                        transaction=transaction)
        self._started = False

    def start(self, *, create_if_empty: bool = True) -> None:
        """Check the schema (blocking: call before the reactor serves), start the threads."""
        if self.path is not None:
            sqlitefile.warn_if_exposed(self.path)
        migrate.ensure_current(self.engine, create_if_empty=create_if_empty)
        self._pool.start()
        self._reads.start()
        self.writer.start()
        self._started = True

    def stop(self) -> Any:
        """Commit what is queued, stop the threads; a Deferred that fires when done."""
        if not self._started:
            self.engine.dispose()
            return threads.defer.succeed(None)
        self._started = False
        d = self.flush_rates()
        d.addErrback(lambda failure: log.error("writing the pending rate events at stop "
                                               "failed: %s", failure.value))
        d.addCallback(lambda _: self.writer.stop())

        def _finish(_: Any) -> None:
            self._pool.stop()
            self._reads.stop()
            if self._turns is not None:
                self._turns.close()
            self.engine.dispose()

        return d.addCallback(_finish)

    def dedicated_connection(self) -> Any:
        """A DBAPI connection of its own, out of the pool, for a thread that holds it for long
        (a ``LISTEN``); blocking: call it in that thread. The caller closes it."""
        pooled = self.engine.raw_connection()
        pooled.detach()
        return pooled.dbapi_connection

    def on_commit(self, hook: Callable[[list], None]) -> None:
        """Call ``hook(committed)`` in the writer thread after each group commit.

        ``committed`` lists (op, item, result-or-exception) for the batch. Hooks must be quick
        and must not touch Twisted objects except through ``reactor.callFromThread``.
        """
        self._after_commit_hooks.append(hook)

    def flush_rates(self) -> Any:
        """Write the rate events the writer holds (engine.store.pendingrates) now, in a
        group commit of their own or with what is queued; Deferred firing once they are
        committed (a second time if outcomes of that group commit added some: PostgreSQL
        reads them after its commit)."""
        def again(left: bool) -> Any:
            return self.writer.submit(self._flush_rates, None) if left else None

        return self.writer.submit(self._flush_rates, None).addCallback(again)

    def _idle(self) -> None:
        """The writer's idle task (writer thread, nothing queued for a while): a write of
        the rate events it holds if any (queued: the next group commit), else the WAL's
        checkpoint, which then comes at the next idle moment, after that write."""
        if self._counts.rates.pending:
            self.writer.submit(self._flush_rates, None, _unanswered)
        elif self.wal is not None:
            self.wal.idle()

    def _run_after_commit(self, batch: list, outcomes: list) -> None:
        if self._after_commit_hooks:
            done = committed(batch, outcomes)
            for hook in self._after_commit_hooks:
                hook(done)
        if self.wal is not None:
            self.wal.after_commit()

    # -- writes (group-committed) ------------------------------------------------------

    def ingest(self, record: InboundRecord,
               then: Callable[[bool, Any], None] | None = None) -> Any:
        """Commit an inbound message, with its decision if it has one;
        Deferred[IngestResult] firing after the commit. Given ``then``, no Deferred (None):
        ``then(True, IngestResult)`` after the commit, or ``then(False, exception)``, on the
        reactor thread (the MLLP intake's way, see GroupCommitWriter.submit)."""
        return self.writer.submit(self._ingest, record, then)

    def record_decision(self, decided: DecidedMessage) -> Any:
        """Commit the decision of a message committed RECEIVED earlier, through the same
        write as :meth:`ingest`; Deferred[IngestResult], or None when the message was no
        longer RECEIVED (decided already)."""
        return self.writer.submit(self._ingest, decided)

    def record_delivery(self, update: DeliveryUpdate) -> Any:
        """Commit a delivery attempt's outcome; Deferred[None]."""
        return self.writer.submit(self._delivery, (update,))

    def record_deliveries(self, updates: Sequence[DeliveryUpdate]) -> Any:
        """Commit the outcomes of a lane's batch of attempts, all in one group commit, as one
        write: one Deferred[None] for them all, failing if any could not be written (then
        none was)."""
        return self.writer.submit(self._delivery, tuple(updates))

    def is_ingest(self, op: Any) -> bool:
        """Whether an after-commit hook's ``op`` is the ingest of inbound messages."""
        return op is self._ingest

    # -- reads -------------------------------------------------------------------------

    def read(self, query: Callable, *args: Any, **kwargs: Any) -> Any:
        """Run ``query(conn, *args, **kwargs)`` in a read thread; Deferred[its result]."""
        return self._reads.read(query, args, kwargs)

    def _read(self, query: Callable, args: tuple, kwargs: dict) -> Any:
        """What a read thread runs, here, on a connection of the pool (blocking: benches and
        tests of the statements)."""
        with self.engine.connect() as conn:
            return read_on(conn, query, args, kwargs)

    def transact(self, work: Callable, *args: Any) -> Any:
        """Run ``work(conn, *args)`` in a transaction of its own in a read thread; Deferred.

        For short writes that must not wait behind a group commit nor share its fate, such as
        claiming and renewing delivery leases (engine.delivery.claims).
        """
        return threads.deferToThreadPool(self._reactor, self._pool, self._transact, work, args)

    def _transact(self, work: Callable, args: tuple) -> Any:
        with self.engine.begin() as conn:  # transaction boundary: one piece of work
            return work(conn, *args)


def _unanswered(_ok: bool, _result: Any) -> None:
    """The answer of a write nobody waits for (the writer logs a failure itself)."""
