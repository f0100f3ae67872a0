"""Tests for engine.delivery.lane.Lane under operation (with task.Clock, FakeStore and
FakeDestination): what a reload needs of a lane, outcomes the store cannot record, leases,
and destinations that send batches."""
from __future__ import annotations

from twisted.internet import defer

from engine import status as st
from engine.delivery.lane import Lane, LaneKey, LaneState
from tests.fakes import SUCCESS, refused
from tests.delivery.lane_support import POLL, Harness, batch_harness


# -- what a reload needs of a lane ----------------------------------------------------------

def test_settled_waits_for_the_outcomes_to_be_committed():
    """If a lane is stopped while its outcome commits are under way, then settled() fires
    only once they are committed: another lane may then read the queue without resending."""
    harness = Harness(hold_commits=True)
    first, second = harness.queue(2)
    harness.start()
    stopped = harness.lane.stop()
    assert stopped.called and harness.destination.delivery_ids == [first, second]
    settled = harness.lane.settled()
    assert not settled.called
    harness.store.commit()
    assert settled.called
    assert [harness.status(first), harness.status(second)] == [(st.SENT, 1), (st.SENT, 1)]
    assert harness.lane.settled().called


def test_retry_now_skips_the_stored_wait_once(harness):
    """If a lane rebuilt by a reload finds a delivery waiting for its next attempt, then
    retry_now() has it sent at once; a failure then waits the lane's own delay again."""
    now = harness.clock.seconds()
    (delivery_id,) = harness.queue(1, attempts=1, next_attempt_at=now + 300)
    harness.destination.script(refused())
    harness.lane.retry_now()
    harness.start()
    assert harness.destination.delivery_ids == [delivery_id]
    harness.clock.advance(harness.retry.delay_for(2) - 0.1)
    assert harness.destination.delivery_ids == [delivery_id]
    harness.clock.advance(0.1)
    assert harness.destination.delivery_ids == [delivery_id, delivery_id]
    assert harness.status(delivery_id) == (st.SENT, 3)


def test_without_retry_now_the_stored_wait_holds(harness):
    now = harness.clock.seconds()
    harness.queue(1, attempts=3, next_attempt_at=now + 300)
    harness.start()
    harness.clock.advance(299)
    assert harness.destination.delivery_ids == []
    harness.clock.advance(1)
    assert len(harness.destination.delivery_ids) == 1


# -- outcomes that cannot be recorded (the store is down, the disk full) --------------------

class StoreDown(Exception):
    """What the writer answers while the database cannot be written."""


def test_unrecordable_outcome_holds_the_lane_until_recorded():
    """If recording a delivery's SENT fails, then the lane enters RECORDING: it sends
    nothing more, reads nothing, keeps the outcome in memory and retries the write with
    backoff; once the store answers again the outcome is committed and the lane goes on with
    the next delivery. No delivery is sent twice, and order holds."""
    h = Harness()
    ids = h.queue(3)
    h.store.failing = StoreDown("disk full")
    first = defer.Deferred()
    h.destination.script(first)
    h.start()
    first.callback(None)
    assert h.lane.state is LaneState.RECORDING
    assert h.destination.delivery_ids == ids[:1]
    reads = h.lane.reads
    for _ in range(20):  # 20 s of outage: retries back off, nothing is sent or read
        h.clock.advance(1.0)
    assert h.destination.delivery_ids == ids[:1]
    assert h.lane.reads == reads
    retried = [u.delivery_id for u in h.store.updates]
    assert set(retried) == {ids[0]} and 3 < len(retried) < 20
    h.store.failing = None
    h.clock.advance(5.0)
    assert h.destination.delivery_ids == ids
    assert [h.status(i) for i in ids] == [(st.SENT, 1)] * 3
    h.clock.advance(POLL * 3)
    assert h.destination.delivery_ids == ids


