"""Tests for the duplicate check of a batch's messages: the lean way (the common batch) the
unique index refuses a copy of a stored message and the batch goes again the full way, looked
up first on SQLite, found in the batch's own statement on PostgreSQL (engine.store.pgintake). Both
store a copy of a stored message, or of a message of the same batch, alike: DUPLICATE naming
the first, its journal and counts as such, nothing of its decision; on PostgreSQL without a
failed statement, hence without a new connection."""
from __future__ import annotations

import dataclasses

import psycopg
from sqlalchemy import event, select
from twisted.internet import defer, reactor, task
from twisted.trial import unittest

from engine import status as st
from engine.store import consent, counters, ops
from engine.store.records import ConsentChange, Decision, NewDelivery
from engine.store.schema import deliveries, id_blocks, messages
from tests.store.storecase import StoreCase, calls_of, inbound


def routed(control_id: str):
    """An inbound message decided before its commit: TRANSFORMED, one delivery."""
    return dataclasses.replace(inbound(control_id), decision=Decision(
        st.TRANSFORMED, deliveries=(NewDelivery("out"),)))


PATIENTS = "1.2.250.1.71.4.2.7"  # a patient id domain (OID)


def opposing(control_id: str, patient: str):
    """A routed message whose patient opposes the shared record."""
    return dataclasses.replace(routed(control_id), decision=Decision(
        st.TRANSFORMED, deliveries=(NewDelivery("out"),),
        consent=(ConsentChange(((PATIENTS, patient),), consent.SHARED_RECORD, True),)))


