"""Tests for engine.flow.queued.QueuedWork: lanes told once per reactor turn (task.Clock)."""
from __future__ import annotations

from twisted.internet import task

from engine.flow.queued import QueuedWork
from engine.store.records import NewDelivery


def test_lanes_are_told_once_on_the_next_turn():
    """If several commits queue deliveries in one reactor turn, then the lanes they name are
    told once, together, on the next turn, each (channel, destination, lane) once."""
    clock, told = task.Clock(), []
    queued = QueuedWork(clock, told.append)
    queued.add("adt", (NewDelivery("dpi", 3), NewDelivery("archive")))
    queued.add("adt", (NewDelivery("dpi", 3),))
    queued.add("lab", (NewDelivery("lis", 1),))
    assert told == []
    clock.advance(0)
    assert told == [{("adt", "dpi", 3), ("adt", "archive", 0), ("lab", "lis", 1)}]
    clock.advance(0)
    assert len(told) == 1


def test_nothing_queued_tells_nobody_and_stop_cancels():
    clock, told = task.Clock(), []
    queued = QueuedWork(clock, told.append)
    queued.add("adt", ())
    assert clock.getDelayedCalls() == []
    queued.add("adt", (NewDelivery("dpi"),))
    queued.stop()
    clock.advance(0)
    assert told == [] and clock.getDelayedCalls() == []
