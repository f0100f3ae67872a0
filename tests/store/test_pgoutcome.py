"""Tests for engine.store.pgoutcome: a batch of delivery outcomes on PostgreSQL, written with
no read before the COMMIT, and what it stores (rows, journal, counts) as the read-then-write
way did."""
from __future__ import annotations

import threading
import time

import psycopg
import pytest
from sqlalchemy import select, update

from engine import status as st
from engine.store import counters, ops, pgpipeline
from engine.store.pendingrates import FlushRatesOp
from engine.store.rawsql import RawStatements
from engine.store.records import DeliveryUpdate
from engine.store.schema import deliveries, journal, rate_buckets
from tests.store.test_pgpipeline import record, traced


def queued(engine, count: int) -> list[tuple[int, int]]:
    """``count`` messages committed TRANSFORMED, one QUEUED delivery each: (delivery id,
    message id) of each."""
    sql = RawStatements(engine.dialect)
    op = ops.IngestOp(ops.IdAllocator(engine, "messages"), "n1", sql,
                      ops.IdAllocator(engine, "deliveries"))
    items = [record(n) for n in range(count)]
    op.prepare(items)
    with engine.begin() as conn:
        results = op.finish(conn, op.apply(conn, items))
    return [(r.delivery_ids[0], r.message_id) for r in results]


def rows(engine) -> tuple[dict, list, dict]:
    """What is committed: {delivery id: (status, attempts, last_error)}, the journal's
    delivery lines (delivery id, status, detail) in order, and the counts' differences from
    a recount."""
    with engine.connect() as conn:
        found = {i: (s, a, e) for i, s, a, e in conn.execute(select(
            deliveries.c.id, deliveries.c.status, deliveries.c.attempts,
            deliveries.c.last_error))}
        lines = conn.execute(select(journal.c.delivery_id, journal.c.status, journal.c.detail)
                             .where(journal.c.delivery_id.is_not(None))
                             .order_by(journal.c.id)).all()
        return found, [tuple(line) for line in lines], counters.differences(conn)


def test_outcome_batch_is_one_round_trip(pg_engine):
    """If a batch of outcomes (sent, sent with a detail, retried, parked, and one late for a
    delivery another recorded SENT) is written on PostgreSQL, then BEGIN, its one statement
    and COMMIT go with a single Sync (no read in the middle), each QUEUED row takes its
    outcome and the SENT one keeps its own, the journal holds each line its row does not
    imply, the counts equal a recount, and the deliveries it sent are the writer's rate
    events, written with its next flush."""
    made = queued(pg_engine, 6)
    sql = RawStatements(pg_engine.dialect)
    counts = counters.Counters(sql, "n1")
    op, flush = ops.DeliveryUpdateOp(sql, "n1", counts), FlushRatesOp(counts)
    transaction = pgpipeline.PipelinedTransactions(pg_engine)
    (a, am), (b, bm), (c, cm), (d, dm), (e, em), (f, fm) = made
    with pg_engine.connect() as conn:
        for items in ([(DeliveryUpdate(f, fm, st.SENT, 1, 0.0),)], [
                (DeliveryUpdate(a, am, st.SENT, 1, 0.0),
                 DeliveryUpdate(b, bm, st.SENT, 1, 0.0, detail="warning 1")),
                (DeliveryUpdate(c, cm, st.QUEUED, 1, 9.0, last_error="timed out"),),
                (DeliveryUpdate(d, dm, st.ERROR, 3, 0.0, last_error="refused"),
                 DeliveryUpdate(f, fm, st.ERROR, 2, 0.0, last_error="late"))]):
            stop = traced(conn)
            op.prepare(items)
            with transaction(conn):
                done = op.apply(conn, items)
            sent = stop(in_order=True)
            op.finish(conn, done)
        flush.prepare([None])
        with transaction(conn):  # the writer's flush of its rate events
            left = flush.finish(conn, flush.apply(conn, [None]))
    before_sync = sent[:sent.index("Sync")]
    assert (sent.count("Sync"), before_sync.count("Flush"), sent.count("Query")) == (1, 0, 0)
    assert before_sync.count("Execute") == 3  # BEGIN, the outcomes, COMMIT
    found, lines, differences = rows(pg_engine)
    assert found == {a: (st.SENT, 1, None), b: (st.SENT, 1, None),
                     c: (st.QUEUED, 1, "timed out"), d: (st.ERROR, 3, "refused"),
                     e: (st.QUEUED, 0, None), f: (st.SENT, 1, None)}
    assert lines == [(b, st.SENT, "warning 1"), (c, st.QUEUED, "timed out"),
                     (d, st.ERROR, "refused"), (f, st.ERROR, "late")]
    assert differences == {}
    with pg_engine.connect() as conn:
        kept = counters.totals(conn)
        rated = conn.execute(select(rate_buckets.c.destination, rate_buckets.c.count)
                             .where(rate_buckets.c.destination != "")).all()
    assert kept[("adt-in", "out", counters.RETRYING)] == 1
    assert rated == [("out", 3)]
    assert left == [False]  # nothing pending any more


def test_retried_then_sent_in_one_batch(pg_engine):
    """If one batch holds two outcomes of one delivery (a retry, then its success) beside
    another's, then both apply in order, as one by one: the row ends SENT after two
    attempts, the retry's line is written, and the counts equal a recount."""
    (a, am), (b, bm) = queued(pg_engine, 2)
    op = ops.DeliveryUpdateOp(RawStatements(pg_engine.dialect), "n1")
    transaction = pgpipeline.PipelinedTransactions(pg_engine)
    with pg_engine.connect() as conn:
        with transaction(conn):
            op.apply(conn, [(DeliveryUpdate(a, am, st.QUEUED, 1, 0.0, last_error="busy"),
                             DeliveryUpdate(b, bm, st.SENT, 1, 0.0)),
                            (DeliveryUpdate(a, am, st.SENT, 2, 0.0),)])
    found, lines, differences = rows(pg_engine)
    assert (found, lines, differences) == (
        {a: (st.SENT, 2, None), b: (st.SENT, 1, None)}, [(a, st.QUEUED, "busy")], {})


