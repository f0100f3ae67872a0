"""
The group commit's transaction on PostgreSQL: its statements and its COMMIT in one round trip.

Why: on PostgreSQL the writer waits for the server at each round trip, and under load each
one also waits for the server process to be scheduled. psycopg 3 sends ``BEGIN`` in a round
trip of its own, each ``executemany`` in one more (its own pipeline and Sync), and ``COMMIT``
in another: eight round trips for a batch of messages, where the baseline's one ``COPY`` needs
four. Here the writer's transaction runs in one psycopg pipeline: ``BEGIN``, every write and
``COMMIT`` are queued and sent with a single Sync at the end, in as many exchanges with the
socket as statements and one (``BEGIN`` goes in the first statement's, ``COMMIT`` in the
Sync's: see :func:`_queue`). A read in the middle (the duplicate check, the decided messages still
RECEIVED) asks for what is queued so far and its own rows, one round trip. The intake's
batches make no such read: their duplicate check is left to the unique index, in the
statement that writes them, so a batch of messages takes one round trip; one that holds a
copy of a stored message two more (engine.store.ops.IngestOp). Nor do the delivery outcomes:
their statement reads the deliveries' current statuses itself (engine.store.pgoutcome), but
for a batch that names one delivery twice.

How: the writer's connection runs in autocommit mode, so that psycopg neither sends its own
``BEGIN`` (which it would sync at once) nor tracks the transaction; this module sends
``BEGIN`` and ``COMMIT`` itself, inside the pipeline. SQLAlchemy's ``begin()`` is kept around
it so that SQLAlchemy's own idea of the transaction stays consistent (its commit and rollback
find psycopg idle and send nothing).

Only the raw statements of :mod:`engine.store.rawsql` may ride the pipeline: psycopg leaves a
pipelined cursor's ``description`` and ``rowcount`` empty until the results are fetched, which
SQLAlchemy would read as "no rows". So a SQLAlchemy statement on the writer's connection first
ends the pipeline (one Sync, see :meth:`PipelinedTransactions._before_statement`); the rest of
that transaction runs unpipelined, as correct as before and as slow. Durability is unchanged:
the COMMIT is synchronous (``synchronous_commit`` as the server has it) and the writer answers
its submitters only once the Sync has returned; but for a lazy group commit
(:meth:`PipelinedTransactions.lazy`), which only the delivery outcomes get.

A pipeline that fails is rolled back outside the pipeline. psycopg counts a statement as
prepared when it queues its preparation, and the server skips what follows an error in a
pipeline, so after the error the cache of prepared statements can name one the server never
made; psycopg forgets them all on a ``ROLLBACK`` it executes (and deallocates them on the
server in the same call), so a connection whose batch was refused a row (a constraint) and
rolled back is sound, and kept: the intake writes a batch again on it when the unique key
refused a copy of a stored message (engine.store.ops.IngestOp). Any other failure, or a
rollback that did not go through, has the connection invalidated, not returned to the pool.

test-case-name: tests.store.test_pgpipeline
"""
from __future__ import annotations

import contextlib
import logging
from typing import Any, ContextManager, Iterator

from sqlalchemy import event

log = logging.getLogger(__name__)

_PIPELINE = "aiguillage.pipeline"  # key in the writer's Connection.info: the open pipeline
# a group commit's first commands, queued (see _queue): one command each (a pipeline sends
# them with the extended protocol, one statement a message)
_BEGIN = (b"BEGIN",)
_BEGIN_LAZY = (b"BEGIN", b"SET LOCAL synchronous_commit = off")


def supported(engine: Any) -> bool:
    """Whether ``engine`` is PostgreSQL through psycopg 3 with a libpq that has pipelines."""
    if engine.dialect.name != "postgresql" or engine.dialect.driver != "psycopg":
        return False
    import psycopg

    return psycopg.Pipeline.is_supported()


