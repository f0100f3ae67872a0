"""Tests for engine.flow.handover: the ``channel`` destination against a fake intake, alone and
driven by a real delivery Lane on a task.Clock, and the ``channel`` source.

The intake's side of the hand-over (what is committed, when the Deferred fires) is tested in
tests/test_intake.py; the whole hop through the real engine in tests/e2e/test_chaining.py.
"""
from __future__ import annotations

import inspect

import pytest
from twisted.internet import defer, task

from engine import status as st
from engine.config.settings import RetryPolicy
from engine.delivery.lane import Lane, LaneKey
from engine.flow.handover import ChannelDestination, ChannelSource, describe_commit, peer_of
from engine.flow.intake import Intake
from engine.interfaces import DeliveryContext, DeliveryFailed, DeliveryOutcome, Destination, Source
from engine.store.records import IngestResult
from tests.fakes import FakeIntake, FakeStore

CONTEXT = DeliveryContext("adt-in", 42, 7, "MSG1", "ADT^A01", 1, "8859/1")


def destination(intake: FakeIntake | None = None, **options) -> ChannelDestination:
    return ChannelDestination("to-normalise", "adt-in", 0,
                              options or {"channel": "adt-normalise"}, intake or FakeIntake())


def outcome_of(d: defer.Deferred):
    results: list = []
    d.addBoth(results.append)
    assert results, "the Deferred has not fired"
    return results[0]


def test_fake_intake_matches_the_real_hand_over() -> None:
    """If Intake.hand_over changes its signature, then the fake standing for it fails here."""
    assert (inspect.signature(FakeIntake.hand_over).parameters
            == inspect.signature(Intake.hand_over).parameters)


def test_the_connectors_are_a_destination_and_a_source() -> None:
    assert isinstance(destination(), Destination)
    assert isinstance(ChannelSource("adt-normalise", "adt-normalise", {}), Source)


# -- the destination alone -------------------------------------------------------------------

def test_send_hands_the_payload_to_the_target_channel_with_where_it_came_from() -> None:
    """If a delivery is sent, then the payload goes to the target channel's intake, with the
    sending channel and message as peer and the message's character set."""
    intake = FakeIntake()
    outcome = outcome_of(destination(intake).send(b"MSH|^~\\&|A\r", CONTEXT))

    [(channel, payload, peer, charset)] = intake.calls
    assert (channel, payload, charset) == ("adt-normalise", b"MSH|^~\\&|A\r", "8859/1")
    assert (peer.transport, peer.address) == ("channel", "adt-in/message 42")
    assert peer == peer_of(CONTEXT)
    assert isinstance(outcome, DeliveryOutcome)
    assert outcome.response == b'committed as message 1000 of channel "adt-normalise"'


def test_send_is_not_done_before_the_target_committed() -> None:
    """If the target's commit is under way, then the send has not answered yet."""
    commit: defer.Deferred = defer.Deferred()
    sent = destination(FakeIntake((commit,))).send(b"MSH|", CONTEXT)
    assert not sent.called

    commit.callback(IngestResult(5, st.TRANSFORMED, delivery_ids=(9,)))

    assert outcome_of(sent).detail == 'committed as message 5 of channel "adt-normalise"'


def test_a_duplicate_hand_over_is_sent_and_says_so() -> None:
    """If the target already had the message (a hand-over made again), then the delivery is
    done, and its response names the first copy."""
    intake = FakeIntake((IngestResult(8, st.DUPLICATE, duplicate_of=5),))
    outcome = outcome_of(destination(intake).send(b"MSH|", CONTEXT))
    assert outcome.detail == ('committed as message 8 of channel "adt-normalise", a duplicate '
                              "of message 5: not processed again")


def test_a_message_the_target_cannot_read_is_handed_over_all_the_same() -> None:
    """If the target stored the message in ERROR, then the delivery is done (the target has
    it, with its error) and its response says where to look."""
    assert "in ERROR" in describe_commit("b", IngestResult(3, st.ERROR))


