"""Tests for engine.flow.decider.Decider with a FakeStore, task.Clock and a run_in_thread the
test controls (each decision a Deferred it fires), or one that runs at once."""
from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
from twisted.internet import defer, task

from engine import status as st
from engine.flow import decider as decider_module
from engine.flow.decider import Decider, DeciderStopped
from engine.flow.plan import ChannelPlan, DestinationPlan, InboundMessage
from engine.flow.queued import QueuedWork
from engine.flow.routing import ORDER_BY_PATIENT, lane_for
from engine.store.records import Decision, NewDelivery
from engine.store.store import Store
from tests.fakes import FakeStore


def adt(control_id: str, patient: str = "P1") -> str:
    return (f"MSH|^~\\&|HIS|HOSP|ENG|HOSP|20260101||ADT^A01|{control_id}|P|2.5\r"
            f"PID|1||{patient}^^^HOSP\r")


class Held:
    """A run_in_thread whose calls wait until the test runs them (``run(n)``)."""

    def __init__(self) -> None:
        self.calls: list[tuple[defer.Deferred, tuple]] = []

    def __call__(self, function, *args) -> defer.Deferred:
        d: defer.Deferred = defer.Deferred()
        self.calls.append((d, (function,) + args))
        return d

    def started(self) -> list[str]:
        return [args[2].control_id for _, args in self.calls]

    def run(self, index: int) -> None:
        d, (function, *args) = self.calls[index]
        d.callback(function(*args))


class Harness:
    """A decider for channels adt-in (archive, plus dpi by patient on 8 lanes) and lab-in."""

    def __init__(self, held: bool = False):
        self.clock = task.Clock()
        self.store = FakeStore()
        self.told: list[set] = []
        self.held = Held()
        destinations = (DestinationPlan("archive"), DestinationPlan("dpi", ORDER_BY_PATIENT, 8))
        self.plans = {"adt-in": ChannelPlan("adt-in", destinations, marked_slow=True),
                      "lab-in": ChannelPlan("lab-in", (DestinationPlan("lis"),), marked_slow=True)}
        self.decider = Decider(self.store, self.clock, self.plans,
                               QueuedWork(self.clock, self.told.append),
                               run_in_thread=self.held if held else defer.maybeDeferred)
        self.decider.start()

    def submit(self, control_id: str, patient: str = "P1",
               channel: str = "adt-in") -> tuple[int, defer.Deferred]:
        raw = adt(control_id, patient)
        message_id = self.store.add_message(channel, raw.encode(), control_id=control_id)
        d = self.decider.submit(channel, InboundMessage(message_id, raw, control_id=control_id))
        return message_id, d


@pytest.fixture
def harness():
    return Harness()


@pytest.fixture
def held():
    return Harness(held=True)


def test_fake_store_has_what_the_decider_uses():
    """If the Decider uses a Store method, then the real Store has it and FakeStore has it
    with the same parameters."""
    used = set(re.findall(r"self\._store\.(\w+)", Path(decider_module.__file__).read_text()))
    assert used == {"record_decision"}
    for name in used:
        fake = inspect.signature(getattr(FakeStore, name)).parameters.values()
        real = inspect.signature(getattr(Store, name)).parameters.values()
        assert [(p.name, p.kind) for p in fake] == [(p.name, p.kind) for p in real]


def test_submit_commits_the_decision_and_tells_the_lanes(harness):
    """If a committed message is submitted, then its decision is committed TRANSFORMED with
    one delivery per destination, the Deferred fires with the decision, and on the next
    reactor turn the lanes are told, once, of the (channel, destination, lane) that got work."""
    message_id, d = harness.submit("1", "P77")
    (decided,) = harness.store.decided
    assert (decided.message_id, decided.channel) == (message_id, "adt-in")
    assert decided.decision.deliveries == (NewDelivery("archive", 0),
                                           NewDelivery("dpi", lane_for("P77", 8)))
    assert d.result == decided.decision
    assert harness.store.messages[message_id].status == st.TRANSFORMED
    assert harness.told == []
    harness.clock.advance(0)
    assert harness.told == [{("adt-in", "archive", 0), ("adt-in", "dpi", lane_for("P77", 8))}]
    assert harness.decider.decided == 1 and not harness.decider.holds("adt-in")


def test_patients_get_their_own_lanes(harness):
    patients = [f"IPP{n}" for n in range(20)] * 2
    for n, patient in enumerate(patients):
        harness.submit(str(n), patient)
    lanes: dict[str, set[int]] = {}
    for patient, decided in zip(patients, harness.store.decided):
        lanes.setdefault(patient, set()).add(decided.decision.deliveries[1].lane)
    assert all(len(used) == 1 for used in lanes.values())
    assert len({lane for used in lanes.values() for lane in used}) > 1


def test_unknown_channel_is_an_error(harness):
    """If a message's channel is not loaded, then it is committed ERROR naming the channel."""
    message_id = harness.store.add_message("gone", adt("1").encode())
    harness.decider.submit("gone", InboundMessage(message_id, adt("1")))
    (decided,) = harness.store.decided
    assert (decided.decision.status, decided.decision.error) == (
        st.ERROR, "channel 'gone' is not loaded")


def test_a_decision_that_cannot_run_is_an_error(held):
    """If running the decision fails outright (the thread pool refuses it), then the message
    is committed ERROR naming the failure, and the channel goes on."""
    first, _ = held.submit("1")
    second, _ = held.submit("2")
    held.held.calls[0][0].errback(RuntimeError("no thread"))
    held.held.run(1)
    failed, ok = held.store.decided
    assert (failed.message_id, failed.decision.status) == (first, st.ERROR)
    assert failed.decision.error == "RuntimeError: no thread"
    assert (ok.message_id, ok.decision.status) == (second, st.TRANSFORMED)


