"""Tests for engine.flow.decider.Decider given worker processes (a fake: the test fires each
decision): which plans go there, order, the fall-back to threads, the stop. The real processes
are tested in tests/workers/test_decide_pool.py and tests/e2e/test_cpu_steps.py."""
from __future__ import annotations

from twisted.internet import defer, task

from engine import status as st
from engine.flow.decider import Decider, in_process
from engine.flow.decision import decide
from engine.flow.plan import ChannelPlan, DestinationPlan, InboundMessage
from engine.flow.queued import QueuedWork
from tests.fakes import FakeStore
from tests.flow.test_decider import Held, adt


class FakeProcesses:
    """What the decider asks of DecisionProcesses; each decision waits for the test."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, InboundMessage, defer.Deferred]] = []
        self.stopped = False

    def decide(self, channel: str, message: InboundMessage) -> defer.Deferred:
        d: defer.Deferred = defer.Deferred()
        self.calls.append((channel, message, d))
        return d

    def started(self) -> list[str]:
        return [message.control_id for _, message, _ in self.calls]

    def stop(self) -> defer.Deferred:
        self.stopped = True
        return defer.succeed(None)


class Hook:
    def run(self, message, inbound):
        raise AssertionError("not run in these tests")


class Harness:
    def __init__(self):
        self.clock = task.Clock()
        self.store = FakeStore()
        self.threads = Held()
        self.processes = FakeProcesses()
        self.plans = {"cpu": ChannelPlan("cpu", (DestinationPlan("out"),), marked_slow=True),
                      "pix": ChannelPlan("pix", (DestinationPlan("out"),), identity=Hook())}
        self.decider = Decider(self.store, self.clock, self.plans,
                               QueuedWork(self.clock, lambda keys: None),
                               run_in_thread=self.threads, processes=self.processes)
        self.decider.start()

    def submit(self, control_id: str, channel: str = "cpu") -> tuple[int, defer.Deferred]:
        raw = adt(control_id)
        message_id = self.store.add_message(channel, raw.encode(), control_id=control_id)
        return message_id, self.decider.submit(
            channel, InboundMessage(message_id, raw, control_id=control_id))

    def answer(self, index: int) -> None:
        channel, message, d = self.processes.calls[index]
        d.callback(decide(self.plans[channel], message))


def test_plans_with_an_identity_hook_stay_on_threads():
    """If a plan has an identity: step (it needs the engine's store), then it is not decided
    in a process; a plan whose slowness is its own computing is."""
    harness = Harness()
    assert in_process(harness.plans["cpu"]) and not in_process(harness.plans["pix"])
    harness.submit("C1")
    harness.submit("X1", channel="pix")
    assert harness.processes.started() == ["C1"]
    assert harness.threads.started() == ["X1"]


def test_one_decision_per_channel_in_a_process_committed_in_order():
    """If a channel's messages go to the processes, then the second is sent only once the
    first's decision is submitted for commit, and they commit in arrival order."""
    harness = Harness()
    first, d1 = harness.submit("C1")
    second, _ = harness.submit("C2")
    assert harness.processes.started() == ["C1"]
    harness.answer(0)
    assert harness.processes.started() == ["C1", "C2"]
    harness.answer(1)
    assert [d.message_id for d in harness.store.decided] == [first, second]
    assert d1.result.status == st.TRANSFORMED
    assert harness.store.messages[second].status == st.TRANSFORMED


def test_what_a_process_cannot_decide_is_decided_in_a_thread():
    """If the process answers Unavailable (its configuration has no such channel), then the
    message is decided in a thread with the engine's plan, and committed once."""
    harness = Harness()
    message_id, d = harness.submit("C1")
    harness.processes.calls[0][2].errback(LookupError("channel 'cpu' has no plan"))
    assert harness.threads.started() == ["C1"]
    harness.threads.run(0)
    (decided,) = harness.store.decided
    assert (decided.message_id, decided.decision.status) == (message_id, st.TRANSFORMED)


def test_stop_waits_for_the_decision_under_way_then_stops_the_processes():
    """If the decider stops with a decision under way in a process, then the processes are
    stopped only after that decision is submitted for commit."""
    harness = Harness()
    message_id, _ = harness.submit("C1")
    stopped = harness.decider.stop()
    assert not stopped.called and not harness.processes.stopped
    harness.answer(0)
    assert stopped.called and harness.processes.stopped
    assert harness.store.messages[message_id].status == st.TRANSFORMED


def test_a_plan_that_reads_consent_from_the_store_stays_on_threads():
    """If a plan has a shared-record destination (a patient's opposition is looked up in the
    store while deciding), then it is not decided in a process."""
    class SharingPlan(ChannelPlan):
        shares = True

    assert not in_process(SharingPlan("xds", (DestinationPlan("registry"),), marked_slow=True))
