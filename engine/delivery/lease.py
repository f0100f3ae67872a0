"""
Lease arithmetic: how long a process may go on sending a lane it claimed.

A process holds a lane while the store says so: the lease row names it as owner until
``lease_until`` (database time). It renews its leases every ``renew_every`` seconds; one that
dies stops renewing and another process takes the lane over once the lease has run out.

The owner must also stop *itself* in time, when it cannot renew (the store is unreachable):
otherwise it would go on sending while another process, seeing the lease run out, sends the
same lane. So each renewal gives a local deadline for *starting* a send, counted from the
moment the renewal was asked (earlier than the database's ``now``, so never too late), ending
``guard`` seconds before the lease itself: a send started before the deadline has that much
time to finish before anyone else may take the lane.

Pure: no clock, no store; the service passes the times in.

test-case-name: tests.delivery.test_lease
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

DEFAULT_TTL = 30.0


@dataclass(frozen=True)
class LeasePolicy:
    """How long a lease lasts, how often it is renewed, how early a holder stops sending."""

    ttl: float = DEFAULT_TTL

    def __post_init__(self) -> None:
        if self.ttl <= 0:
            raise ValueError(f"a lease must last more than 0 s, got {self.ttl}")

    @property
    def renew_every(self) -> float:
        """A third of the lease: two renewals in a row may fail before it is at risk."""
        return self.ttl / 3

    @property
    def guard(self) -> float:
        """Time left to a send started just before the deadline, before the lease ends."""
        return self.ttl / 3

    def send_deadline(self, asked_at: float) -> float:
        """Until when (local clock) a lane renewed by a request made at ``asked_at`` may start
        sends."""
        return asked_at + self.ttl - self.guard


def may_send(deadline: float, now: float) -> bool:
    """Whether a lane whose lease gives ``deadline`` may start a send at ``now``."""
    return now < deadline


def process_owner(node: str, pid: int | None = None, started: float | None = None) -> str:
    """The owner name of this process in the lease table: node, pid and start time.

    Unique per process, also across restarts that reuse a pid, so a new process never mistakes
    the leases of its dead predecessor for its own and never sends beside it.
    """
    pid = os.getpid() if pid is None else pid
    started = time.time() if started is None else started
    return f"{node}/{pid}/{started:.6f}"[:255]
