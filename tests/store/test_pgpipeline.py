"""Tests for engine.store.pgpipeline: the group commit's pipelined transaction on PostgreSQL.

The transaction's own behaviour is tested on a real PostgreSQL database (it exists only
there); what the writes store, odd bytes and text included, on both databases through the
Store.
"""
from __future__ import annotations

import os
import tempfile
import time
from collections import Counter

import psycopg
import pytest
from sqlalchemy import func, select, update
from twisted.internet import defer
from twisted.trial import unittest

from engine import status as st
from engine.store import ops, pgpipeline
from engine.store.rawsql import RawStatements, execute_many
from engine.store.records import Decision, InboundRecord, NewDelivery
from engine.store.schema import deliveries, id_blocks, journal, messages
from engine.store.store import make_engine
from tests.dbs import sqlite_url
from tests.store.storecase import StoreCase, inbound


def journal_rows(engine) -> list[tuple]:
    with engine.connect() as conn:  # another connection: sees only what was committed
        return conn.execute(select(journal.c.message_id, journal.c.status, journal.c.detail)
                            .order_by(journal.c.message_id)).all()


def add_lines(conn, sql: RawStatements, message_ids: list[int]) -> None:
    execute_many(conn, sql.insert(journal, ("id", "message_id", "status", "at")),
                 [(n, n, st.RECEIVED, 1.0) for n in message_ids])


def traced(conn):
    """Start a libpq trace of ``conn``'s messages; call the result to stop it and get the
    names of the messages the client sent, counted."""
    fd, path = tempfile.mkstemp()
    pgconn = conn.connection.driver_connection.pgconn
    pgconn.trace(fd)
    pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)

    def stop(in_order: bool = False) -> Counter | list[str]:
        pgconn.untrace()
        os.close(fd)
        with open(path) as f:
            lines = [line.split("\t") for line in f.read().splitlines()]
        os.unlink(path)
        sent = [fields[2].split()[0] for fields in lines if len(fields) > 2 and fields[0] == "F"]
        return sent if in_order else Counter(sent)

    return stop


def record(n: int) -> InboundRecord:
    return InboundRecord("adt-in", time.time(), "127.0.0.1:1", b"MSH|^~\\&|A|B\r", st.RECEIVED,
                         "A|B", str(n), "ADT^A01",
                         decision=Decision(st.TRANSFORMED, deliveries=(NewDelivery("out"),)))


def test_supported_only_on_postgresql(tmp_path, pg_engine):
    """If the store is SQLite, then the writer keeps SQLAlchemy's transactions; on
    PostgreSQL through psycopg 3 it pipelines them."""
    sqlite = make_engine(sqlite_url(tmp_path))
    try:
        assert (pgpipeline.supported(sqlite), pgpipeline.supported(pg_engine)) == (False, True)
    finally:
        sqlite.dispose()


def test_batch_checked_by_the_index_is_one_round_trip(pg_engine):
    """If the duplicate check is left to the unique index (as the store has it), then a
    batch of messages without a copy sends BEGIN, its writes as one statement and COMMIT
    with a single Sync and no Flush before it: one round trip (psycopg may Flush after the
    Sync), and what it wrote is committed; a batch holding a copy of a stored one goes
    likewise once it is written the full way (engine.store.pgintake)."""
    sql = RawStatements(pg_engine.dialect)
    op = ops.IngestOp(ops.IdAllocator(pg_engine, "messages"), "n1", sql,
                      ops.IdAllocator(pg_engine, "deliveries"))
    transaction = pgpipeline.PipelinedTransactions(pg_engine)
    lean = [record(n) for n in range(7)]
    full = [record(n) for n in range(10, 17)] + [record(100)]
    op.prepare(lean + full + [record(100)])
    with pg_engine.connect() as conn:
        with transaction(conn):  # a first one also prunes the rate buckets
            stored_first = op.finish(conn, op.apply(conn, [record(100)]))
        # the lean way, then the full way (as after a batch that held a copy)
        for items, full_batches, wanted in ((lean, 0, 0), (full, 1, 1)):
            op.write_full_way(full_batches)
            stop = traced(conn)
            with transaction(conn):
                results = op.apply(conn, items)
            sent = stop(in_order=True)
            results = op.finish(conn, results)
            before_sync = sent[:sent.index("Sync")]
            assert (sent.count("Sync"), before_sync.count("Flush"), sent.count("Query")) \
                == (1, 0, 0)
            assert before_sync.count("Execute") == 3  # BEGIN, the rows, COMMIT
            assert [r.status for r in results].count(st.DUPLICATE) == wanted
    with pg_engine.connect() as other:
        stored = Counter(other.execute(select(messages.c.status)).scalars())
    assert stored == {st.TRANSFORMED: 15, st.DUPLICATE: 1}
    assert [r.status for r in results] == [st.TRANSFORMED] * 7 + [st.DUPLICATE]
    assert results[-1].duplicate_of == stored_first[0].message_id


