"""A reactor that spawns fake processes, for the supervisor's tests (task.Clock for time).

:class:`FakeProcessReactor` stands for IReactorProcess + IReactorTime, :class:`FakeProcess`
for the IProcessTransport calls the supervisor makes; both are checked against those
interfaces in tests/workers/test_fakes.py.
"""
from __future__ import annotations

from typing import Any

from twisted.internet import error, task
from twisted.python.failure import Failure


class FakeProcess:
    """A spawned process: records the signals it got; :meth:`end` makes it exit."""

    def __init__(self, protocol: Any, args: list[str], pid: int, childFDs: Any):
        self.protocol = protocol
        self.args = args
        self.pid: int | None = pid
        self.child_fds = childFDs
        self.signals: list[str] = []

    def signalProcess(self, signalID: Any) -> None:
        if self.pid is None:
            raise error.ProcessExitedAlready()
        self.signals.append(signalID)

    def end(self, *, code: int = 0, signal: int | None = None) -> None:
        """The process exits with ``code``, or is ended by ``signal``."""
        self.pid = None
        reason = error.ProcessDone(None) if code == 0 and signal is None else \
            error.ProcessTerminated(exitCode=None if signal else code, signal=signal)
        self.protocol.processEnded(Failure(reason))


class FakeProcessReactor(task.Clock):
    """Records every spawnProcess; each gets the next pid from 1000."""

    def __init__(self) -> None:
        super().__init__()
        self.spawned: list[FakeProcess] = []

    def spawnProcess(self, processProtocol: Any, executable: Any, args: Any = (), env: Any = None,
                     path: Any = None, uid: Any = None, gid: Any = None, usePTY: Any = False,
                     childFDs: Any = None) -> FakeProcess:
        process = FakeProcess(processProtocol, list(args), 1000 + len(self.spawned), childFDs)
        self.spawned.append(process)
        processProtocol.makeConnection(process)
        return process

    def running(self) -> list[FakeProcess]:
        return [p for p in self.spawned if p.pid is not None]
