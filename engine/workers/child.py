"""
The supervisor's view of one child process: a ProcessProtocol that reports its end.

The child writes its log straight to the supervisor's stdout and stderr (inherited
descriptors: no relaying, no copy). Its stdin is a pipe the supervisor holds open and never
writes to: when the supervisor dies, even by ``kill -9``, the pipe closes and the child stops
cleanly (see :mod:`engine.workers.parent_watch`).

test-case-name: tests.workers.test_supervisor
"""
from __future__ import annotations

from typing import Any, Callable

from twisted.internet import error, protocol

CHILD_FDS = {0: "w", 1: 1, 2: 2}  # stdin: a pipe from the supervisor; logs: inherited


def describe_end(reason: Any) -> str:
    """How a child ended, for the log: ``exit code 3``, ``signal 9``, or ``exit code 0``."""
    value = reason.value
    if isinstance(value, (error.ProcessDone, error.ProcessTerminated)):
        if value.signal is not None:
            return f"signal {value.signal}"
        return f"exit code {value.exitCode}"
    return str(value)


class ChildProtocol(protocol.ProcessProtocol):
    """One running child; ``ended(description)`` is called once when it is gone."""

    def __init__(self, name: str, ended: Callable[[str], None]):
        self.name = name
        self._ended = ended

    @property
    def pid(self) -> int | None:
        return None if self.transport is None else self.transport.pid

    def signal(self, name: str) -> bool:
        """Send signal ``name`` ("TERM", "HUP", "KILL", "INT"); False if it is already gone."""
        try:
            self.transport.signalProcess(name)
        except error.ProcessExitedAlready:
            return False
        return True

    def processEnded(self, reason: Any) -> None:
        self._ended(describe_end(reason))