def test_a_failed_commit_is_a_retryable_failure_naming_the_target() -> None:
    """If the target could not commit the message, then the send fails, retryable."""
    failed = outcome_of(destination(FakeIntake((RuntimeError("database is locked"),)))
                        .send(b"MSH|", CONTEXT))
    assert failed.check(DeliveryFailed)
    assert failed.value.retryable
    assert failed.value.reason == ('channel "adt-normalise" could not take the message: '
                                   "database is locked")


@pytest.mark.parametrize("options, complaint", [
    ({}, 'missing required option "channel"'),
    ({"channel": ""}, 'missing required option "channel"'),
    ({"channel": "b", "host": "x"}, "unknown option(s) host; known: channel"),
])
def test_options_are_checked_when_built(options: dict, complaint: str) -> None:
    """If the destination is built with bad options, then it says which, naming itself."""
    with pytest.raises(ValueError) as raised:
        ChannelDestination("to-b", "a", 0, options, None)
    assert str(raised.value) == f'destination "to-b" (channel): {complaint}'


def test_the_source_listens_on_nothing_and_takes_no_option() -> None:
    source = ChannelSource("b", "b", {})
    assert (source.start(), source.stop(), source.port) == (None, None, None)
    with pytest.raises(ValueError, match=r'source "b" \(channel\): unknown option\(s\) port'):
        ChannelSource("b", "b", {"port": 2575})


# -- driven by a lane --------------------------------------------------------------------------

class LaneHarness:
    """adt-in/to-normalise/0: a Lane on a Clock and a FakeStore, sending through a
    ChannelDestination to a FakeIntake."""

    def __init__(self) -> None:
        self.clock = task.Clock()
        self.clock.advance(1_000_000)
        self.store = FakeStore()
        self.intake = FakeIntake()
        self.lane = Lane(LaneKey("adt-in", "to-normalise", 0), destination(self.intake),
                         RetryPolicy(max_attempts=5, initial_delay=2.0, multiplier=2.0,
                                     max_delay=10.0), self.store, self.clock, poll_interval=1.0)

    def queue(self, count: int) -> list[int]:
        ids = []
        for n in range(1, count + 1):
            message_id = self.store.add_message(
                "adt-in", f"MSH|^~\\&|HIS|HOSP|||||ADT^A01|C{n}|P|2.5\r".encode(),
                control_id=f"C{n}", charset="UNICODE UTF-8")
            ids.append(self.store.add_delivery(message_id, "to-normalise"))
        return ids

    def handed(self) -> list[bytes]:
        return [payload.split(b"|")[9] for _, payload, _, _ in self.intake.calls]


def test_a_store_failure_is_retried_by_the_lane_then_sent() -> None:
    """If the target's store fails the first hand-over, then the lane waits its backoff and
    hands it over again; the next message waits until the first is SENT."""
    h = LaneHarness()
    first, second = h.queue(2)
    h.intake.script(RuntimeError("disk full"))
    h.lane.leased(h.clock.seconds() + 1e9)

    assert h.handed() == [b"C1"]  # failed; the lane holds
    assert h.store.deliveries[first].status == st.QUEUED
    assert "disk full" in h.store.deliveries[first].last_error
    h.clock.advance(1.9)
    assert h.handed() == [b"C1"]

    h.clock.advance(0.1)

    assert h.handed() == [b"C1", b"C1", b"C2"]
    assert [h.store.deliveries[i].status for i in (first, second)] == [st.SENT, st.SENT]
    assert h.store.deliveries[first].attempts == 2
    h.lane.stop()


def test_the_lane_hands_over_one_message_at_a_time_in_order() -> None:
    """If a hand-over is waiting for the target's commit, then the next one is not made;
    once it commits, the rest follow in queue order."""
    h = LaneHarness()
    h.queue(3)
    commit: defer.Deferred = defer.Deferred()
    h.intake.script(commit)
    h.lane.leased(h.clock.seconds() + 1e9)
    h.clock.advance(5)
    assert h.handed() == [b"C1"]

    commit.callback(IngestResult(70, st.RECEIVED))

    assert h.handed() == [b"C1", b"C2", b"C3"]
    assert [update.status for update in h.store.updates] == [st.SENT] * 3
    h.lane.stop()
