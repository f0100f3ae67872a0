"""Tests for engine.flow.processor.Processor with task.Clock and a FakeStore."""
from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
from twisted.internet import defer, task

from engine.flow import pipeline

from engine.flow import processor
from engine import status as st
from engine.flow.pipeline import ChannelPlan, DestinationPlan, InboundMessage
from engine.flow.routing import ORDER_BY_PATIENT, lane_for
from engine.store.records import NewDelivery
from engine.store.store import Store
from tests.fakes import FakeStore

SCAN = 5.0


def adt(control_id: str, patient: str = "P1") -> str:
    return (f"MSH|^~\\&|HIS|HOSP|ENG|HOSP|20260101||ADT^A01|{control_id}|P|2.5\r"
            f"PID|1||{patient}^^^HOSP\r")


class Harness:
    """A processor for channel adt-in (archive, plus dpi ordered by patient on 8 lanes)."""

    def __init__(self):
        self.clock = task.Clock()
        self.store = FakeStore()
        self.woken: list[tuple[str, object]] = []
        self.plan = ChannelPlan("adt-in", (DestinationPlan("archive"),
                                           DestinationPlan("dpi", ORDER_BY_PATIENT, 8)))
        self.processor = processor.Processor(
            self.store, self.clock, {"adt-in": self.plan},
            lambda result, ids, message: self.woken.append((result.channel, result)),
            scan_interval=SCAN)

    def committed(self, control_id: str, patient: str = "P1", channel: str = "adt-in",
                  raw: bytes | None = None) -> int:
        """A message committed as RECEIVED (in the fake store); its id."""
        raw = adt(control_id, patient).encode() if raw is None else raw
        return self.store.add_message(channel, raw, control_id=control_id)

    def enqueue(self, control_id: str, patient: str = "P1") -> tuple[int, defer.Deferred]:
        message_id = self.committed(control_id, patient)
        d = self.processor.enqueue(InboundMessage(message_id, adt(control_id, patient)),
                                   "adt-in")
        return message_id, d


def one_turn(clock: task.Clock) -> None:
    """Run the calls due now that were scheduled before this turn, as one reactor turn would
    (Clock.advance would also run those they schedule for now)."""
    due = [call for call in clock.getDelayedCalls() if call.getTime() <= clock.seconds()]
    for call in due:
        clock.calls.remove(call)
        call.func(*call.args, **call.kw)


@pytest.fixture
def harness():
    h = Harness()
    yield h
    h.processor.stop()


def test_fake_store_has_what_the_processor_uses():
    """If the Processor uses a Store method, then the real Store has it and FakeStore has it
    with the same parameters."""
    used = set(re.findall(r"self\._store\.(\w+)", Path(processor.__file__).read_text()))
    assert used == {"read", "record_processing"}
    for name in used:
        fake = inspect.signature(getattr(FakeStore, name)).parameters.values()
        real = inspect.signature(getattr(Store, name)).parameters.values()
        assert [(p.name, p.kind) for p in fake] == [(p.name, p.kind) for p in real]


def test_enqueue_records_deliveries_and_wakes_lanes(harness):
    """If a committed message is enqueued, then on a later reactor turn its result is
    recorded TRANSFORMED with one delivery per destination, the lanes are woken, and the
    Deferred fires with the result."""
    message_id, d = harness.enqueue("1", "P77")
    assert harness.store.processing == []  # not on the ACK's reactor turn
    harness.clock.advance(0)
    (result,) = harness.store.processing
    assert (result.message_id, result.channel, result.status) == (
        message_id, "adt-in", st.TRANSFORMED)
    assert result.deliveries == (NewDelivery("archive", 0),
                                 NewDelivery("dpi", lane_for("P77", 8)))
    assert harness.woken == [("adt-in", result)]
    assert d.called and d.result is result
    assert harness.store.messages[message_id].status == st.TRANSFORMED
    assert harness.processor.processed == 1


def test_patients_get_their_own_lanes(harness):
    """If messages of several patients are processed, then each patient's deliveries to the
    patient-ordered destination always use that patient's lane."""
    patients = [f"IPP{n}" for n in range(20)] * 2
    for n, patient in enumerate(patients):
        harness.enqueue(str(n), patient)
    harness.clock.advance(0)
    lanes: dict[str, set[int]] = {}
    for patient, result in zip(patients, harness.store.processing):
        lanes.setdefault(patient, set()).add(result.deliveries[1].lane)
        assert result.deliveries[0].lane == 0
    assert all(len(used) == 1 for used in lanes.values())
    assert len({lane for used in lanes.values() for lane in used}) > 1