def test_failed_write_commits_nothing(pg_engine):
    """If a pipelined write fails (a duplicate key), then the block raises the database's
    error, nothing of the transaction is committed, and the connection serves the next."""
    sql = RawStatements(pg_engine.dialect)
    transaction = pgpipeline.PipelinedTransactions(pg_engine)
    with pg_engine.connect() as conn:
        with pytest.raises(psycopg.errors.UniqueViolation):
            with transaction(conn):
                add_lines(conn, sql, [1, 2])
                add_lines(conn, sql, [2])
        assert journal_rows(pg_engine) == []
        with transaction(conn):
            add_lines(conn, sql, [3])
    assert journal_rows(pg_engine) == [(3, st.RECEIVED, None)]


def test_refused_row_keeps_a_sound_connection(pg_engine):
    """If a pipelined write is refused (a duplicate key) and a statement queued after it
    was one psycopg prepares at that very use (its sixth, which the server skipped), then
    the connection is kept (not invalidated) and that statement runs on it afterwards:
    psycopg forgot the statements it thought prepared."""
    sql = RawStatements(pg_engine.dialect)
    transaction = pgpipeline.PipelinedTransactions(pg_engine)
    with pg_engine.connect() as conn:
        for n in range(1, 6):
            with transaction(conn):
                add_lines(conn, sql, [n])
        with pytest.raises(psycopg.errors.UniqueViolation):
            with transaction(conn):
                conn.connection.driver_connection.execute(
                    "INSERT INTO journal (id, message_id, status, at) VALUES (1, 1, %s, 1)",
                    (st.RECEIVED,))
                add_lines(conn, sql, [6])
        assert not conn.invalidated
        with transaction(conn):
            add_lines(conn, sql, [7])
        with transaction(conn):
            add_lines(conn, sql, [8])
    assert [n for n, _, _ in journal_rows(pg_engine)] == [1, 2, 3, 4, 5, 7, 8]


def test_exception_in_block_commits_nothing(pg_engine):
    """If the code in the block raises after writing, then the exception propagates and
    nothing is committed."""
    sql = RawStatements(pg_engine.dialect)
    transaction = pgpipeline.PipelinedTransactions(pg_engine)
    with pg_engine.connect() as conn:
        with pytest.raises(ZeroDivisionError):
            with transaction(conn):
                add_lines(conn, sql, [1])
                1 / 0
        with transaction(conn):
            add_lines(conn, sql, [2])
    assert journal_rows(pg_engine) == [(2, st.RECEIVED, None)]


