"""
The supervisor: spawns the node's child processes, forwards signals, restarts the dead.

It runs in the main process beside its engine. Each child is an ``aiguillage run --role ...
--supervised`` of its own (see :func:`engine.workers.plan.child_arguments`). A child that
ends while the supervisor runs is restarted after a delay that doubles while it keeps dying
quickly (:func:`engine.workers.plan.restart_delay`), each time logged with how it ended.
``stop`` sends SIGTERM (each child's clean stop: answer what was read, commit, close) and
SIGKILL to whoever is still there after ``stop_timeout``; it fires once all have ended.

A child's states: RUNNING (spawned), WAITING (dead, a restart scheduled), STOPPED (the
supervisor stops, or stopped it). One method per transition.

test-case-name: tests.workers.test_supervisor
"""
from __future__ import annotations

import enum
import logging
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Sequence

from twisted.internet import defer

from engine.workers.child import CHILD_FDS, ChildProtocol
from engine.workers.plan import STABLE_AFTER, ChildSpec, child_arguments, restart_delay

log = logging.getLogger(__name__)

STOP_TIMEOUT = 90.0  # seconds a child has to stop cleanly before SIGKILL


class State(enum.Enum):
    RUNNING = "running"
    WAITING = "waiting"  # ended; a restart is scheduled
    STOPPED = "stopped"


@dataclass
class _Child:
    spec: ChildSpec
    state: State = State.STOPPED
    protocol: ChildProtocol | None = None
    pid: int | None = None
    started_at: float = 0.0
    failures: int = 0  # quick deaths in a row
    restarts: int = 0
    restart_call: Any = None
    ended: list[defer.Deferred] = field(default_factory=list)


class Supervisor:
    """Runs ``specs`` as child processes of ``reactor`` (an IReactorProcess and IReactorTime)."""

    def __init__(self, reactor: Any, specs: Sequence[ChildSpec], config_path: str, *,
                 executable: str = sys.executable, stop_timeout: float = STOP_TIMEOUT):
        self._reactor = reactor
        self._config_path = config_path
        self._executable = executable
        self._stop_timeout = stop_timeout
        self.children = {spec.name: _Child(spec) for spec in specs}
        self._stopping = False

    def start(self) -> None:
        """Spawn every child."""
        for child in self.children.values():
            self._spawn(child)

    def signal_all(self, name: str) -> None:
        """Send signal ``name`` ("HUP", "TERM"...) to every running child."""
        for child in self.children.values():
            if child.state is State.RUNNING:
                child.protocol.signal(name)

    def pids(self) -> dict[str, int | None]:
        """The pid of each running child, by name."""
        return {name: c.pid for name, c in self.children.items()
                if c.state is State.RUNNING}

    def stop(self) -> defer.Deferred:
        """SIGTERM every child, SIGKILL after the timeout; Deferred fires when all ended."""
        self._stopping = True
        waits = [self._stop_child(child) for child in self.children.values()]
        return defer.gatherResults(waits).addCallback(lambda _: None)

    # -- transitions ----------------------------------------------------------------------

    def _spawn(self, child: _Child) -> None:
        """STOPPED or WAITING -> RUNNING."""
        child.restart_call = None
        child.protocol = ChildProtocol(child.spec.name, lambda how, c=child: self._ended(c, how))
        args = [self._executable, *child_arguments(child.spec, self._config_path)]
        self._reactor.spawnProcess(child.protocol, self._executable, args, env=dict(os.environ),
                                   childFDs=CHILD_FDS)
        child.state, child.started_at = State.RUNNING, self._reactor.seconds()
        child.pid = child.protocol.pid
        log.info("child %s started (pid %s, role %s)", child.spec.name, child.pid,
                 child.spec.role)

    def _ended(self, child: _Child, how: str) -> None:
        """RUNNING -> WAITING (restart scheduled), or STOPPED while the supervisor stops."""
        waiters, child.ended = child.ended, []
        if self._stopping:
            child.state = State.STOPPED
            log.info("child %s stopped (%s)", child.spec.name, how)
            for waiter in waiters:
                waiter.callback(None)
            return
        lived = self._reactor.seconds() - child.started_at
        child.failures = 1 if lived >= STABLE_AFTER else child.failures + 1
        delay = restart_delay(child.failures)
        child.state, child.restarts = State.WAITING, child.restarts + 1
        child.restart_call = self._reactor.callLater(delay, self._spawn, child)
        log.warning("child %s (pid %s) ended unexpectedly (%s); restarting it in %.1f s",
                    child.spec.name, child.pid, how, delay)

    def _stop_child(self, child: _Child) -> defer.Deferred:
        """WAITING -> STOPPED at once; RUNNING -> SIGTERM, SIGKILL after the timeout."""
        if child.state is State.WAITING:
            child.restart_call.cancel()
            child.state = State.STOPPED
        if child.state is State.STOPPED:
            return defer.succeed(None)
        ended: defer.Deferred = defer.Deferred()
        child.ended.append(ended)
        child.protocol.signal("TERM")
        kill = self._reactor.callLater(self._stop_timeout, self._kill, child)
        return ended.addBoth(_cancel_then, kill)

    def _kill(self, child: _Child) -> None:
        log.warning("child %s did not stop within %.0f s: SIGKILL", child.spec.name,
                    self._stop_timeout)
        child.protocol.signal("KILL")


def _cancel_then(result: Any, call: Any) -> Any:
    if call.active():
        call.cancel()
    return result
