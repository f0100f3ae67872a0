"""
Telling the delivery lanes that work was queued for them, once per reactor turn.

Deliveries are committed by the store; the lanes claim them from it. After a commit that
queued deliveries, the lanes named by them are told, so that they need not wait for their
next poll. A group commit fires its messages' callbacks in one reactor turn: the lanes named
by all of them are collected and told together on the next turn, once the ACKs of that
commit have been written, as a set of ``(channel, destination, lane)`` keys.

test-case-name: tests.flow.test_queued
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

from engine.store.records import NewDelivery

LaneKeyTuple = tuple[str, str, int]  # (channel, destination, lane)
WorkQueued = Callable[[set[LaneKeyTuple]], None]


class QueuedWork:
    """Collects the lanes that got deliveries and calls ``work_queued(keys)`` on the next
    reactor turn (``clock``: the reactor, or a task.Clock in tests)."""

    def __init__(self, clock: Any, work_queued: WorkQueued):
        self._clock = clock
        self._work_queued = work_queued
        self._keys: set[LaneKeyTuple] = set()
        self._call: Any = None

    def add(self, channel: str, deliveries: Iterable[NewDelivery]) -> None:
        """``deliveries`` of ``channel`` were committed QUEUED."""
        keys = self._keys
        for delivery in deliveries:
            keys.add((channel, delivery.destination, delivery.lane))
        if keys and self._call is None:
            self._call = self._clock.callLater(0, self._flush)

    def _flush(self) -> None:
        self._call = None
        keys, self._keys = self._keys, set()
        self._work_queued(keys)

    def stop(self) -> None:
        """Tell nobody any more: the lanes find their work in the store when they start."""
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        self._keys = set()