class StoredKeyTests(StoreCase):

    def rows(self, store) -> tuple[list, list]:
        with store.engine.connect() as conn:
            stored = conn.execute(select(messages.c.id, messages.c.control_id,
                                         messages.c.status, messages.c.duplicate_of)
                                  .order_by(messages.c.id)).all()
            queued = conn.execute(select(deliveries.c.id, deliveries.c.message_id)
                                  .order_by(deliveries.c.id)).all()
        return stored, queued

    @defer.inlineCallbacks
    def test_copy_of_a_stored_message_in_a_batch(self):
        """If a batch holds a copy of a message stored earlier, between new ones, then it is
        stored DUPLICATE naming the first, the others as decided, all in one group commit
        with no error logged, with message ids from the first of the block on, none skipped,
        and the next batch goes on right after them; the copy has no delivery, the others'
        follow the batch's order (on PostgreSQL the copy's unused one is a gap)."""
        first = yield self.store.ingest(routed("X"))
        store = self.queued_store()  # ids from a block of its own, starting here:
        with store.engine.connect() as conn:
            starts = dict(conn.execute(select(id_blocks.c.name, id_blocks.c.next_value)).all())
        ds = [store.ingest(routed(c)) for c in ("A", "X", "B")]
        with self.writer_log() as problems:
            store.start()
            results = yield defer.gatherResults(ds)
        self.assertEqual((store.writer.batches, problems), (1, []))
        a, copy, b = results
        self.assertEqual((a.message_id, a.delivery_ids[0]),
                         (starts["messages"], starts["deliveries"]))
        later = yield store.ingest(routed("C"))
        self.assertEqual([r.message_id - a.message_id for r in (copy, b, later)], [1, 2, 3])
        self.assertEqual([r.status for r in results + [later]],
                         [st.TRANSFORMED, st.DUPLICATE, st.TRANSFORMED, st.TRANSFORMED])
        self.assertEqual(copy.delivery_ids, ())
        stored, queued = self.rows(store)
        self.assertEqual(stored[1:], [(a.message_id, "A", st.TRANSFORMED, None),
                                      (copy.message_id, "X", st.DUPLICATE, first.message_id),
                                      (b.message_id, "B", st.TRANSFORMED, None),
                                      (later.message_id, "C", st.TRANSFORMED, None)])
        self.assertEqual(queued[1:], [(a.delivery_ids[0], a.message_id),
                                      (b.delivery_ids[0], b.message_id),
                                      (later.delivery_ids[0], later.message_id)])
        self.assertEqual([d for d, _ in queued], sorted(d for d, _ in queued))

    @defer.inlineCallbacks
    def test_copies_within_a_batch_and_of_stored_messages(self):
        """If one batch holds a stored message twice and a new one three times, then both
        copies of the stored one name it, the later copies of the new one name its first;
        each copy's journal is its DUPLICATE line alone, only the first of the new one is
        queued, and the kept counts equal a recount."""
        stored_first = yield self.store.ingest(routed("X"))
        store = self.queued_store()
        ds = [store.ingest(routed(c)) for c in ("X", "Y", "X", "Y", "Y")]
        store.start()
        x1, y1, x2, y2, y3 = yield defer.gatherResults(ds)
        self.assertEqual(store.writer.batches, 1)
        self.assertEqual([(r.status, r.duplicate_of, r.delivery_ids) for r in (x1, x2, y2, y3)],
                         [(st.DUPLICATE, stored_first.message_id, ())] * 2
                         + [(st.DUPLICATE, y1.message_id, ())] * 2)
        self.assertEqual((y1.status, len(y1.delivery_ids)), (st.TRANSFORMED, 1))
        stored, queued = self.rows(store)
        self.assertEqual([(i, c, s, d) for i, c, s, d in stored if i != stored_first.message_id],
                         [(x1.message_id, "X", st.DUPLICATE, stored_first.message_id),
                          (y1.message_id, "Y", st.TRANSFORMED, None),
                          (x2.message_id, "X", st.DUPLICATE, stored_first.message_id),
                          (y2.message_id, "Y", st.DUPLICATE, y1.message_id),
                          (y3.message_id, "Y", st.DUPLICATE, y1.message_id)])
        self.assertEqual(queued[1:], [(y1.delivery_ids[0], y1.message_id)])
        for copy in (x1, x2, y2, y3):
            detail = yield self.detail(copy.message_id)
            self.assertEqual([(j["status"], j["delivery_id"]) for j in detail["journal"]],
                             [(st.DUPLICATE, None)])
        with store.engine.connect() as conn:
            self.assertEqual(counters.differences(conn), {})
            self.assertEqual(counters.totals(conn)[("adt-in", counters.MESSAGE, st.DUPLICATE)],
                             4)

    @defer.inlineCallbacks
    def test_a_copy_changes_no_consent(self):
        """If a copy of a stored message and a new message in one batch each carry a
        patient's opposition, then the new one's is recorded and the copy's is not (its
        decision is not its own)."""
        yield self.store.ingest(routed("X"))
        store = self.queued_store()
        ds = [store.ingest(opposing(c, patient)) for c, patient in (("X", "1"), ("Y", "2"))]
        store.start()
        results = yield defer.gatherResults(ds)
        self.assertEqual([r.status for r in results], [st.DUPLICATE, st.TRANSFORMED])
        with store.engine.connect() as conn:
            kept = consent.history(conn, [(PATIENTS, "1"), (PATIENTS, "2")])
        self.assertEqual([(o.value, o.cause) for o in kept],
                         [("2", f"message:{results[1].message_id}")])

    @defer.inlineCallbacks
    def test_resent_messages_cost_no_new_connection(self):
        """If batch after batch holds a copy of a stored message, then the writer keeps its
        connection: no batch fails, none is written twice, no connection is opened."""
        first = yield self.store.ingest(routed("X"))
        opened = []
        event.listen(self.store.engine, "connect", lambda *_: opened.append(1))
        with self.writer_log() as problems:
            for n in range(20):
                items = [routed(f"N{n}"), routed("X"), routed(f"M{n}")]
                results = yield defer.gatherResults([self.store.ingest(i) for i in items])
                self.assertEqual([(r.status, r.duplicate_of) for r in results],
                                 [(st.TRANSFORMED, None), (st.DUPLICATE, first.message_id),
                                  (st.TRANSFORMED, None)])
        self.assertEqual((opened, problems), ([], []))

    @defer.inlineCallbacks
    def test_two_stores_resending_the_same_messages(self):
        """If two stores on one database take the same messages at once, each several times,
        then each message is stored once, every copy names it, and the counts equal a
        recount."""
        other = self.queued_store()
        other.start()
        names = [f"K{n % 40}" for n in range(120)]
        ds = [self.store.ingest(routed(c)) for c in names]
        ds += [other.ingest(routed(c)) for c in reversed(names)]
        results = yield defer.gatherResults(ds)
        firsts = {}
        for name, result in zip(names + names[::-1], results):
            if result.status != st.DUPLICATE:
                self.assertNotIn(name, firsts)
                firsts[name] = result.message_id
        self.assertEqual(len(firsts), 40)
        for name, result in zip(names + names[::-1], results):
            if result.status == st.DUPLICATE:
                self.assertEqual(result.duplicate_of, firsts[name])
        stored, queued = self.rows(self.store)
        self.assertEqual(len(stored), 240)
        self.assertEqual(sorted(m for _, m in queued), sorted(firsts.values()))
        with self.store.engine.connect() as conn:
            self.assertEqual(counters.differences(conn), {})

    @defer.inlineCallbacks
    def test_copy_and_poisoned_item_in_one_batch(self):
        """If a batch holds a copy of a stored message and an item the database refuses
        (raw is NULL), then the writer goes one by one as before: the refused item fails
        alone, the copy is stored DUPLICATE, the new message as decided."""
        first = yield self.store.ingest(routed("X"))
        store = self.queued_store()
        poisoned = dataclasses.replace(routed("P"), raw=None)
        ds = [store.ingest(item) for item in (routed("X"), poisoned, routed("N"))]
        with self.writer_log() as problems:
            store.start()
            outcomes = yield defer.DeferredList(ds, consumeErrors=True)
        self.assertEqual([ok for ok, _ in outcomes], [True, False, True])
        self.assertIn("retrying them one by one", problems[0].getMessage())
        copy, new = outcomes[0][1], outcomes[2][1]
        self.assertEqual((copy.status, copy.duplicate_of, new.status),
                         (st.DUPLICATE, first.message_id, st.TRANSFORMED))

    @defer.inlineCallbacks
    def test_batches_without_a_copy_go_the_lean_way(self):
        """If no batch holds a copy of a stored message (the common case), then none is
        written the full way (its keys looked up on SQLite, the statement that records
        copies on PostgreSQL): each goes the lean way, and the counts equal a recount."""
        full = self.written_the_full_way(self.store)
        for n in range(10):
            items = [routed(f"A{n}"), routed(f"B{n}"), routed(f"B{n}")]  # a copy within
            results = yield defer.gatherResults([self.store.ingest(i) for i in items])
            self.assertEqual([r.status for r in results],
                             [st.TRANSFORMED, st.TRANSFORMED, st.DUPLICATE])
        self.assertEqual(full, [])
        with self.store.engine.connect() as conn:
            self.assertEqual(counters.differences(conn), {})

    @defer.inlineCallbacks
    def test_a_copy_sends_its_batch_again_the_full_way(self):
        """If a batch holds a copy of a stored message, then its lean statement is refused
        and the batch written again the full way, on the same connection, with the same
        ids; so are the next FULL_BATCHES batches, then the lean way again."""
        self.patch(ops, "FULL_BATCHES", 2)
        first = yield self.store.ingest(routed("X"))
        full = self.written_the_full_way(self.store)
        opened = []
        event.listen(self.store.engine, "connect", lambda *_: opened.append(1))
        with self.writer_log() as problems:
            copy = yield self.store.ingest(routed("X"))
            ways = [len(full)]
            for n in range(4):
                yield self.store.ingest(routed(f"N{n}"))
                ways.append(len(full))
        self.assertEqual((copy.status, copy.duplicate_of), (st.DUPLICATE, first.message_id))
        self.assertEqual(copy.message_id, first.message_id + 1)  # the id it had at first
        self.assertEqual(ways, [1, 2, 3, 3, 3])
        self.assertEqual((opened, problems), ([], []))
        with self.store.engine.connect() as conn:
            self.assertEqual(counters.differences(conn), {})

    def asked_again(self, store) -> list:
        """A list that gets the answer of each call of ``store``'s ingest op's ``again``
        (whether a failed batch goes again, the full way)."""
        op, answers = store._ingest, []
        again = op.again

        def answered(error):
            answers.append(again(error))
            return answers[-1]

        op.again = answered
        return answers

    def written_the_full_way(self, store) -> list:
        """A list that gets an entry for each batch ``store`` writes the full way."""
        raise NotImplementedError