class PipelinedTransactions:
    """The writer's transactions on one PostgreSQL engine (writer thread only)."""

    def __init__(self, engine: Any):
        event.listen(engine, "before_cursor_execute", self._before_statement)

    def __call__(self, conn: Any) -> ContextManager[None]:
        """One group commit on ``conn``: what runs in the block commits, or nothing does;
        the writer answers once the commit is on disk (``synchronous_commit`` as the server
        has it)."""
        return self._transaction(conn, _BEGIN)

    def lazy(self, conn: Any) -> ContextManager[None]:
        """A group commit whose COMMIT returns without waiting for the disk
        (``SET LOCAL synchronous_commit = off``), for writes whose loss at a crash of the
        server only means work done again (the delivery outcomes: a resend, which receivers
        dedupe on MSH-10; docs/operations.md). The transaction is as atomic and as visible
        at its COMMIT as any other; only the wait for its WAL flush goes, which the next
        synchronous commit's flush covers anyway (the WAL is one sequence). The writer never
        puts an accepted message's write in one (engine.store.writer)."""
        return self._transaction(conn, _BEGIN_LAZY)

    @contextlib.contextmanager
    def _transaction(self, conn: Any, begin: tuple[bytes, ...]) -> Iterator[None]:
        if not conn.connection.driver_connection.autocommit:  # a connection new to it
            conn.execution_options(isolation_level="AUTOCOMMIT")  # BEGIN is ours, below
            _compress_with_lz4(conn.connection.driver_connection)
        driver = conn.connection.driver_connection
        with conn.begin():  # SQLAlchemy's bookkeeping only: psycopg is in autocommit
            pipeline = driver.pipeline()
            pipeline.__enter__()
            conn.info[_PIPELINE] = pipeline
            try:
                for command in begin:  # transaction boundary: one group commit
                    _queue(conn, driver, command)
                yield
                _queue(conn, driver, b"COMMIT")  # sent with the Sync if still pipelined
                self._end_pipeline(conn)  # the Sync: raises if a write or the commit failed
            except BaseException as exc:
                self._end_pipeline(conn, exc)
                if not (_roll_back(driver) and _refused_rows(exc)):
                    # a broken connection, or one in a state we cannot vouch for: the pool
                    # must not hand it out again
                    conn.invalidate()
                raise

    def _before_statement(self, conn: Any, cursor: Any, statement: str, parameters: Any,
                          context: Any, executemany: bool) -> None:
        """A SQLAlchemy statement is about to run: end the pipeline first (see above)."""
        if _PIPELINE in conn.info:
            self._end_pipeline(conn)

    @staticmethod
    def _end_pipeline(conn: Any, exc: BaseException | None = None) -> None:
        pipeline = conn.info.pop(_PIPELINE, None)
        if pipeline is None:
            return
        if exc is None:
            try:
                pipeline.__exit__(None, None, None)
            except Exception as error:
                first = _first_error(error)
                if first is error:
                    raise
                raise first from None
            return
        try:  # the results of what the failure left queued: "pipeline aborted", expected
            pipeline.__exit__(None, None, None)
        except Exception:
            # psycopg would log it as a warning, once per refused batch (see IngestOp)
            log.debug("ending the pipeline of a failed group commit", exc_info=True)


def _compress_with_lz4(driver: Any) -> None:
    """Have the server compress the writer's large values (a message's raw bytes, an
    ORU with its results) with lz4 rather than pglz, its default: a column given no method
    of its own takes the session's ``default_toast_compression`` when a value is stored,
    and each value records its method, so that any reader decompresses it. Why: pglz was
    the largest part of the writer's server process at 64 connections, lz4 compresses
    several times faster for a few percent more bytes (bench/README.md). A server built
    without lz4, or older than PostgreSQL 14, refuses the setting and keeps pglz."""
    try:
        driver.execute("SET default_toast_compression = lz4")  # autocommit: the session's
    except Exception as error:
        log.info("the store's server does not compress with lz4 (%s): pglz is kept", error)


def _queue(conn: Any, driver: Any, command: bytes) -> None:
    """Queue ``command`` in the open pipeline without sending it: it goes in the next
    statement's exchange with the socket, or in the Sync's. psycopg's ``execute`` runs an
    exchange for each command at once (a ``poll``, the sends, a read of what arrived, and
    its Python), for the BEGIN and the COMMIT of every group commit. Its own BEGIN and
    COMMIT (those of a connection not in autocommit) are queued so, through the method used
    here. Outside a pipeline (a SQLAlchemy statement ended it), the command runs at once."""
    queue = getattr(driver, "_exec_command", None)
    if _PIPELINE in conn.info and queue is not None:
        driver.wait(queue(command))  # in a pipeline: queued, nothing sent, no result awaited
    else:
        driver.execute(command)


def _first_error(error: BaseException) -> BaseException:
    """The error that failed a pipeline. psycopg raises the first error among the results it
    fetched together; when the pipeline ends, the results fetched after that are processed
    in a ``finally``, and a queued command's "pipeline aborted" (the COMMIT skipped after a
    refused row) then replaces the first error, left as its context. Which of the two the
    writer sees depends on when the server's answers arrive; the refused row is the one
    that says what happened (engine.store.ops.stored_key_refused: written again the full
    way, not one by one)."""
    import psycopg

    while (isinstance(error, psycopg.errors.PipelineAborted)
           and isinstance(error.__context__, psycopg.Error)):
        error = error.__context__
    return error


def _roll_back(driver: Any) -> bool:
    """End a failed group commit's transaction; whether that went through, leaving the
    connection idle, its prepared statements known again (see the module doc)."""
    import psycopg

    try:
        if driver.closed:
            return False
        # outside any pipeline: psycopg forgets its prepared statements on a ROLLBACK and
        # deallocates them on the server in this same call
        driver.execute("ROLLBACK")
        return driver.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    except Exception:
        log.debug("rollback after a failed group commit failed", exc_info=True)
        return False


def _refused_rows(exc: BaseException) -> bool:
    """Whether a group commit failed because the database refused a row (a constraint):
    the connection itself is sound, and may serve the next one (a copy of a stored message
    refused by the unique key is written again on it, engine.store.ops.IngestOp)."""
    import psycopg

    return isinstance(getattr(exc, "orig", None) or exc, psycopg.errors.IntegrityError)
