"""engine.nodes: this process's heartbeat, on a task.Clock with a recording writer."""
from __future__ import annotations

from twisted.internet import defer, task

from engine.nodes import NodeHeartbeat, process_name
from engine.store.nodes import HeartbeatOp, LeaveOp


class RecordingWriter:
    """Stands for GroupCommitWriter.submit; ``fail`` makes the next submits fail."""

    def __init__(self) -> None:
        self.submitted: list[tuple[object, object]] = []
        self.fail = False

    def submit(self, op, item) -> defer.Deferred:
        self.submitted.append((op, item))
        return defer.fail(OSError("disk full")) if self.fail else defer.succeed(None)


def _heartbeat(clock, writer, counts=(0, 0)):
    return NodeHeartbeat(writer, clock, node="n1", role="delivery", counters=lambda: counts,
                         interval=5.0)


def test_beats_at_start_then_every_interval_with_the_counters():
    """If the heartbeat runs 11 s, then it wrote three rows, the last with the counters and
    the clock's time."""
    clock, writer = task.Clock(), RecordingWriter()
    clock.advance(1000)
    heartbeat = _heartbeat(clock, writer, counts=(12, 4))
    heartbeat.start()
    clock.advance(5)
    clock.advance(6)
    assert [type(op) for op, _ in writer.submitted] == [HeartbeatOp] * 3
    row = writer.submitted[-1][1]
    assert (row.name, row.role, row.heartbeat_at, row.received, row.sent) == (
        "n1", "delivery", 1011.0, 12, 4)
    assert row.process == heartbeat.process


def test_stop_leaves_and_beats_no_more():
    """If the heartbeat stops, then its row is deleted and no beat follows."""
    clock, writer = task.Clock(), RecordingWriter()
    heartbeat = _heartbeat(clock, writer)
    heartbeat.start()
    heartbeat.stop()
    clock.advance(60)
    assert [type(op) for op, _ in writer.submitted] == [HeartbeatOp, LeaveOp]
    assert writer.submitted[-1][1] == heartbeat.process


def test_stop_before_start_writes_nothing():
    """If the engine stops before its heartbeat started (its store failed), then stop fires
    at once without queuing a write the writer would never run."""
    writer = RecordingWriter()
    stopped = _heartbeat(task.Clock(), writer).stop()
    assert stopped.called and writer.submitted == []


def test_a_failed_beat_is_logged_and_the_next_one_still_happens(caplog):
    """If a beat cannot be written, then it is logged and the loop goes on."""
    clock, writer = task.Clock(), RecordingWriter()
    writer.fail = True
    _heartbeat(clock, writer).start()
    clock.advance(5)
    assert len(writer.submitted) == 2
    assert "could not be written: disk full" in caplog.text


def test_process_names_differ_across_restarts_with_one_pid():
    """If a pid is reused by a restart, then the start time keeps the two names apart."""
    assert process_name("n1", 7, 1.5) != process_name("n1", 7, 2.5)