class StoredKeyTestsSQLite(StoredKeyTests, unittest.TestCase):

    backend = "sqlite"

    def written_the_full_way(self, store) -> list:
        """A list that gets an entry for each batch ``store`` writes the full way: its dedupe
        keys looked up before the inserts."""
        return calls_of(store._ingest, "_existing_keys")


class StoredKeyTestsPostgreSQL(StoredKeyTests, unittest.TestCase):
    backend = "postgresql"

    @defer.inlineCallbacks
    def test_copy_of_a_message_another_writer_is_committing(self):
        """If another writer has inserted a message and not committed yet when a copy of it
        comes, then the copy's batch waits for it and, once it has committed, stores the
        copy DUPLICATE naming it (a message the batch's statement could not see)."""
        yield self.store.ingest(routed("warm-up"))
        full = self.written_the_full_way(self.store)
        asked = self.asked_again(self.store)
        key = ops.dedupe_key(routed("K"))
        other = psycopg.connect(self.url.replace("+psycopg", ""))
        self.addCleanup(other.close)
        other.execute("INSERT INTO messages (id, channel, received_at, node, status, "
                      "dedupe_key, raw) VALUES (%s, 'adt-in', 1, 'other', %s, %s, 'MSH|')",
                      (OTHER_ID, st.TRANSFORMED, key))
        d = self.store.ingest(routed("K"))
        yield task.deferLater(reactor, 0.5, lambda: None)
        self.assertFalse(d.called)  # the insert waits for the other writer
        other.commit()
        copy = yield d
        self.assertEqual((copy.status, copy.duplicate_of), (st.DUPLICATE, OTHER_ID))
        stored, queued = self.rows(self.store)
        self.assertIn((copy.message_id, "K", st.DUPLICATE, OTHER_ID), stored)
        self.assertEqual(len(queued), 1)  # the warm-up's
        # refused the lean way, then written the full way
        self.assertEqual((asked, len(full)), ([True], 1))

    def written_the_full_way(self, store) -> list:
        """A list that gets an entry for each batch ``store`` writes with the statement that
        records copies (engine.store.pgintake)."""
        return calls_of(store._ingest._intake, "execute")

    def test_batch_writes_without_the_look_up(self):
        """If the store is PostgreSQL, then its ingest writes with the intake statement (its
        full way; SQLite's looks the keys up, see the class above)."""
        self.assertIsNotNone(self.store._ingest._intake)


OTHER_ID = 10**12  # an id no block of the tests reaches