def test_pipeline_exception_records_error(harness, monkeypatch):
    """If the pipeline raises, then an ERROR result with the exception is recorded, no lane
    is woken, and the other messages are processed."""
    real = pipeline.process

    def process(plan, message):
        if message.text.split("|")[9] == "bad":
            raise KeyError("PID")
        return real(plan, message)

    monkeypatch.setattr(pipeline, "process", process)
    bad, _ = harness.enqueue("bad")
    good, _ = harness.enqueue("good")
    harness.clock.advance(0)
    failed, ok = harness.store.processing
    assert (failed.message_id, failed.status, failed.error, failed.deliveries) == (
        bad, st.ERROR, "KeyError: 'PID'", ())
    assert (ok.message_id, ok.status) == (good, st.TRANSFORMED)
    assert [result.message_id for _, result in harness.woken] == [good]
    assert harness.store.messages[bad].status == st.ERROR


def test_unknown_channel_is_an_error(harness):
    """If a message's channel is not loaded, then it is recorded ERROR naming the channel."""
    message_id = harness.committed("1", channel="gone")
    harness.processor.enqueue(InboundMessage(message_id, adt("1")), "gone")
    harness.clock.advance(0)
    (result,) = harness.store.processing
    assert (result.status, result.error) == (st.ERROR, "channel 'gone' is not loaded")


def test_drains_in_slices(harness):
    """If more messages are queued than one slice, then each reactor turn processes at most
    a slice, and the rest follow on the next turns."""
    for n in range(processor.SLICE + 50):
        harness.enqueue(str(n))
    one_turn(harness.clock)
    assert len(harness.store.processing) == processor.SLICE
    one_turn(harness.clock)
    assert len(harness.store.processing) == processor.SLICE + 50
    assert harness.clock.getDelayedCalls() == []


def test_result_for_processed_message_wakes_nobody(harness):
    """If the store ignores a result (the message was processed already), then no lane is
    woken."""
    message_id, _ = harness.enqueue("1")
    harness.clock.advance(0)
    harness.processor.enqueue(InboundMessage(message_id, adt("1")), "adt-in")
    harness.clock.advance(0)
    assert len(harness.store.processing) == 2
    assert len(harness.woken) == 1
    assert len(harness.store.deliveries) == 2


def test_scan_processes_received_messages(harness):
    """If RECEIVED messages are in the store but not in memory (a crash, a replay), then the
    scan at start queues them, decoded with their own separators."""
    first = harness.committed("1", "P5")
    second = harness.committed("2", raw=adt("2", "P6").replace("|", "#").encode())
    harness.processor.start()
    harness.clock.advance(0)
    results = {r.message_id: r for r in harness.store.processing}
    assert sorted(results) == [first, second]
    assert results[second].status == st.TRANSFORMED
    assert results[second].deliveries[1].lane == lane_for("P6", 8)
    assert len(harness.woken) == 2


def test_scan_skips_messages_in_flight(harness):
    """If a RECEIVED message is already queued in memory, then the scan does not queue it
    again: it is processed once."""
    message_id, _ = harness.enqueue("1")
    harness.processor.start()  # scans before the queue is drained
    harness.clock.advance(0)
    assert [r.message_id for r in harness.store.processing] == [message_id]


def test_scan_repeats(harness):
    """If a message becomes RECEIVED later (a replay), then the next periodic scan finds it."""
    harness.processor.start()
    message_id = harness.committed("1")
    harness.clock.advance(SCAN - 0.01)
    assert harness.store.processing == []
    harness.clock.advance(0.01)
    harness.clock.advance(0)
    assert [r.message_id for r in harness.store.processing] == [message_id]


def test_scan_pages_through_a_backlog(harness, monkeypatch):
    """If more messages wait than one scan reads, then the scan reads on at once from where
    it stopped, and finds them all."""
    monkeypatch.setattr(processor, "SCAN_BATCH", 3)
    ids = [harness.committed(str(n)) for n in range(7)]
    harness.processor.start()
    for _ in range(4):
        harness.clock.advance(0)
    assert sorted(r.message_id for r in harness.store.processing) == ids
    assert harness.store.reads["received_messages"] == 3