def test_outcome_failing_while_the_next_send_is_under_way():
    """If the write of delivery 1's SENT fails while delivery 2 is being sent, then delivery 2
    finishes, both outcomes are held and retried together, and delivery 3 waits for them."""
    h = Harness(hold_commits=True)
    ids = h.queue(3)
    second = defer.Deferred()
    h.destination.script(SUCCESS, second)
    h.start()
    assert h.destination.delivery_ids == ids[:2]
    h.store.failing = StoreDown("connection refused")
    pending, h.store.pending = h.store.pending, []
    for d, _ in pending:
        d.errback(StoreDown("connection refused"))
    second.callback(None)
    assert h.lane.state is LaneState.RECORDING
    assert h.destination.delivery_ids == ids[:2]
    h.store.failing = None
    h.clock.advance(1.0)
    h.store.commit()
    assert [h.status(i) for i in ids[:2]] == [(st.SENT, 1)] * 2
    h.store.commit()
    h.clock.advance(0)
    assert h.destination.delivery_ids == ids


def test_retry_outcome_unrecordable_keeps_order():
    """If a failed attempt's QUEUED cannot be recorded, then the lane holds it too and, once
    recorded, retries that delivery before any later one."""
    h = Harness()
    first, second = h.queue(2)
    h.store.failing = StoreDown("down")
    h.destination.script(refused())
    h.start()
    assert h.lane.state is LaneState.RECORDING
    h.clock.advance(3.0)
    assert h.destination.delivery_ids == [first]
    h.store.failing = None
    h.clock.advance(10.0)
    assert h.destination.delivery_ids == [first, first, second]
    assert h.status(first) == (st.SENT, 2)


def test_stop_while_recording_gives_the_outcome_up_once():
    """If a lane is stopped while it holds an unrecorded outcome, then it tries the write once
    more and settles, without a timer left behind (the delivery is then sent again by the
    next owner: the crash case)."""
    h = Harness()
    (delivery_id,) = h.queue(1)
    h.store.failing = StoreDown("down")
    h.start()
    assert h.lane.state is LaneState.RECORDING
    assert h.lane.stop().called
    assert h.lane.settled().called
    assert h.clock.getDelayedCalls() == []
    assert h.status(delivery_id) == (st.QUEUED, 0)


# -- leases -----------------------------------------------------------------------------------

def test_unleased_lane_neither_reads_nor_sends():
    """If a lane has no lease, then it reads and sends nothing, even when woken or polled."""
    h = Harness()
    h.queue(2)
    h.lane.wake()
    h.clock.advance(POLL * 5)
    assert h.lane.state is LaneState.UNLEASED
    assert (h.lane.reads, h.destination.sent) == (0, [])


def test_lease_running_out_stops_sending_until_renewed():
    """If the lease's deadline passes (renewals failed), then the lane starts no send and
    drops what it had read; renewed, it reads its queue again and goes on in order."""
    h = Harness()
    ids = h.queue(3)
    first = defer.Deferred()
    h.destination.script(first)
    h.start(lease=10.0)
    h.clock.advance(11.0)
    first.callback(None)  # the send under way finishes and is recorded
    assert h.lane.state is LaneState.UNLEASED
    assert h.destination.delivery_ids == ids[:1] and h.status(ids[0]) == (st.SENT, 1)
    h.start(lease=10.0)
    assert h.destination.delivery_ids == ids


def test_lease_lost_to_another_process():
    """If the service reports the lease taken by another process, then an idle or waiting
    lane stops at once and sends nothing more, even when its retry time comes."""
    h = Harness()
    (delivery_id,) = h.queue(1)
    h.destination.script(refused())
    h.start()
    assert h.lane.state is LaneState.WAITING
    h.lane.unleased()
    assert h.lane.state is LaneState.UNLEASED
    h.clock.advance(60)
    assert h.destination.delivery_ids == [delivery_id]


