"""Tests for engine.flow.recovery.Recovery: RECEIVED messages found in the store are decided
by the same decider and committed by the same store write. task.Clock and a FakeStore."""
from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
from twisted.internet import defer, task

from engine import status as st
from engine.flow import recovery
from engine.flow.decider import Decider
from engine.flow.plan import ChannelPlan, DestinationPlan, InboundMessage
from engine.flow.queued import QueuedWork
from engine.flow.routing import ORDER_BY_PATIENT, lane_for
from engine.store.store import Store
from tests.fakes import FakeStore
from tests.flow.test_decider import Held, adt

SCAN = 5.0


class Harness:
    def __init__(self, run_in_thread=defer.maybeDeferred):
        self.clock = task.Clock()
        self.store = FakeStore()
        self.told: list[set] = []
        self.plan = ChannelPlan("adt-in", (DestinationPlan("archive"),
                                           DestinationPlan("dpi", ORDER_BY_PATIENT, 8)))
        self.plans = {"adt-in": self.plan}
        self.decider = Decider(self.store, self.clock, self.plans,
                               QueuedWork(self.clock, self.told.append),
                               run_in_thread=run_in_thread)
        self.decider.start()
        self.recovery = recovery.Recovery(self.store, self.clock, self.decider, self.plans,
                                          scan_interval=SCAN)

    def committed(self, control_id: str, patient: str = "P1", channel: str = "adt-in",
                  raw: bytes | None = None, **fields) -> int:
        """A message committed as RECEIVED (in the fake store); its id."""
        raw = adt(control_id, patient).encode() if raw is None else raw
        return self.store.add_message(channel, raw, control_id=control_id, **fields)

    @property
    def decided_ids(self) -> list[int]:
        return [d.message_id for d in self.store.decided]


@pytest.fixture
def harness():
    h = Harness()
    yield h
    h.recovery.stop()


def test_fake_store_has_what_the_recovery_uses():
    used = set(re.findall(r"self\._store\.(\w+)", Path(recovery.__file__).read_text()))
    assert used == {"read", "record_decision"}
    for name in used:
        fake = inspect.signature(getattr(FakeStore, name)).parameters.values()
        real = inspect.signature(getattr(Store, name)).parameters.values()
        assert [(p.name, p.kind) for p in fake] == [(p.name, p.kind) for p in real]


def test_scan_decides_received_messages(harness):
    """If RECEIVED messages are in the store but nobody decides them (a crash, a replay),
    then the scan at start hands them to the decider, decoded with their own separators,
    and the lanes are told of their deliveries."""
    first = harness.committed("1", "P5")
    second = harness.committed("2", raw=adt("2", "P6").replace("|", "#").encode())
    started = harness.recovery.start()
    assert started.called
    decided = {d.message_id: d.decision for d in harness.store.decided}
    assert sorted(decided) == [first, second]
    assert decided[second].status == st.TRANSFORMED
    assert decided[second].deliveries[1].lane == lane_for("P6", 8)
    harness.clock.advance(0)
    assert len(harness.told) == 1 and harness.recovery.found == 2


def test_scan_skips_messages_the_decider_holds():
    """If a RECEIVED message is already queued in the decider, then the scan does not queue
    it again: it is decided once."""
    held = Held()
    h = Harness(run_in_thread=held)
    message_id = h.committed("1")
    h.decider.submit("adt-in", InboundMessage(message_id, adt("1"), control_id="1"))
    h.recovery.start()
    assert held.started() == ["1"]
    held.run(0)
    assert h.decided_ids == [message_id]
    h.recovery.stop()


def test_found_messages_go_behind_what_the_channel_has_queued():
    """If the scan finds a message of a channel whose decision is under way, then it is
    decided after it, through the same per-channel queue."""
    held = Held()
    h = Harness(run_in_thread=held)
    newer = h.committed("NEW")
    h.decider.submit("adt-in", InboundMessage(newer, adt("NEW"), control_id="NEW"))
    older = h.committed("OLD")
    h.recovery.start()
    held.run(0)
    held.run(1)
    assert h.decided_ids == [newer, older]
    h.recovery.stop()


def test_scan_repeats(harness):
    """If a message becomes RECEIVED later (a replay), then the next periodic scan finds it
    and the one after, finding it still unheld, hands it over."""
    harness.recovery.start()
    message_id = harness.committed("1")
    harness.clock.advance(SCAN - 0.01)
    assert harness.store.decided == []
    harness.clock.advance(0.01)
    assert harness.store.decided == []
    harness.clock.advance(SCAN)
    assert harness.decided_ids == [message_id]
    assert harness.recovery.found == 1