def test_scan_reads_a_message_in_the_charset_it_was_accepted_in(harness, monkeypatch):
    """If a RECEIVED message without MSH-18 was accepted in another character set than the
    channel's (handed over by a channel reading 8859/1), then the scan reads it in that one,
    not in the channel's UTF-8, which its bytes are not."""
    seen = []
    process = processor.pipeline.process
    monkeypatch.setattr(processor.pipeline, "process",
                        lambda plan, message: seen.append(message) or process(plan, message))
    message_id = harness.store.add_message("adt-in", adt("1", "DUPRÉ").encode("latin-1"),
                                           control_id="1", charset="8859/1")
    harness.processor.start()
    harness.clock.advance(0)
    assert [r.status for r in harness.store.processing] == [st.TRANSFORMED]
    assert seen[0].message_id == message_id and "DUPRÉ^^^HOSP" in seen[0].text


def test_scan_unreadable_raw_is_an_error(harness):
    """If a RECEIVED message's raw bytes cannot be read (no MSH), then the scan records it
    ERROR with the header error, and the scan goes on."""
    bad = harness.committed("1", raw=b"garbage\r")
    harness.processor.start()
    harness.clock.advance(0)
    (result,) = harness.store.processing
    assert (result.message_id, result.status) == (bad, st.ERROR)
    assert "not MSH" in result.error
    assert harness.store.messages[bad].status == st.ERROR
    good = harness.committed("2")
    harness.clock.advance(SCAN)
    harness.clock.advance(0)
    assert [r.message_id for r in harness.store.processing] == [bad, good]


def test_scan_read_failure_retries_later(harness):
    """If the scan's read fails, then it is tried again after the scan interval."""
    failing = [defer.fail(RuntimeError("database is locked"))]
    real_read = harness.store.read
    harness.store.read = lambda query, *a, **k: failing.pop() if failing else real_read(
        query, *a, **k)
    message_id = harness.committed("1")
    harness.processor.start()
    assert harness.store.processing == []
    harness.clock.advance(SCAN)
    harness.clock.advance(0)
    assert [r.message_id for r in harness.store.processing] == [message_id]


def test_stop_ends_scans(harness):
    """If the processor is stopped, then no scan runs any more."""
    harness.processor.start()
    harness.processor.stop()
    harness.committed("1")
    harness.clock.advance(SCAN * 3)
    assert harness.store.processing == []
    assert harness.clock.getDelayedCalls() == []


def test_scan_survives_an_unexpected_decoding_error(harness):
    """If re-reading a RECEIVED message raises something other than a header error (here the
    channel's default encoding is not a codec at all), then the message is recorded ERROR
    with that error and the periodic scan goes on."""
    harness.processor.channels["adt-in"] = ChannelPlan(
        "adt-in", harness.plan.destinations, encoding="no-such-codec")
    raw = adt("1").encode()
    bad = harness.committed("1", raw=raw)  # MSH-18 empty: the channel's encoding applies
    harness.processor.start()
    harness.clock.advance(0)
    (result,) = harness.store.processing
    assert (result.message_id, result.status) == (bad, st.ERROR)
    assert "LookupError" in result.error
    harness.processor.channels["adt-in"] = harness.plan
    good = harness.committed("2")
    harness.clock.advance(SCAN)
    harness.clock.advance(0)
    assert [r.message_id for r in harness.store.processing] == [bad, good]


def test_stop_fails_what_is_still_queued(harness):
    """If the processor stops with messages still queued, then their Deferreds fail with
    ProcessorStopped (nobody waits forever) and nothing is recorded for them."""
    _, d = harness.enqueue("1")
    harness.processor.stop()
    failures = []
    d.addErrback(failures.append)
    assert failures and failures[0].check(processor.ProcessorStopped)
    harness.clock.advance(0)
    assert harness.store.processing == []


def test_settle_waits_for_the_channels_queued_messages(harness):
    """If a channel's messages are queued, then settle(channel) fires once they have been
    processed, the messages' own Deferreds still getting their results; settle of a channel
    with nothing queued fires at once."""
    _, first = harness.enqueue("S1")
    _, second = harness.enqueue("S2")
    settled = harness.processor.settle("adt-in")
    assert harness.processor.settle("other").called
    assert not settled.called
    harness.clock.advance(0)
    assert settled.called
    assert [first.result.status, second.result.status] == [st.TRANSFORMED, st.TRANSFORMED]