def test_states_in_order_of_one_delivery():
    """If one delivery goes through a lane whose store and peer answer later, then the lane
    passes through READING, SENDING, SETTLING, then IDLE, and stops in STOPPED."""
    h = Harness(hold_commits=True)
    h.queue(1)
    answer = defer.Deferred()
    h.destination.script(answer)
    seen = []
    h.start()
    seen.append(h.lane.state)
    answer.callback(None)
    seen.append(h.lane.state)
    h.store.commit()
    h.clock.advance(0)
    seen.append(h.lane.state)
    h.lane.stop()
    seen.append(h.lane.state)
    assert seen == [LaneState.SENDING, LaneState.SETTLING, LaneState.IDLE, LaneState.STOPPED]


# -- destinations that send batches ----------------------------------------------------------

def test_batch_destination_gets_the_due_head_of_the_lane_in_batches():
    """If the destination sends batches, then the lane hands it the deliveries at the head of
    its queue, in order, up to send_batch at a time, and records each SENT."""
    h = batch_harness()
    ids = h.queue(6)
    h.start()
    assert h.destination.batches == [ids[:4], ids[4:]]
    assert [h.status(i) for i in ids] == [(st.SENT, 1)] * 6
    assert h.store.delivery_writes == 2  # one write of outcomes per batch sent


def test_a_failure_in_a_batch_holds_what_follows_it():
    """If one payload of a batch fails retryably, then those before it are SENT, it is
    retried after the backoff, and those after it (not attempted) wait behind it, in order."""
    h = batch_harness()
    ids = h.queue(4)
    h.destination.script(SUCCESS, refused())
    h.start()
    assert h.destination.batches == [ids]
    assert h.destination.delivery_ids == ids[:2]
    assert [h.status(i) for i in ids] == [(st.SENT, 1), (st.QUEUED, 1), (st.QUEUED, 0),
                                          (st.QUEUED, 0)]
    h.clock.advance(1.99)
    assert h.destination.batches == [ids]
    h.clock.advance(0.01)
    assert h.destination.batches == [ids, ids[1:]]
    assert [h.status(i)[0] for i in ids] == [st.SENT] * 4


def test_a_delivery_waiting_for_its_retry_ends_the_batch():
    """If a delivery behind the head waits for its next attempt, then the batch stops before
    it, and it is sent when its time comes."""
    h = batch_harness()
    first = h.queue(1)
    later = h.queue(1, attempts=1, next_attempt_at=h.clock.seconds() + 5)
    h.start()
    assert h.destination.delivery_ids == first  # a batch of one: a plain send
    h.clock.advance(4.9)
    assert h.destination.delivery_ids == first
    h.clock.advance(0.1)
    assert h.destination.delivery_ids == first + later


def test_one_send_may_overlap_the_previous_commit_not_two():
    """If outcomes take a while to commit, then the lane sends the next delivery while the
    previous outcome commits, but waits (SETTLING) before the one after: at most one send
    follows an outcome that may yet fail to be recorded."""
    h = Harness(hold_commits=True)
    ids = h.queue(3)
    h.start()
    assert h.destination.delivery_ids == ids[:2]
    assert h.lane.state is LaneState.SETTLING
    h.store.commit()
    assert h.destination.delivery_ids == ids


def test_a_lane_holds_no_more_payload_bytes_than_its_budget():
    """If the queue holds more payload bytes than fetch_bytes, then each read brings only
    what fits (never more than the budget, one delivery at least), the lane reads again for
    the rest, and every delivery is sent, in order."""
    h = Harness()
    ids = h.queue(7)
    size = len(h.store.messages[1].raw)
    h.lane = Lane(LaneKey("adt-in", "archive", 0), h.destination, h.retry, h.store, h.clock,
                  poll_interval=POLL, fetch_batch=100, fetch_bytes=2 * size + 1)
    held = []
    read = h.store.read

    def spy(query, *args):
        d = read(query, *args)
        d.addCallback(lambda due: (held.append(sum(len(x.raw) for x in due)), due)[1])
        return d

    h.store.read = spy
    h.start()
    assert h.destination.delivery_ids == ids
    assert held[:4] == [2 * size, 2 * size, 2 * size, size]
    assert max(held) <= 2 * size + 1
