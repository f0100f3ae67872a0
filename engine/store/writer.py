"""
The group-commit writer: one thread that owns every write to the store.

Why a thread that commits whatever is queued as soon as it is free: every sender waits for its
ACK, and the ACK waits for the commit. One commit per message caps near the disk's fsync rate;
a fixed batching window makes each sender wait for the window. A writer that takes everything
queued while the previous commit was running batches exactly as much as the load offers: one
message when the engine is idle (lowest latency), hundreds under load (highest throughput).

Writes are expressed as :class:`WriteOp` objects that apply a whole list of items in one go
(``executemany``), so a batch of a thousand messages costs a handful of statements. A batch
that fails is retried item by item, so one poisoned item fails alone and the others commit.

Deferreds are created and fired on the reactor thread; the writer thread hands results back
with a single ``callFromThread`` per batch. A caller on the hot path may give a plain function
instead of taking a Deferred (:meth:`GroupCommitWriter.submit`'s ``then``): a Deferred and its
callbacks cost the reactor thread more than the rest of a small message's answer. The thread
keeps one connection open from batch to batch (checking one out of the pool and back costs as
much as a small batch's rows); one that fails is closed and the next batch opens another.

test-case-name: tests.store.test_writer
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any, Callable, ContextManager, Sequence

from twisted.internet import defer

log = logging.getLogger(__name__)

_STOP = object()


class WriteOp:
    """A kind of write applied to many items in one transaction (runs in the writer thread).

    ``rank`` orders the kinds inside a transaction: a message is inserted before the
    deliveries that name it when both land in the same batch.
    """

    rank = 50
    # Whether the batch's answers wait for its commit to reach the disk. False: the writes
    # may be lost at a crash of the database server, as long as that only means work done
    # again (a delivery outcome: a resend, deduped by the receivers on MSH-10). On a store
    # that has such commits (engine.store.pgpipeline's ``lazy``), these ops commit apart,
    # after the others of their batch (see GroupCommitWriter._parts).
    durable = True

    def prepare(self, items: Sequence[Any]) -> None:
        """Get ready to apply ``items``, before the batch's transaction opens.

        Anything that needs a transaction of its own (reserving ids) belongs here: on SQLite,
        a second transaction started from inside a batch that has already written waits for
        that batch's own write lock until the busy timeout.
        """

    def apply(self, conn: Any, items: Sequence[Any]) -> list[Any]:
        """Write ``items`` on ``conn`` (inside an open transaction); return one result each."""
        raise NotImplementedError

    def again(self, error: BaseException) -> bool:
        """Whether a batch that failed with ``error`` is to be written once more as a whole,
        on the same connection: this op wrote it a leaner way that such an error refuses,
        and now writes it the full way (engine.store.ops.IngestOp on PostgreSQL: a copy of a
        stored message). Called in the writer thread, after the rollback."""
        return False

    def finish(self, conn: Any, results: list[Any]) -> list[Any]:
        """The results of ``apply`` once its transaction has committed, completed with what
        only the commit's answer says (engine.store.ops.IngestOp on PostgreSQL). Called in
        the writer thread, on ``conn`` outside any transaction."""
        return results


class GroupCommitWriter:
    """Runs :class:`WriteOp` items in group commits on a thread of its own."""

    def __init__(self, engine: Any, reactor: Any, *, batch_max: int = 1000,
                 after_commit: Callable[[list, list[tuple[bool, Any]]], None] | None = None,
                 on_idle: Callable[[], None] | None = None, idle_after: float = 1.0,
                 transaction: Callable[[Any], ContextManager] | None = None):
        self._engine = engine
        # One group commit's transaction on a connection: ``conn.begin()`` unless the store
        # gives one made for its database (engine.store.pgpipeline on PostgreSQL).
        self._transaction = transaction or _begin
        # the store's commit that does not wait for the disk, for ops that are not durable;
        # None (SQLite): every op commits in the one transaction of its batch
        self._lazy: Callable[[Any], ContextManager] | None = getattr(transaction, "lazy", None)
        self._conn: Any = None  # the writer thread's connection, kept between batches
        self._on_idle = on_idle  # run once when nothing was queued for ``idle_after`` s
        self._idle_after = idle_after
        self._reactor = reactor
        self._batch_max = batch_max
        # called with a batch's entries (op, item, Deferred or then) and their outcomes (ok,
        # result or exception) after each group commit: see :func:`committed`
        self._after_commit = after_commit
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._stopped = defer.Deferred()
        self.batches = 0
        self.items = 0
        self.busy_seconds = 0.0  # time spent applying and committing batches

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="aiguillage-writer", daemon=True)
        self._thread.start()

    def submit(self, op: WriteOp, item: Any,
               then: Callable[[bool, Any], None] | None = None) -> defer.Deferred | None:
        """Queue ``item`` for ``op``; return a Deferred firing with its result after commit.

        Given ``then``, no Deferred: ``then(True, result)`` is called after the commit, or
        ``then(False, exception)`` if the item could not be written, and None is returned.
        Called on the reactor thread, and so are the Deferred and ``then``.
        """
        if then is not None:
            self._queue.put((op, item, then))
            return None
        d = defer.Deferred()
        self._queue.put((op, item, d))
        return d

    def stop(self) -> defer.Deferred:
        """Commit what is queued, then end the thread; Deferred fires when it has ended."""
        if self._thread is None:
            return defer.succeed(None)
        self._queue.put(_STOP)
        return self._stopped

    # -- writer thread ------------------------------------------------------------------

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch, stopping = self._take_batch()
            for part in self._parts(batch):
                self._commit(part)
        self._close()
        self._reactor.callFromThread(self._stopped.callback, None)

    def _connection(self) -> Any:
        """The writer thread's open connection, opened again after a failure closed it."""
        if self._conn is None:
            self._conn = self._engine.connect()
        return self._conn

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                log.exception("closing the writer's connection failed")

    def _take_batch(self) -> tuple[list, bool]:
        first = self._next_entry()
        if first is _STOP:
            return [], True
        batch = [first]
        # what is queued now (this thread is the queue's only reader: they are all there)
        for _ in range(min(self._queue.qsize(), self._batch_max - 1)):
            entry = self._queue.get_nowait()
            if entry is _STOP:
                return batch, True
            batch.append(entry)
        return batch, False

    def _next_entry(self) -> Any:
        """The next queued entry, waiting as long as needed; runs ``on_idle`` once after
        ``idle_after`` seconds without one."""
        if self._on_idle is None:
            return self._queue.get()
        try:
            return self._queue.get(timeout=self._idle_after)
        except queue.Empty:
            pass
        try:
            self._on_idle()
        except Exception:
            log.exception("idle task of the writer failed")
        return self._queue.get()

    def _parts(self, batch: list) -> list[list]:
        """The group commits of ``batch``: one, or, on a store with lazy commits, the durable
        ops' first and then the others'. Why apart: an accepted message's ACK waits for its
        commit, which then neither waits for the delivery outcomes' statement nor makes
        them wait for the disk (engine.store.pgpipeline's ``lazy``)."""
        if self._lazy is None or not batch:
            return [batch] if batch else []
        durable = [entry for entry in batch if entry[0].durable]
        if len(durable) == len(batch) or not durable:
            return [batch]
        return [durable, [entry for entry in batch if not entry[0].durable]]

    def _commit(self, batch: list) -> None:
        started = time.perf_counter()
        try:
            outcomes = self._apply(batch)
        except Exception:
            log.exception("group commit of %d items failed; retrying them one by one", len(batch))
            outcomes = [self._apply_one(entry) for entry in batch]
        self.batches += 1
        self.items += len(batch)
        self.busy_seconds += time.perf_counter() - started
        if self._after_commit is not None:
            try:
                self._after_commit(batch, outcomes)
            except Exception:
                log.exception("after-commit hook failed")
        self._reactor.callFromThread(_fire_all, [answer for _, _, answer in batch], outcomes)

    def _apply(self, batch: list) -> list[tuple[bool, Any]]:
        """One transaction for the whole batch, a second one if one of its ops asks
        (:meth:`WriteOp.again`); results in the order of ``batch``. A batch that fails
        closes the connection, unless it goes again."""
        try:
            try:
                return self._apply_once(batch)
            except Exception as exc:
                if not any([op.again(exc) for op in {op for op, _, _ in batch}]):
                    raise
                log.debug("batch of %d items refused, written again: %s", len(batch), exc)
            return self._apply_once(batch)  # transaction boundary: the batch, once more
        except Exception:
            self._close()  # rolled back; a broken connection is not used again
            raise

    def _apply_once(self, batch: list) -> list[tuple[bool, Any]]:
        """One transaction for the whole batch; results in the order of ``batch``."""
        groups: dict[WriteOp, tuple[list[int], list[Any]]] = {}  # op: (indexes, items)
        for index, (op, item, _) in enumerate(batch):
            group = groups.get(op)
            if group is None:
                groups[op] = ([index], [item])
            else:
                group[0].append(index)
                group[1].append(item)
        kinds = sorted(groups, key=_rank) if len(groups) > 1 else list(groups)
        for op in kinds:
            op.prepare(groups[op][1])
        conn = self._connection()
        # transaction boundary: one group commit, lazy when none of its ops is durable
        lazy = self._lazy is not None and not any(op.durable for op in kinds)
        with (self._lazy if lazy else self._transaction)(conn):
            applied = [op.apply(conn, groups[op][1]) for op in kinds]
        outcomes: list[tuple[bool, Any]] = [(False, None)] * len(batch)
        for op, results in zip(kinds, applied):  # committed: never written again
            try:
                results = op.finish(conn, results)
            except Exception:
                self._close()
                log.exception("completing the results of a committed %s batch failed; its "
                              "items get them as written", type(op).__name__)
            for i, result in zip(groups[op][0], results):
                outcomes[i] = (True, result)
        return outcomes

    def _apply_one(self, entry: tuple) -> tuple[bool, Any]:
        try:
            return self._apply([entry])[0]  # transaction boundary: one item, after a failed batch
        except Exception as exc:
            self._close()
            log.exception("write of one %s item failed", type(entry[0]).__name__)
            return False, exc


def _begin(conn: Any) -> ContextManager:
    return conn.begin()


def _rank(op: WriteOp) -> int:
    return op.rank


def committed(batch: list, outcomes: list[tuple[bool, Any]]) -> list[tuple[WriteOp, Any, Any]]:
    """What an after-commit hook is given, as (op, item, result or exception) per item."""
    return [(op, item, result) for (op, item, _), (_, result) in zip(batch, outcomes)]


def _fire_all(answers: list[Any], outcomes: list[tuple[bool, Any]]) -> None:
    """Answer a batch's items on the reactor thread: fire each Deferred, or call each
    ``then`` of :meth:`GroupCommitWriter.submit`. A ``then`` that raises is logged, and the
    items after it are answered all the same, as a failing callback of a Deferred would be."""
    for answer, (ok, result) in zip(answers, outcomes):
        if not isinstance(answer, defer.Deferred):
            try:
                answer(ok, result)
            except Exception:
                log.exception("answering a committed item failed")
        elif ok:
            answer.callback(result)
        else:
            answer.errback(result)
