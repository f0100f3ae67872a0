"""Hostile batches against the group commit's fast paths (one cursor per batch and the
pass-through binds on SQLite; the dedupe check left to the unique index on PostgreSQL,
engine.store.pgintake): every message is either stored and answered or refused, and
what is stored is the bytes received."""
from __future__ import annotations

import dataclasses

from sqlalchemy import select, text
from twisted.internet import defer
from twisted.trial import unittest

from engine import status as st
from engine.store.schema import messages
from tests.store.storecase import StoreCase, inbound
from tests.store.test_stored_keys import routed

SQLITE_POISON = """CREATE TRIGGER poison BEFORE INSERT ON messages
    WHEN NEW.control_id = 'POISON' BEGIN SELECT RAISE(ABORT, 'disk full, say'); END"""
PG_POISON = ["""CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN
    IF NEW.control_id = 'POISON' THEN RAISE EXCEPTION 'disk full, say'; END IF;
    RETURN NEW; END $$ LANGUAGE plpgsql""",
             """CREATE TRIGGER poison BEFORE INSERT ON messages
    FOR EACH ROW EXECUTE FUNCTION poison()"""]

ODD_RAW = b"MSH|^~\\&|A|B|C|D|2024||ADT^A01|ODD|P|2.5\r\x00\xff\xfe\x80PID|\x00\x00|\xc3(\r"


class HostileBatchTests(StoreCase):

    def poison(self):
        with self.store.engine.begin() as conn:
            for statement in (PG_POISON if self.backend == "postgresql" else [SQLITE_POISON]):
                conn.execute(text(statement))

    def stored(self):
        with self.store.engine.connect() as conn:
            return {row.control_id: row for row in conn.execute(
                select(messages.c.id, messages.c.control_id, messages.c.status,
                       messages.c.duplicate_of, messages.c.raw))}

    @defer.inlineCallbacks
    def test_a_batch_of_everything_at_once(self):
        """One group commit holding a copy of a stored message, two copies of one new
        message, raw bytes that are no text (NULs, invalid UTF-8), a message of 8 MB and an
        item a trigger refuses: the refused one fails alone, every other is stored as the
        look-up would store it, with its bytes as received."""
        first = yield self.store.ingest(routed("X"))
        self.poison()
        big = b"MSH|^~\\&|A|B|C|D|2024||ADT^A01|BIG|P|2.5\rOBX|1|ED|||" + bytes(range(256)) * 32768
        items = [routed("A"), routed("X"), routed("Y"), inbound("POISON"), routed("Y"),
                 dataclasses.replace(inbound("ODD"), raw=ODD_RAW),
                 dataclasses.replace(inbound("BIG"), raw=big), routed("Z")]
        store = self.queued_store()
        ds = [store.ingest(item) for item in items]
        store.start()
        outcomes = yield defer.DeferredList(ds, consumeErrors=True)
        self.assertEqual([ok for ok, _ in outcomes], [True, True, True, False, True, True,
                                                      True, True])
        self.assertIn("disk full", str(outcomes[3][1].value))
        results = {items[i].control_id + str(i): r for i, (ok, r) in enumerate(outcomes) if ok}
        self.assertEqual((results["X1"].status, results["X1"].duplicate_of),
                         (st.DUPLICATE, first.message_id))
        self.assertEqual((results["Y4"].status, results["Y4"].duplicate_of),
                         (st.DUPLICATE, results["Y2"].message_id))
        ids = [r.message_id for r in results.values()]
        self.assertEqual(len(set(ids)), len(ids))
        rows = self.stored()
        self.assertNotIn("POISON", rows)
        self.assertEqual(bytes(rows["ODD"].raw), ODD_RAW)
        self.assertEqual(bytes(rows["BIG"].raw), big)
        self.assertEqual(rows["Z"].status, st.TRANSFORMED)
        later = yield store.ingest(routed("later"))  # the writer's connection still serves
        self.assertEqual(later.status, st.TRANSFORMED)

    @defer.inlineCallbacks
    def test_resent_messages_batch_after_batch(self):
        """A sender resending what is stored, batch after batch, between new messages (on
        PostgreSQL the unique index finds each copy in the batch's statement): every
        copy is stored DUPLICATE and every new message as decided, whatever statements the
        driver prepared on the writer's connection meanwhile."""
        first = yield self.store.ingest(routed("X"))
        for n in range(12):
            items = [routed(f"N{n}"), routed("X"), routed(f"M{n}")]
            results = yield defer.gatherResults([self.store.ingest(i) for i in items],
                                                consumeErrors=True)
            self.assertEqual([r.status for r in results],
                             [st.TRANSFORMED, st.DUPLICATE, st.TRANSFORMED])
            self.assertEqual(results[1].duplicate_of, first.message_id)

    @defer.inlineCallbacks
    def test_a_message_id_taken_already_is_not_handed_out_again(self):
        """If the next id of the block is already a message's (an id block restored behind
        the rows, a row written by hand), then the batch given it fails, and its message
        and those after it are stored under later ids: the writer does not hand the taken
        id out again and again."""
        yield self.store.ingest(routed("warm-up"))  # the block is reserved
        taken = self.store._ingest._ids._next
        with self.store.engine.begin() as conn:
            conn.execute(messages.insert().values(
                id=taken, channel="adt-in", received_at=1.0, node="elsewhere",
                status=st.RECEIVED, raw=b"MSH|"))
        results = []
        for control_id in ("A", "B", "C"):
            results.append((yield self.store.ingest(routed(control_id))))
        self.assertEqual([r.status for r in results], [st.TRANSFORMED] * 3)
        ids = [r.message_id for r in results]
        self.assertEqual(ids, sorted(set(ids)))
        self.assertLess(taken, ids[0])
        self.assertEqual(self.stored()["A"].id, ids[0])


    @defer.inlineCallbacks
    def test_two_nodes_storing_the_same_messages_at_once(self):
        """Two nodes on one database take the same messages at the same time, in opposite
        orders (a sender failing over while its first connection still delivers): each
        message is stored once, every other copy DUPLICATE naming it, none refused."""
        other = self.queued_store()
        other.start()
        names = [f"K{n}" for n in range(60)]
        mine = [self.store.ingest(routed(c)) for c in names]
        theirs = [other.ingest(routed(c)) for c in reversed(names)]
        results = yield defer.gatherResults(mine + theirs, consumeErrors=True)
        firsts, copies = {}, []
        for name, result in zip(names + names[::-1], results):
            if result.status == st.DUPLICATE:
                copies.append((name, result.duplicate_of))
            else:
                self.assertNotIn(name, firsts)
                firsts[name] = result.message_id
        self.assertEqual(sorted(firsts), sorted(names))
        self.assertEqual(sorted(copies), sorted((n, firsts[n]) for n in names))


class HostileBatchTestsSQLite(HostileBatchTests, unittest.TestCase):
    backend = "sqlite"


class HostileBatchTestsPostgreSQL(HostileBatchTests, unittest.TestCase):
    backend = "postgresql"
