"""
What the lane's tests share: one lane of adt-in/archive/0 on a :class:`task.Clock`, a
FakeStore and a FakeDestination (or a FakeBatchDestination), with the helpers that queue
deliveries and read their status back.
"""
from __future__ import annotations

from twisted.internet import task

from engine.config.settings import RetryPolicy
from engine.delivery.lane import Lane, LaneKey
from tests.fakes import FakeBatchDestination, FakeDestination, FakeStore

POLL = 1.0


class Harness:
    """One lane of adt-in/archive/0 on a Clock, a FakeStore and a FakeDestination."""

    def __init__(self, retry: RetryPolicy | None = None, *, hold_commits: bool = False,
                 lane: int = 0):
        self.clock = task.Clock()
        self.clock.advance(1_000_000)  # the lane compares next_attempt_at with clock time
        self.store = FakeStore(hold_commits=hold_commits)
        self.destination = FakeDestination("archive")
        self.retry = retry or RetryPolicy(max_attempts=3, initial_delay=2.0, multiplier=3.0,
                                          max_delay=10.0)
        self.lane = Lane(LaneKey("adt-in", "archive", lane), self.destination, self.retry,
                         self.store, self.clock, poll_interval=POLL, fetch_batch=3)

    def queue(self, count: int = 1, *, lane: int = 0, destination: str = "archive",
              **fields) -> list[int]:
        """Queue ``count`` new messages' deliveries; their ids."""
        ids = []
        for _ in range(count):
            n = len(self.store.messages) + 1
            message_id = self.store.add_message(
                "adt-in", f"MSH|^~\\&|HIS|HOSP|||||ADT^A01|C{n}|P|2.5\r".encode(),
                control_id=f"C{n}", message_type="ADT^A01", charset="UNICODE UTF-8")
            ids.append(self.store.add_delivery(message_id, destination, lane, **fields))
        return ids

    def start(self, lease: float = 1e9) -> None:
        """Give the lane a lease letting it send for ``lease`` seconds from now."""
        self.lane.leased(self.clock.seconds() + lease)

    def status(self, delivery_id: int) -> tuple[str, int]:
        row = self.store.deliveries[delivery_id]
        return row.status, row.attempts


def batch_harness() -> Harness:
    h = Harness()
    h.destination = FakeBatchDestination("archive")
    h.lane = Lane(LaneKey("adt-in", "archive", 0), h.destination, h.retry, h.store, h.clock,
                  poll_interval=POLL, fetch_batch=10, send_batch=4)
    return h
