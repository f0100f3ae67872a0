"""
This process's row in the ``nodes`` table: written at start, every few seconds, gone at stop.

Why: with several processes per node (``--workers``, ``--listeners``) and several nodes on one
PostgreSQL, an operator needs one place that says who runs, in which role, and who stopped
answering. The heartbeat goes through the store's group-commit writer, so it never blocks the
reactor, and a heartbeat that cannot be written (the store is away) is logged and retried at
the next tick: the row's age then tells the operator that this process lost the store.

test-case-name: tests.test_nodes
"""
from __future__ import annotations

import logging
import os
import socket
import time
from importlib import metadata
from typing import Any, Callable

from twisted.internet import defer, task

from engine.store.nodes import HeartbeatOp, LeaveOp, NodeRow

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL = 5.0  # seconds between two heartbeats
STALE_AFTER = 3 * HEARTBEAT_INTERVAL  # `status` marks a process stale after this silence

_HEARTBEAT, _LEAVE = HeartbeatOp(), LeaveOp()


def engine_version() -> str:
    """The installed package's version ("unknown" when run from a bare checkout)."""
    try:
        return metadata.version("aiguillage")
    except metadata.PackageNotFoundError:
        return "unknown"


def process_name(node: str, pid: int, started: float) -> str:
    """This process's key in the table: node, pid and start time, unique across restarts."""
    return f"{node}/{pid}/{started:.6f}"[:255]


class NodeHeartbeat:
    """Keeps this process's row current. ``counters()`` gives (received, sent) so far."""

    def __init__(self, writer: Any, reactor: Any, *, node: str, role: str,
                 counters: Callable[[], tuple[int, int]],
                 interval: float = HEARTBEAT_INTERVAL):
        self._writer = writer
        self._clock = reactor
        self._counters = counters
        self._interval = interval
        pid, started = os.getpid(), time.time()
        self.process = process_name(node, pid, started)
        self._fixed = dict(process=self.process, name=node, pid=pid, role=role,
                           host=socket.gethostname(), started_at=started,
                           version=engine_version())
        self._loop = task.LoopingCall(self.beat)
        self._loop.clock = reactor

    def start(self) -> None:
        """Write the row now, then every ``interval`` seconds."""
        self._loop.start(self._interval, now=True)

    def row(self) -> NodeRow:
        """The row as it stands now."""
        received, sent = self._counters()
        return NodeRow(**self._fixed, heartbeat_at=self._clock.seconds(),
                       received=received, sent=sent)

    def beat(self) -> defer.Deferred:
        """Queue one upsert; Deferred fires after its commit (failures are logged only)."""
        return self._writer.submit(_HEARTBEAT, self.row()).addErrback(self._failed)

    def stop(self) -> defer.Deferred:
        """Stop beating and delete the row (before the writer stops); Deferred.

        Nothing to delete when the heartbeat never started (the store failed to start)."""
        if not self._loop.running:
            return defer.succeed(None)
        self._loop.stop()
        return self._writer.submit(_LEAVE, self.process).addErrback(self._failed)

    def _failed(self, failure: Any) -> None:
        log.warning("node heartbeat of %s could not be written: %s", self.process,
                    failure.getErrorMessage())