@pytest.mark.parametrize("tried", [None, 0])
def test_outcome_waits_for_a_row_another_is_changing(pg_engine, tried):
    """If another transaction is recording a delivery SENT when this batch parks it, then
    the batch waits for it, finds the row SENT, leaves it so and moves no count for it (its
    line is written, as for any late outcome); whether the lane said what attempts it read
    (the outcome changed without a lock first) or not (locked first)."""
    (a, am), = queued(pg_engine, 1)
    op = ops.DeliveryUpdateOp(RawStatements(pg_engine.dialect), "n1")
    transaction = pgpipeline.PipelinedTransactions(pg_engine)
    with pg_engine.connect() as conn:
        before = counters.totals(conn)
    other = pg_engine.connect()
    other.execute(update(deliveries).where(deliveries.c.id == a).values(status=st.SENT))
    done = threading.Event()

    def park():
        with pg_engine.connect() as conn:
            with transaction(conn):
                op.apply(conn, [(DeliveryUpdate(a, am, st.ERROR, 1, 0.0, last_error="x",
                                                tried=tried),)])
        done.set()

    parking = threading.Thread(target=park)
    parking.start()
    waited = not done.wait(0.5)  # holds the row: the batch cannot have committed
    other.commit()
    other.close()
    parking.join()
    with pg_engine.connect() as conn:
        after = counters.totals(conn)
    found, lines, _ = rows(pg_engine)
    assert waited
    assert found[a][0] == st.SENT and lines == [(a, st.ERROR, "x")]
    assert after == before  # the other one's SENT was not counted (it wrote no counts)


def test_outcomes_as_their_lane_read_them_take_no_lock_first(pg_engine):
    """If a batch's outcomes say what attempts their lane read (``tried``), then the rows
    still as read change without being locked first: a row another transaction holds
    ``FOR KEY SHARE`` (as a foreign key's check does) does not make the batch wait, where
    ``FOR UPDATE`` would. A row QUEUED with other attempts than read (queued again by a
    replay) is found locked and moved as before; the counts equal a recount."""
    (a, am), (b, bm), (c, cm) = queued(pg_engine, 3)
    with pg_engine.begin() as conn:  # b: parked by another, then replayed (attempts kept)
        conn.execute(update(deliveries).where(deliveries.c.id == b).values(attempts=2))
        counters.repair(conn)
    op = ops.DeliveryUpdateOp(RawStatements(pg_engine.dialect), "n1")
    transaction = pgpipeline.PipelinedTransactions(pg_engine)
    holder = pg_engine.connect()
    holder.exec_driver_sql(f"SELECT 1 FROM deliveries WHERE id = {a} FOR KEY SHARE")
    done = threading.Event()

    def record_outcomes():
        with pg_engine.connect() as conn:
            with transaction(conn):
                op.apply(conn, [(DeliveryUpdate(a, am, st.SENT, 1, 0.0, tried=0),
                                 DeliveryUpdate(b, bm, st.QUEUED, 1, 9.0, last_error="busy",
                                                tried=0),
                                 DeliveryUpdate(c, cm, st.ERROR, 1, 0.0, last_error="no",
                                                tried=0))])
        done.set()

    recording = threading.Thread(target=record_outcomes)
    recording.start()
    committed = done.wait(5)
    holder.rollback()
    holder.close()
    recording.join()
    found, lines, differences = rows(pg_engine)
    assert committed
    assert found == {a: (st.SENT, 1, None), b: (st.QUEUED, 1, "busy"), c: (st.ERROR, 1, "no")}
    assert lines == [(b, st.QUEUED, "busy"), (c, st.ERROR, "no")]
    assert differences == {}


def test_empty_batch_writes_nothing(pg_engine):
    """If a lane's batch holds no outcome, then it is answered and nothing is sent for it
    (no statement with empty arrays)."""
    op = ops.DeliveryUpdateOp(RawStatements(pg_engine.dialect), "n1")
    transaction = pgpipeline.PipelinedTransactions(pg_engine)
    with pg_engine.connect() as conn:
        stop = traced(conn)
        with transaction(conn):
            assert op.apply(conn, [()]) == [None]
        sent = stop(in_order=True)
    assert sent.count("Execute") == 2  # BEGIN, COMMIT


def test_generic_plan_finds_the_rows_by_their_key(pg_engine):
    """If the server plans the (prepared) statement generically while ``deliveries`` is
    empty, as at a store's first batches, then it still finds the outcomes' rows through the
    primary key, never by reading the table: the plan it keeps as the table grows."""
    op = ops.DeliveryUpdateOp(RawStatements(pg_engine.dialect), "n1")
    with pg_engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        raw.execute("SET plan_cache_mode = force_generic_plan")
        raw.execute("PREPARE outcomes AS " + op._outcomes.sql)
        nulls = ", ".join("NULL" for _ in op._outcomes.order)
        plan = [line for line, in raw.execute(f"EXPLAIN EXECUTE outcomes({nulls})")]
        conn.rollback()
    on_deliveries = [line.strip() for line in plan if " on deliveries" in line]
    assert on_deliveries and all("using deliveries_pkey" in line or line.startswith(
        "->  Update on") for line in on_deliveries), plan