def test_sqlalchemy_statement_sees_pipelined_writes(pg_engine):
    """If a SQLAlchemy statement runs in the transaction after pipelined writes, then it sees
    them and its rowcount is right (the pipeline ended first), the writes after it run too,
    and all of it commits together."""
    sql = RawStatements(pg_engine.dialect)
    transaction = pgpipeline.PipelinedTransactions(pg_engine)
    with pg_engine.connect() as conn:
        with transaction(conn):
            add_lines(conn, sql, [1, 2])
            counted = conn.execute(select(func.count()).select_from(journal)).scalar_one()
            changed = conn.execute(update(id_blocks).values(next_value=id_blocks.c.next_value)
                                   ).rowcount
            add_lines(conn, sql, [3])
    assert (counted, changed) == (2, 2)  # id_blocks: "messages" and "deliveries"
    assert [row[0] for row in journal_rows(pg_engine)] == [1, 2, 3]


# Every byte value (NUL, tab, newline, CR, backslash, the high half) in the raw message, and
# text with tabs, newlines, backslashes and characters outside Latin-1 in the text columns.
ODD_RAW = b"MSH|^~\\&|A|B\r" + bytes(range(256)) + b"\\N\t\\.\n"
ODD_TEXT = "tab\there\nnew\\line \\N é ✓ 𝄞"


class OddValuesTests(StoreCase):
    """What the group commit stores, byte for byte, whatever the bytes and characters."""

    @defer.inlineCallbacks
    def test_odd_values_survive(self):
        """If a message's raw bytes hold every byte value and its text columns hold tabs,
        newlines, backslashes and non-Latin characters (or are NULL), then they read back
        exactly as written."""
        odd = InboundRecord("adt-in", 1.5, ODD_TEXT, ODD_RAW, st.RECEIVED, sender=ODD_TEXT,
                            control_id="c\t1", message_type=None, charset=None,
                            decision=Decision(st.ERROR, error=ODD_TEXT))
        plain = inbound("2", sender=None, raw=b"MSH|^~\\&|\r")
        results = yield self.ingest_all([odd, plain])
        first = yield self.detail(results[0].message_id)
        second = yield self.detail(results[1].message_id)
        self.assertEqual((bytes(first["raw"]), first["peer"], first["sender"],
                          first["control_id"], first["message_type"], first["charset"],
                          first["error"], first["received_at"]),
                         (ODD_RAW, ODD_TEXT, ODD_TEXT, "c\t1", None, None, ODD_TEXT, 1.5))
        self.assertEqual([(j["status"], j["detail"]) for j in first["journal"]],
                         [(st.RECEIVED, None), (st.ERROR, ODD_TEXT)])
        self.assertEqual((second["sender"], second["error"], bytes(second["raw"])),
                         (None, None, b"MSH|^~\\&|\r"))


class OddValuesTestsSQLite(OddValuesTests, unittest.TestCase):
    backend = "sqlite"


class OddValuesTestsPostgreSQL(OddValuesTests, unittest.TestCase):
    backend = "postgresql"



def test_begin_and_commit_leave_with_the_statement_and_the_sync(pg_engine, monkeypatch):
    """A group commit of one statement exchanges with the socket twice: BEGIN goes in the
    statement's exchange, COMMIT in the Sync's (psycopg's ``execute`` would run one for
    each: four, each a poll and a send). Counted as psycopg's pipeline exchanges."""
    import psycopg._pipeline_base as pipeline_base

    exchanges = []
    real = pipeline_base.pipeline_communicate

    def counted(pgconn, commands):
        exchanges.append(len(commands))
        return (yield from real(pgconn, commands))

    sql = RawStatements(pg_engine.dialect)
    op = ops.IngestOp(ops.IdAllocator(pg_engine, "messages"), "n1", sql,
                      ops.IdAllocator(pg_engine, "deliveries"))
    transaction = pgpipeline.PipelinedTransactions(pg_engine)
    first, batch = [record(200)], [record(n) for n in range(201, 205)]
    op.prepare(first + batch)
    with pg_engine.connect() as conn:
        with transaction(conn):  # a first one also prunes the rate buckets
            op.finish(conn, op.apply(conn, first))
        monkeypatch.setattr(pipeline_base, "pipeline_communicate", counted)
        with transaction(conn):
            results = op.finish(conn, op.apply(conn, batch))
    assert exchanges == [2, 2]  # BEGIN and the rows; COMMIT and the Sync
    assert [r.status for r in results] == [st.TRANSFORMED] * 4


