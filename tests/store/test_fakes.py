"""tests.fakes.FakeStore gives the same answers as a real Store for what the engine asks it."""
from __future__ import annotations

from twisted.internet import defer
from twisted.trial import unittest

from engine import status as st
from engine.store import queries
from engine.store.records import DeliveryUpdate
from tests.fakes import FakeStore
from tests.store.storecase import StoreCase, inbound, transformed, decided


class FakeStoreContract(StoreCase):
    """The same story told to a real Store and to a FakeStore; the reads must agree."""

    @defer.inlineCallbacks
    def tell(self, store, message_ids):
        """Process and deliver the messages the same way on ``store``; ids mapped to 1..n."""
        first, second, third, fourth = message_ids
        a = yield store.record_decision(transformed(first, "archive", ("dpi", 1)))
        b = yield store.record_decision(transformed(second, "archive", ("dpi", 1)))
        again = yield store.record_decision(transformed(second, "archive"))
        yield store.record_decision(decided(third, st.FILTERED))
        yield store.record_delivery(DeliveryUpdate(a.delivery_ids[0], first, st.SENT, 1, 5.0))
        yield store.record_delivery(DeliveryUpdate(b.delivery_ids[1], second, st.QUEUED, 1, 7.0, "down"))
        illegal = store.record_decision(decided(fourth, st.DUPLICATE))
        yield self.assertFailure(illegal, st.IllegalTransition)
        result = {"again": again}
        for lane in (0, 1):
            for destination in ("archive", "dpi"):
                due = yield store.read(queries.fetch_due, "adt-in", destination, lane, 10)
                result[destination, lane] = [
                    (d.attempts, d.next_attempt_at if d.attempts else None, bytes(d.raw),
                     d.control_id, d.message_type, d.charset) for d in due]
        received = yield store.read(queries.received_messages, 0, 10)
        result["received"] = [(r.channel, bytes(r.raw), r.charset, r.control_id,
                               r.message_type) for r in received]
        return result

    @defer.inlineCallbacks
    def test_fake_answers_like_the_store(self):
        """If the same messages are processed and delivered on both, then fetch_due,
        received_messages and the write results agree."""
        records = [inbound(str(n)) for n in range(4)]
        ingested = yield self.ingest_all(records)
        real_ids = [r.message_id for r in ingested]
        fake = FakeStore()
        fake_ids = [fake.add_message(r.channel, r.raw, charset=r.charset,
                                     control_id=r.control_id, message_type=r.message_type)
                    for r in records]
        real = yield self.tell(self.store, real_ids)
        faked = yield self.tell(fake, fake_ids)
        self.assertEqual(faked, real)
        self.assertEqual(len(real["received"]), 1)
        self.assertEqual(len(real["dpi", 1]), 2)


class FakeStoreContractSQLite(FakeStoreContract, unittest.TestCase):
    backend = "sqlite"


class FakeStoreContractPostgreSQL(FakeStoreContract, unittest.TestCase):
    backend = "postgresql"
