"""Tests for engine.store.counters: counts kept by the writes equal a recount, on both backends."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import insert
from twisted.internet import defer, threads
from twisted.trial import unittest

from engine import status as st
from engine.store import counters, queries
from engine.store.records import Decision, DeliveryUpdate, NewDelivery
from engine.store.replay import replay_message
from engine.store.schema import counts
from tests.store.storecase import StoreCase, decided, inbound, transformed


class CountersTestsMixin(StoreCase):
    """Every write op keeps ``counts`` equal to what a scan finds."""

    @defer.inlineCallbacks
    def history(self):
        """Messages and deliveries through every status the ops and a replay can set."""
        made = yield self.ingest_all([inbound(str(n)) for n in range(6)]
                                     + [inbound("0"), inbound(None, status=st.ERROR,
                                                             error="102 unreadable")])
        first, second, third, fourth = (m.message_id for m in made[:4])
        routed = yield self.store.ingest(
            _routed(inbound("R")))
        made_first = yield self.store.record_decision(transformed(first, "a", "b"))
        ids = made_first.delivery_ids
        yield self.store.record_decision(decided(second, st.FILTERED))
        yield self.store.record_decision(decided(third, st.ERROR, error="mapping failed"))
        yield self.store.record_delivery(DeliveryUpdate(ids[0], first, st.SENT, 1, 0.0))
        yield self.store.record_delivery(DeliveryUpdate(ids[1], first, st.QUEUED, 1, 0.0))
        yield self.store.record_delivery(DeliveryUpdate(ids[1], first, st.ERROR, 2, 0.0,
                                                        last_error="refused"))
        yield self.store.record_delivery(DeliveryUpdate(routed.delivery_ids[0],
                                                        routed.message_id, st.SENT, 1, 0.0))
        retried = (yield self.store.record_decision(transformed(fourth, "c"))).delivery_ids
        yield self.store.record_delivery(DeliveryUpdate(retried[0], fourth, st.QUEUED, 1, 0.0))
        yield self.store.record_delivery(DeliveryUpdate(retried[0], fourth, st.QUEUED, 2, 0.0))
        return first, third

    @defer.inlineCallbacks
    def test_counts_equal_a_recount_after_every_kind_of_write(self):
        """If messages are ingested (new, duplicate, unreadable, routed at intake),
        processed, delivered, retried, parked and replayed, then the kept counts equal a
        recount by scan, and status reports them."""
        first, third = yield self.history()
        yield threads.deferToThread(replay_message, self.store.engine, first)
        yield threads.deferToThread(replay_message, self.store.engine, third, reprocess=True)
        diff = yield self.store.read(counters.differences)
        self.assertEqual(diff, {})
        kept = yield self.store.read(counters.totals)
        self.assertEqual(kept[("adt-in", "", st.DUPLICATE)], 1)
        self.assertEqual(kept[("adt-in", "", st.RECEIVED)], 3)  # 2 waiting, 1 reprocessed
        self.assertEqual(kept[("adt-in", "c", counters.RETRYING)], 1)
        self.assertNotIn(("adt-in", "b", counters.RETRYING), kept)  # retried, then parked
        self.assertEqual((kept[("adt-in", "a", st.SENT)], kept[("adt-in", "b", st.QUEUED)]),
                         (2, 1))  # a: the routed message and the first
        report = yield self.store.read(queries.status_counts)
        self.assertEqual((report["adt-in"]["received"], report["adt-in"]["duplicates"],
                          report["adt-in"]["sent"]), (9, 1, 2))
        self.assertEqual(report["adt-in"]["destinations"]["c"]["retrying"], 1)

    @defer.inlineCallbacks
    def test_status_reads_the_counts_not_the_rows(self):
        """If a count row says so, then status reports it although no row exists: status
        reads the counts table."""
        def add(conn):
            conn.execute(insert(counts).values(node="other", channel="lab", destination="",
                                               status=st.TRANSFORMED, count=10_000_000))
        yield threads.deferToThread(_in_transaction, self.store.engine, add)
        report = yield self.store.read(queries.status_counts)
        self.assertEqual(report["lab"]["received"], 10_000_000)

    @defer.inlineCallbacks
    def test_repair_replaces_wrong_counts_by_a_recount(self):
        """If the counts were damaged, then differences names the keys and repair makes them
        equal to a recount again."""
        yield self.history()
        yield threads.deferToThread(_in_transaction, self.store.engine, lambda conn: conn.execute(
            insert(counts).values(node="n", channel="adt-in", destination="", status=st.SENT,
                                  count=3)))
        diff = yield self.store.read(counters.differences)
        self.assertEqual(diff, {("adt-in", "", st.SENT): (3, 0)})
        yield threads.deferToThread(_in_transaction, self.store.engine, counters.repair)
        diff = yield self.store.read(counters.differences)
        self.assertEqual(diff, {})


def _routed(record):
    from dataclasses import replace
    return replace(record, decision=Decision(st.TRANSFORMED, deliveries=(NewDelivery("a"),)))


def _in_transaction(engine, work):
    with engine.begin() as conn:
        work(conn)


class SQLiteCountersTests(CountersTestsMixin, unittest.TestCase):
    backend = "sqlite"


class PostgreSQLCountersTests(CountersTestsMixin, unittest.TestCase):
    backend = "postgresql"


def test_rates_weigh_the_oldest_bucket_by_its_part_in_the_window(tmp_path):
    """If arrivals sit in 10-second buckets, then the rate over 60 s counts the buckets inside
    the window whole, the one it starts in by the part inside, and none before."""
    from engine.store import migrate
    from engine.store.schema import rate_buckets
    from engine.store.store import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'rates.db'}")
    migrate.ensure_current(engine)
    now = 1005.0  # window [945, 1005]: bucket 94 (940-950) half in, 95-100 whole, 93 out
    with engine.begin() as conn:
        conn.execute(insert(rate_buckets), [
            {"node": node, "channel": "c", "destination": "", "bucket": bucket, "count": n}
            for node, bucket, n in (("a", 93, 600), ("a", 94, 60), ("b", 94, 60),
                                    ("a", 95, 6), ("b", 100, 6))])
        found = counters.rates(conn, 60, now)
    engine.dispose()
    assert found == {("c", ""): pytest.approx((120 * 0.5 + 6 + 6) / 60)}


def test_rate_buckets_older_than_ten_minutes_are_deleted(tmp_path):
    """If a node writes arrivals now, then its rate buckets older than KEEP_SECONDS go, and
    recent ones (and other nodes') stay: the table stays as small as ten minutes."""
    import time

    from sqlalchemy import select

    from engine.store import migrate
    from engine.store.rawsql import RawStatements
    from engine.store.schema import rate_buckets
    from engine.store.store import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'prune.db'}")
    migrate.ensure_current(engine)
    now = time.time()
    old, recent = now - counters.KEEP_SECONDS - 60, now - 120
    bucket = lambda at: int(at // counters.BUCKET_SECONDS)  # noqa: E731
    with engine.begin() as conn:
        conn.execute(insert(rate_buckets), [
            {"node": node, "channel": "c", "destination": "", "bucket": bucket(at), "count": 1}
            for node, at in (("n", old), ("n", recent), ("other", old))])
        tally = counters.Tally()
        tally.happened("c", "", now)
        counters.Counters(RawStatements(conn.dialect), "n").add(conn, tally)
        kept = sorted(conn.execute(select(rate_buckets.c.node, rate_buckets.c.bucket)).all())
    engine.dispose()
    assert kept == sorted([("n", bucket(recent)), ("n", bucket(now)), ("other", bucket(old))])


class ConcurrentReplayTestsMixin(StoreCase):

    @defer.inlineCallbacks
    def test_two_reprocess_replays_at_once_move_the_counts_once(self):
        """If two operators reprocess the same message at the same moment (the second's
        replay runs whole between the first's read and its write), then the message is set
        back to RECEIVED once, the late one is refused, and the counts still equal a
        recount."""
        from engine.store import replay

        made = yield self.store.ingest(inbound("1"))
        yield self.store.record_decision(decided(made.message_id, st.FILTERED))
        engine, plain = self.store.engine, replay._reprocess

        def racing(conn, message_id, current, channel):
            replay._reprocess = plain  # the other operator's replay, whole, in between
            other = threading.Thread(target=replay_message, args=(engine, message_id),
                                     kwargs={"reprocess": True})
            other.start()
            other.join()
            return plain(conn, message_id, current, channel)

        replay._reprocess = racing
        self.addCleanup(setattr, replay, "_reprocess", plain)
        late = threads.deferToThread(replay_message, engine, made.message_id, reprocess=True)
        yield self.assertFailure(late, replay.ReplayRefused)
        diff = yield self.store.read(counters.differences)
        self.assertEqual(diff, {})


    @defer.inlineCallbacks
    def test_two_requeues_at_once_move_the_counts_once(self):
        """If two operators re-queue the same parked delivery at the same moment, then it
        is queued again once, the late replay is refused, and the counts equal a recount."""
        from engine.store import replay

        made = yield self.store.ingest(inbound("1"))
        ids = (yield self.store.record_decision(transformed(made.message_id, "a"))).delivery_ids
        yield self.store.record_delivery(DeliveryUpdate(ids[0], made.message_id, st.ERROR, 1,
                                                        0.0, last_error="refused"))
        engine, plain = self.store.engine, replay._requeue

        def racing(*args):
            replay._requeue = plain
            other = threading.Thread(target=replay_message, args=(engine, made.message_id))
            other.start()
            other.join()
            return plain(*args)

        replay._requeue = racing
        self.addCleanup(setattr, replay, "_requeue", plain)
        late = threads.deferToThread(replay_message, engine, made.message_id)
        yield self.assertFailure(late, replay.ReplayRefused)
        diff = yield self.store.read(counters.differences)
        self.assertEqual(diff, {})


class ConcurrentReplayTestsSQLite(ConcurrentReplayTestsMixin, unittest.TestCase):
    backend = "sqlite"


class ConcurrentReplayTestsPostgreSQL(ConcurrentReplayTestsMixin, unittest.TestCase):
    backend = "postgresql"
