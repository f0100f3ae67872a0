"""Tests for engine.delivery.lane.Lane's state machine (with task.Clock, FakeStore and
FakeDestination), the RetryPolicy it follows, and the fakes it runs against."""
from __future__ import annotations

import inspect
import re
from dataclasses import replace
from pathlib import Path

import pytest
from twisted.internet import defer

from engine.delivery import lane as delivery
from engine import status as st
from engine.config.settings import RetryPolicy
from engine.delivery.cadence import BUSY_READ_GAP
from engine.delivery.lane import GATHER, READ_GAP, LaneState
from engine.interfaces import Destination
from engine.store.store import Store
from tests.fakes import SUCCESS, FakeDestination, FakeStore, refused, rejected
from tests.delivery.lane_support import POLL, Harness


# -- RetryPolicy ---------------------------------------------------------------------------

def test_retry_delays_grow_and_cap():
    """If attempts keep failing, then the delay multiplies from the initial one up to the cap."""
    policy = RetryPolicy(max_attempts=10, initial_delay=1.0, multiplier=2.0, max_delay=30.0)
    assert [policy.delay_for(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


def test_retry_delay_huge_attempt_capped():
    """If the attempt number is huge, then the delay is the cap, not an overflow."""
    assert RetryPolicy(max_delay=300.0).delay_for(5000) == 300.0


def test_retry_attempts_counted_from_one():
    """If asked for attempt 0, then delay_for refuses."""
    with pytest.raises(ValueError):
        RetryPolicy().delay_for(0)


# -- the fakes stand for the real interfaces ------------------------------------------------

def _parameters(function) -> list[tuple[str, object]]:
    return [(p.name, p.kind) for p in inspect.signature(function).parameters.values()]


def test_fake_destination_matches_destination_protocol():
    """If the Destination protocol changes, then this fails: FakeDestination has its
    attributes and methods with the same parameters."""
    fake = FakeDestination()
    assert isinstance(fake, Destination)
    for name in ("start", "stop", "send"):
        assert _parameters(getattr(FakeDestination, name)) == _parameters(
            getattr(Destination, name)), name


def _store_methods_used_by(module) -> set[str]:
    source = Path(module.__file__).read_text()
    return set(re.findall(r"self\._store\.(\w+)", source))


def test_fake_store_has_what_lanes_use():
    """If Lane uses a Store method, then the real Store has it and FakeStore has it with the
    same parameters."""
    used = _store_methods_used_by(delivery)
    assert used == {"read", "record_deliveries"}
    for name in used:
        assert _parameters(getattr(FakeStore, name)) == _parameters(getattr(Store, name))


# -- Lane ----------------------------------------------------------------------------------

def test_sends_in_order_one_at_a_time(harness):
    """If several deliveries are queued, then they are sent in id order, each only after the
    previous one answered, and each is recorded SENT with the peer's response."""
    ids = harness.queue(5)
    first = defer.Deferred()
    harness.destination.script(first)
    harness.start()
    assert harness.destination.delivery_ids == ids[:1]
    first.callback(None)
    assert harness.destination.delivery_ids == ids
    assert [harness.status(i) for i in ids] == [(st.SENT, 1)] * 5
    assert [u.response for u in harness.store.updates] == [None] + [
        f"ACK C{n}".encode() for n in range(2, 6)]
    assert harness.lane.sent == 5


def test_delivery_context(harness):
    """If a delivery is sent, then the destination gets its payload and a context naming the
    channel, message, delivery, control id, type, attempt number and charset."""
    (delivery_id,) = harness.queue(1)
    harness.start()
    payload, context = harness.destination.sent[0]
    message_id = harness.store.deliveries[delivery_id].message_id
    assert payload == harness.store.messages[message_id].raw
    assert (context.channel, context.message_id, context.delivery_id, context.control_id,
            context.message_type, context.attempt, context.charset) == (
        "adt-in", message_id, delivery_id, "C1", "ADT^A01", 1, "UNICODE UTF-8")


def test_only_own_lane(harness):
    """If deliveries of other lanes and destinations are queued, then the lane leaves them."""
    mine = harness.queue(1)
    harness.queue(1, lane=1)
    harness.queue(1, destination="dpi")
    harness.start()
    assert harness.destination.delivery_ids == mine


def test_retry_backoff_holds_the_lane(harness):
    """If a send fails and may be retried, then it is recorded QUEUED with the next attempt
    time, retried after RetryPolicy's delay (2 s, then 6 s), and the next delivery waits."""
    first, second = harness.queue(2)
    harness.destination.script(refused(), refused("timeout"), SUCCESS)
    start = harness.clock.seconds()
    harness.start()
    assert harness.destination.delivery_ids == [first]
    update = harness.store.updates[-1]
    assert (update.status, update.attempts, update.next_attempt_at, update.last_error) == (
        st.QUEUED, 1, start + 2.0, "connection refused")
    harness.clock.advance(1.99)
    assert harness.destination.delivery_ids == [first]
    harness.clock.advance(0.01)
    assert harness.destination.delivery_ids == [first, first]
    assert harness.destination.sent[1][1].attempt == 2
    assert harness.store.updates[-1].next_attempt_at == start + 2.0 + 6.0
    harness.clock.advance(5.99)
    assert len(harness.destination.sent) == 2
    harness.clock.advance(0.01)
    assert harness.destination.delivery_ids == [first, first, first, second]
    assert harness.status(first) == (st.SENT, 3)
    assert harness.status(second) == (st.SENT, 1)
    assert harness.lane.failed_attempts == 2


def test_retries_spent_parks_and_moves_on(harness):
    """If every attempt fails, then after max_attempts the delivery is parked in ERROR with
    its last error and the next delivery is sent."""
    first, second = harness.queue(2)
    harness.destination.script(refused("1"), refused("2"), refused("3"))
    harness.start()
    harness.clock.advance(2.0)
    harness.clock.advance(6.0)
    assert harness.destination.delivery_ids == [first, first, first, second]
    assert harness.status(first) == (st.ERROR, 3)
    assert harness.store.deliveries[first].last_error == "3"
    assert harness.status(second) == (st.SENT, 1)
    assert harness.lane.parked == 1


def test_backoff_capped_by_max_delay():
    """If the growing delay passes max_delay, then the lane waits max_delay."""
    h = Harness(RetryPolicy(max_attempts=5, initial_delay=4.0, multiplier=10.0, max_delay=7.0))
    (delivery_id,) = h.queue(1)
    h.destination.script(refused(), refused(), SUCCESS)
    h.start()
    h.clock.advance(4.0)
    assert len(h.destination.sent) == 2
    h.clock.advance(6.99)
    assert len(h.destination.sent) == 2
    h.clock.advance(0.01)
    assert h.status(delivery_id) == (st.SENT, 3)


def test_non_retryable_failure_parks_at_once(harness):
    """If the peer rejects a message outright, then it is parked after one attempt with the
    rejection and the peer's answer, and the next delivery goes right away."""
    first, second = harness.queue(2)
    harness.destination.script(rejected())
    harness.start()
    assert harness.destination.delivery_ids == [first, second]
    assert harness.status(first) == (st.ERROR, 1)
    parked = harness.store.updates[0]
    assert (parked.last_error, parked.response) == ("AR: unknown patient", b"MSA|AR")


def test_unexpected_exception_is_retried(harness):
    """If a destination fails with some other exception, then it counts as retryable and its
    type is in the recorded error."""
    (delivery_id,) = harness.queue(1)
    harness.destination.script(RuntimeError("boom"))
    harness.start()
    assert harness.status(delivery_id) == (st.QUEUED, 1)
    assert harness.store.deliveries[delivery_id].last_error == "RuntimeError: boom"
    harness.clock.advance(2.0)
    assert harness.status(delivery_id) == (st.SENT, 2)


def test_woken_lane_fetches_new_work(harness):
    """If an idle lane is woken, then it fetches and sends new work GATHER seconds later,
    without waiting for its poll; the wakes meanwhile add no read."""
    harness.start()
    assert harness.destination.sent == []
    reads = harness.store.reads["fetch_due"]
    first = harness.queue(1)
    harness.lane.wake()
    harness.clock.advance(GATHER / 2)
    second = harness.queue(1)
    harness.lane.wake()
    assert harness.destination.delivery_ids == []
    harness.clock.advance(GATHER)  # past the first wake's GATHER, far short of the poll
    assert harness.destination.delivery_ids == first + second
    assert harness.store.reads["fetch_due"] == reads + 1
    assert GATHER < POLL


def test_woken_lane_without_gather_reads_at_once(harness):
    """If a lane gathers for 0 s, then a wake reads its queue at once."""
    harness.lane._gather = 0
    harness.start()
    (delivery_id,) = harness.queue(1)
    harness.lane.wake()
    assert harness.destination.delivery_ids == [delivery_id]


def test_wake_during_send_fetches_after_it(harness):
    """If a lane is woken while a send is under way, then once the queue it had is done it
    fetches again READ_GAP after its previous read started (not at once: the work queued
    meanwhile gathers into one read and one write of outcomes; no poll wait either) and
    sends the new work."""
    (first,) = harness.queue(1)
    answer = defer.Deferred()
    harness.destination.script(answer)
    harness.start()
    (second,) = harness.queue(1)
    harness.lane.wake()
    assert harness.destination.delivery_ids == [first]
    harness.clock.advance(READ_GAP / 2)
    answer.callback(None)
    assert harness.destination.delivery_ids == [first]
    assert harness.store.reads["fetch_due"] == 1
    harness.clock.advance(READ_GAP / 2)
    assert harness.destination.delivery_ids == [first, second]


def test_backlog_read_again_at_once(harness):
    """If a read brings as many deliveries as the lane reads at a time (a backlog), then
    the lane reads the rest as soon as those are done, without waiting READ_GAP."""
    ids = harness.queue(7)  # the harness reads 3 at a time
    harness.start()
    assert harness.destination.delivery_ids == ids
    assert harness.store.reads["fetch_due"] == 3


def test_read_gap_not_after_an_empty_read(harness):
    """If a read found nothing, then a wake reads GATHER later, not READ_GAP after it."""
    harness.start()
    assert harness.store.reads["fetch_due"] == 1
    (delivery_id,) = harness.queue(1)
    harness.lane.wake()
    harness.clock.advance(GATHER)
    assert harness.destination.delivery_ids == [delivery_id]


def test_idle_lane_polls(harness):
    """If new work is queued and nobody wakes the lane, then its poll finds it after
    poll_interval."""
    harness.start()
    (delivery_id,) = harness.queue(1)
    harness.clock.advance(POLL - 0.01)
    assert harness.destination.sent == []
    harness.clock.advance(0.01)
    assert harness.destination.delivery_ids == [delivery_id]


def test_more_than_one_fetch_batch(harness):
    """If more deliveries are queued than one fetch returns, then the lane fetches on and
    sends them all, in order."""
    ids = harness.queue(8)  # fetch_batch is 3
    harness.start()
    assert harness.destination.delivery_ids == ids


def test_rescan_finds_requeued_older_delivery(harness):
    """If a delivery with an older id than the lane's cursor is queued again (a replay),
    then the lane finds it on a later poll, since it rescans from the start."""
    first, second = harness.queue(2)
    harness.start()
    assert harness.destination.delivery_ids == [first, second]
    row = harness.store.deliveries[first]
    harness.store.deliveries[first] = replace(row, status=st.QUEUED)  # what a replay does
    harness.clock.advance(POLL)
    assert harness.destination.delivery_ids == [first, second, first]


def test_waits_for_next_attempt_after_restart(harness):
    """If a queued delivery already failed and its next attempt is in the future (found after
    a restart), then the lane waits until then, holding the deliveries behind it."""
    now = harness.clock.seconds()
    (waiting,) = harness.queue(1, attempts=2, next_attempt_at=now + 30)
    (behind,) = harness.queue(1)
    harness.start()
    harness.clock.advance(29.9)
    assert harness.destination.sent == []
    harness.clock.advance(0.1)
    assert harness.destination.delivery_ids == [waiting, behind]
    assert harness.destination.sent[0][1].attempt == 3


def test_past_next_attempt_sent_at_once(harness):
    """If a failed delivery's next attempt time has passed, then it is sent at once."""
    (delivery_id,) = harness.queue(1, attempts=1,
                                   next_attempt_at=harness.clock.seconds() - 5)
    harness.start()
    assert harness.destination.delivery_ids == [delivery_id]


def test_uncommitted_outcome_not_sent_twice():
    """If a delivery's SENT is not committed yet when the lane has nothing left to send, then
    the lane waits for the commit (SETTLING) before it reads the queue again, and does not
    send the delivery again."""
    h = Harness(hold_commits=True)
    (delivery_id,) = h.queue(1)
    h.start()
    reads = h.lane.reads
    for _ in range(3):
        h.clock.advance(POLL)
    assert h.lane.state is LaneState.SETTLING and h.lane.reads == reads
    assert h.destination.delivery_ids == [delivery_id]
    h.store.commit()
    h.clock.advance(POLL)
    assert h.destination.delivery_ids == [delivery_id]
    assert h.status(delivery_id) == (st.SENT, 1)


def test_many_immediate_answers(harness):
    """If the destination answers at once (a Deferred already fired) for a long queue, then
    the lane sends it all in order without running out of stack."""
    harness.lane._fetch_batch = 500
    ids = harness.queue(1500)
    harness.start()
    harness.clock.advance(0)
    assert harness.destination.delivery_ids == ids
    assert harness.lane.sent == 1500


def test_many_immediate_rejections(harness):
    """If the destination rejects a long queue at once (synchronous failures), then every
    delivery is parked, in order, without running out of stack."""
    harness.lane._fetch_batch = 500
    ids = harness.queue(600)
    harness.destination.script(*(rejected() for _ in ids))
    harness.start()
    assert harness.destination.delivery_ids == ids
    assert harness.lane.parked == 600


def test_stop_cancels_polls_and_retries(harness):
    """If the lane is stopped while it waits to retry, then it sends nothing more."""
    (delivery_id,) = harness.queue(1)
    harness.destination.script(refused())
    harness.start()
    harness.lane.stop()
    harness.clock.advance(60)
    assert harness.destination.delivery_ids == [delivery_id]
    assert harness.clock.getDelayedCalls() == []


def test_stop_waits_for_the_send_under_way(harness):
    """If the lane is stopped while a send is under way, then stop's Deferred fires only once
    that send has answered and its outcome is recorded, and nothing further is sent."""
    first, _ = harness.queue(2)
    answer = defer.Deferred()
    harness.destination.script(answer)
    harness.start()
    stopped = harness.lane.stop()
    assert not stopped.called
    answer.callback(None)
    assert stopped.called
    assert harness.destination.delivery_ids == [first]
    assert harness.status(first) == (st.SENT, 1)


def test_stop_during_send_that_fails(harness):
    """If a send under way at stop fails retryably, then the retry is recorded, stop fires,
    and no retry timer is left behind."""
    (delivery_id,) = harness.queue(1)
    answer = defer.Deferred()
    harness.destination.script(answer)
    harness.start()
    stopped = harness.lane.stop()
    answer.errback(refused())
    assert stopped.called
    assert harness.status(delivery_id) == (st.QUEUED, 1)
    assert harness.clock.getDelayedCalls() == []


def test_stop_when_idle_fires_at_once(harness):
    """If the lane is idle, then stop's Deferred has already fired."""
    harness.start()
    assert harness.lane.stop().called


def test_a_lane_whose_read_found_many_waits_the_busy_gap(harness):
    """If a read found busy_read deliveries or more (and left none unread), then the lane
    reads again busy_read_gap after that read's start, not READ_GAP; once a read finds fewer,
    READ_GAP is back."""
    harness.lane._busy_read = 2
    harness.start()
    first = harness.queue(2)
    harness.lane.wake()
    harness.clock.advance(GATHER)
    assert harness.destination.delivery_ids == first
    second = harness.queue(1)
    harness.lane.wake()
    harness.clock.advance(READ_GAP)
    assert harness.destination.delivery_ids == first
    harness.clock.advance(BUSY_READ_GAP - READ_GAP)
    assert harness.destination.delivery_ids == first + second
    third = harness.queue(1)
    harness.lane.wake()
    harness.clock.advance(READ_GAP)
    assert harness.destination.delivery_ids == first + second + third