def test_a_refused_row_is_the_error_raised_not_the_aborted_commit():
    """If ending the pipeline meets the refused row's error, then the skipped COMMIT's
    "pipeline aborted" fetched after it (psycopg raises it in a ``finally``, the first error
    as its context, when the server's answers arrive apart), then the group commit raises
    the refused row's error: what decides whether the batch goes again the full way."""
    from types import SimpleNamespace

    class Pipeline:
        def __exit__(self, *exc):
            try:
                raise psycopg.errors.UniqueViolation("duplicate key")
            finally:
                raise psycopg.errors.PipelineAborted("pipeline aborted")

    conn = SimpleNamespace(info={pgpipeline._PIPELINE: Pipeline()})
    with pytest.raises(psycopg.errors.UniqueViolation):
        pgpipeline.PipelinedTransactions._end_pipeline(conn)
    alone = psycopg.errors.PipelineAborted("pipeline aborted")  # stays what it is
    assert pgpipeline._first_error(alone) is alone


def test_a_lazy_group_commit_commits_without_waiting_for_the_disk(pg_engine):
    """A lazy group commit (the delivery outcomes') runs with ``synchronous_commit`` off,
    for its own transaction only, commits its writes as the other kind does, in the same
    exchanges with the socket, and leaves the connection as the server has it."""
    import psycopg._pipeline_base as pipeline_base

    sql = RawStatements(pg_engine.dialect)
    transaction = pgpipeline.PipelinedTransactions(pg_engine)
    exchanges = []
    real = pipeline_base.pipeline_communicate

    def counted(pgconn, commands):
        exchanges.append(len(commands))
        return (yield from real(pgconn, commands))

    def setting(conn) -> str:
        return conn.exec_driver_sql("SHOW synchronous_commit").scalar()

    with pg_engine.connect() as conn:
        server = setting(conn)
    assert server != "off"
    with pg_engine.connect() as conn:
        with transaction.lazy(conn):
            add_lines(conn, sql, [1])
        pipeline_base.pipeline_communicate = counted
        try:
            with transaction.lazy(conn):
                add_lines(conn, sql, [2])
        finally:
            pipeline_base.pipeline_communicate = real
        with transaction.lazy(conn):
            inside = setting(conn)  # ends the pipeline: the rest runs unpipelined
        with transaction(conn):
            durable = setting(conn)
        after = setting(conn)
        conn.rollback()
    assert (inside, durable, after) == ("off", server, server)
    # two exchanges, as a durable one's: BEGIN, the SET and the rows; COMMIT and the Sync
    assert exchanges == [3, 2]
    assert [row[0] for row in journal_rows(pg_engine)] == [1, 2]


def test_the_writers_large_values_are_compressed_with_lz4(pg_engine):
    """A value large enough for the server to compress (an ORU of a few kB), written in a
    group commit, is compressed with lz4, not pglz (the server's default), and reads back
    as written."""
    raw = b"MSH|^~\\&|LAB|HOSP\r" + b"".join(b"OBX|%d|NM|GLU||%d|mg/dL\r" % (n, n * 7)
                                            for n in range(200))
    sql = RawStatements(pg_engine.dialect)
    transaction = pgpipeline.PipelinedTransactions(pg_engine)
    with pg_engine.connect() as conn:
        with transaction(conn):
            execute_many(conn, sql.insert(messages, ("id", "channel", "received_at", "node",
                                                     "status", "raw")),
                         [(1, "lab", 1.0, "n1", st.RECEIVED, raw)])
    with pg_engine.connect() as conn:
        method, stored = conn.exec_driver_sql(
            "SELECT pg_column_compression(raw), raw FROM messages WHERE id = 1").one()
    assert (method, bytes(stored)) == ("lz4", raw)