def test_a_message_the_intake_is_handing_over_is_decided_once():
    """If a scan reads a message the intake has committed RECEIVED before the commit's
    callback has given it to the decider, then the scan leaves it, and the intake's hand-over
    decides it: once (the identity: step audits a query each time it runs)."""
    held = Held()
    h = Harness(run_in_thread=held)
    h.recovery.start()
    message_id = h.committed("1")
    h.clock.advance(SCAN)  # the read sees it RECEIVED, held by nobody yet
    h.decider.submit("adt-in", InboundMessage(message_id, adt("1"), control_id="1"))
    h.clock.advance(SCAN)  # the decision is under way: held
    assert held.started() == ["1"]
    held.run(0)
    h.clock.pump([SCAN, SCAN])
    assert held.started() == ["1"]
    assert h.decided_ids == [message_id]
    assert h.recovery.found == 0
    h.recovery.stop()


def test_scan_pages_through_a_backlog(harness, monkeypatch):
    monkeypatch.setattr(recovery, "SCAN_BATCH", 3)
    ids = [harness.committed(str(n)) for n in range(7)]
    harness.recovery.start()
    for _ in range(4):
        harness.clock.advance(0)
    # the first page at once (no source listens yet), the rest at the next pass
    assert sorted(harness.decided_ids) == ids[:3]
    assert harness.store.reads["received_messages"] == 3
    harness.clock.advance(SCAN)
    for _ in range(4):
        harness.clock.advance(0)
    assert sorted(harness.decided_ids) == ids


def test_scan_reads_a_message_in_the_charset_it_was_accepted_in(harness):
    """If a RECEIVED message without MSH-18 was accepted in another character set than the
    channel's (handed over by a channel reading 8859/1), then the scan reads it in that one,
    not in the channel's UTF-8, which its bytes are not."""
    harness.plans["adt-in"] = ChannelPlan(
        "adt-in", (DestinationPlan("a", steps=None),), marked_slow=True)
    message_id = harness.committed("1", raw=adt("1", "DUPRÉ").encode("latin-1"),
                                   charset="8859/1")
    harness.recovery.start()
    (decided,) = harness.store.decided
    assert (decided.message_id, decided.decision.status) == (message_id, st.TRANSFORMED)


def test_scan_unreadable_raw_is_an_error(harness):
    """If a RECEIVED message's raw bytes cannot be read (no MSH), then the scan commits it
    ERROR with the header error, and the scan goes on."""
    bad = harness.committed("1", raw=b"garbage\r")
    harness.recovery.start()
    (decided,) = harness.store.decided
    assert (decided.message_id, decided.decision.status) == (bad, st.ERROR)
    assert "not MSH" in decided.decision.error
    assert harness.store.messages[bad].status == st.ERROR
    good = harness.committed("2")
    harness.clock.pump([SCAN, SCAN])
    assert harness.decided_ids == [bad, good]


def test_scan_survives_an_unexpected_decoding_error(harness):
    """If re-reading a RECEIVED message raises something other than a header error (here the
    channel's default encoding is not a codec at all), then the message is committed ERROR
    with that error and the periodic scan goes on."""
    harness.plans["adt-in"] = ChannelPlan("adt-in", harness.plan.destinations,
                                          encoding="no-such-codec")
    bad = harness.committed("1")  # MSH-18 empty: the channel's encoding applies
    harness.recovery.start()
    (decided,) = harness.store.decided
    assert (decided.message_id, decided.decision.status) == (bad, st.ERROR)
    assert "LookupError" in decided.decision.error
    harness.plans["adt-in"] = harness.plan
    good = harness.committed("2")
    harness.clock.pump([SCAN, SCAN])
    assert harness.decided_ids == [bad, good]


def test_scan_read_failure_retries_later(harness):
    failing = [defer.fail(RuntimeError("database is locked"))]
    real_read = harness.store.read
    harness.store.read = lambda query, *a, **k: failing.pop() if failing else real_read(
        query, *a, **k)
    message_id = harness.committed("1")
    harness.recovery.start()
    assert harness.store.decided == []
    harness.clock.pump([SCAN, SCAN])
    assert harness.decided_ids == [message_id]


def test_stop_ends_scans(harness):
    harness.recovery.start()
    harness.recovery.stop()
    harness.committed("1")
    harness.clock.advance(SCAN * 3)
    assert harness.store.decided == []
    assert harness.clock.getDelayedCalls() == []