def test_decision_for_a_message_decided_already_tells_nobody(harness):
    """If the store ignores a decision (the message is no longer RECEIVED), then no lane is
    told and no delivery is queued twice."""
    message_id, _ = harness.submit("1")
    harness.decider.submit("adt-in", InboundMessage(message_id, adt("1")))
    harness.clock.advance(0)
    assert len(harness.store.decided) == 2
    assert len(harness.told) == 1 and len(harness.store.deliveries) == 2
    assert harness.decider.decided == 1


def test_one_decision_at_a_time_per_channel_committed_in_arrival_order(held):
    """If a channel's messages are submitted, then only the first is being decided; the next
    starts once its decision is submitted for commit, so that decisions commit (and get
    delivery ids) in arrival order: an A08 never overtakes its A01."""
    a01, _ = held.submit("A01", "P1")
    a08, _ = held.submit("A08", "P1")
    assert held.held.started() == ["A01"]
    assert held.decider.holds("adt-in") and held.decider.knows(a08)
    held.held.run(0)
    assert held.held.started() == ["A01", "A08"]
    held.held.run(1)
    assert [d.message_id for d in held.store.decided] == [a01, a08]
    ids = sorted(held.store.deliveries)
    assert [held.store.deliveries[i].message_id for i in ids] == [a01, a01, a08, a08]
    assert not held.decider.holds("adt-in") and not held.decider.knows(a08)


def test_channels_do_not_wait_for_each_other(held):
    """If one channel's decision is under way, then another channel's message starts at once
    and is committed while the first is still undecided."""
    held.submit("A01")
    lab, d = held.submit("R01", channel="lab-in")
    assert held.held.started() == ["A01", "R01"]
    held.held.run(1)
    assert [x.message_id for x in held.store.decided] == [lab] and d.called


def test_stop_fails_what_is_queued_and_waits_for_what_is_under_way(held):
    """If the decider stops, then queued messages' Deferreds fail with DeciderStopped (they
    stay RECEIVED) and the stop fires once the decision under way is submitted."""
    first, d1 = held.submit("1")
    second, d2 = held.submit("2")
    stopped = held.decider.stop()
    failures = []
    d2.addErrback(failures.append)
    assert failures and failures[0].check(DeciderStopped)
    assert not stopped.called
    held.held.run(0)
    assert stopped.called and d1.called
    assert [d.message_id for d in held.store.decided] == [first]
    assert held.store.messages[second].status == st.RECEIVED
    late = held.decider.submit("adt-in", InboundMessage(second, adt("2")))
    late.addErrback(failures.append)
    assert failures[-1].check(DeciderStopped)


def test_settle_waits_for_the_channels_queued_messages(held):
    """If a channel has messages queued, then settle(channel) fires once they are decided and
    submitted; settle of a channel with nothing queued fires at once."""
    held.submit("S1")
    held.submit("S2")
    settled = held.decider.settle("adt-in")
    assert held.decider.settle("lab-in").called
    held.held.run(0)
    assert not settled.called
    held.held.run(1)
    assert settled.called


def test_settle_with_only_a_decision_under_way(held):
    held.submit("S1")
    settled = held.decider.settle("adt-in")
    assert not settled.called
    held.held.run(0)
    assert settled.called and not held.decider.holds("adt-in")


def test_a_slow_decision_runs_off_the_reactor_thread(monkeypatch):
    """If no run_in_thread is given, then decisions run in the decider's own thread pool,
    not on the calling thread, and starting it lowers the interpreter's switch interval."""
    import sys
    import threading

    from twisted.internet import reactor  # only to hand the result back; not run here

    monkeypatch.setattr(sys, "setswitchinterval", lambda value: seen.append(value))
    seen: list = []
    decider = Decider(FakeStore(), reactor, {}, QueuedWork(task.Clock(), lambda keys: None))
    done = threading.Event()

    def where() -> None:
        seen.append(threading.current_thread().name)
        done.set()

    decider._in_pool(where)
    assert done.wait(10)
    decider._stop_pool(None)
    assert seen[0] == min(sys.getswitchinterval(), decider_module.SWITCH_INTERVAL)
    assert seen[1] != threading.current_thread().name


def test_a_decision_committed_during_a_scan_is_not_found_again():
    """If a message is decided while the recovery scan's read is under way, then the scan
    does not decide it again (a step with effects, the identity: step, would repeat them)."""
    decider = Decider(None, None, {}, None)
    decider.scan_started()
    decider._known.add(7)
    decider._settled(7)
    assert not decider.knows(7) and decider.settled_in_scan(7)
    decider.scan_started()
    assert not decider.settled_in_scan(7)

def test_a_decision_recording_consent_is_committed_before_the_next_starts(held):
    """If a decision carries a patient's opposition, then the channel's next message is not
    decided before that decision is committed (it would look for the opposition in the store
    too early); a decision without one does not wait for its commit."""
    from engine.store.records import ConsentChange

    change = ConsentChange((("1.2.3", "P1"),), "shared-record", True, "ZFA-9 = IO")
    held.store.hold_commits = True
    held.submit("A1")
    held.submit("O1")
    held.submit("O2")
    d, (function, plan, message) = held.held.calls[0]
    d.callback(Decision(st.TRANSFORMED, consent=(change,)))
    assert held.held.started() == ["A1"]  # O1 waits for A1's commit
    held.store.commit()
    assert held.held.started() == ["A1", "O1"]
    held.held.run(1)  # no consent change: O2 starts before O1's commit
    assert held.held.started() == ["A1", "O1", "O2"]
    assert [decided.decision.consent for decided in held.store.decided][0] == (change,)
