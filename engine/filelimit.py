"""
The process's open-file limit: raised at start, and watched while the engine runs.

Every connection, file and database handle takes a descriptor. When the process runs out,
``accept`` fails on every listening port at once and Twisted only logs it at INFO: every
sender, well-behaved or not, sees its connections reset. Two defences, besides the sources'
connection caps:

* :func:`raise_open_file_limit` lifts the soft limit to the hard one when ``aiguillage run``
  starts (distributions ship a soft limit of 1024 under a hard one many times higher);
* :class:`DescriptorWatch` counts the open descriptors every few seconds (on Linux, the
  entries of ``/proc/self/fd``: one directory read, cheap) and logs a WARNING, at most once
  per interval, once they pass a share of the limit, while there is still room to act.

test-case-name: tests.test_filelimit
"""
from __future__ import annotations

import logging
import os
from typing import Any, Callable

from twisted.internet import task

log = logging.getLogger(__name__)

CHECK_INTERVAL = 5.0  # seconds between counts
WARN_RATIO = 0.8  # warn past this share of the soft limit
WARN_INTERVAL = 60.0  # at most one warning per this many seconds
_FD_DIRECTORY = "/proc/self/fd"


def raise_open_file_limit() -> tuple[int, int] | None:
    """Set the soft RLIMIT_NOFILE to the hard one; (before, after), None where unsupported."""
    try:
        import resource
    except ImportError:  # not POSIX
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft, soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError) as error:
        log.warning("could not raise the open-file limit from %d to %d: %s", soft, target, error)
        return soft, soft
    return soft, target


def open_file_limit() -> int | None:
    """The soft RLIMIT_NOFILE, or None where there is none to read."""
    try:
        import resource
    except ImportError:
        return None
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return None if soft == resource.RLIM_INFINITY else soft


def open_descriptors() -> int | None:
    """How many descriptors this process holds, or None where it cannot be read cheaply."""
    try:
        return len(os.listdir(_FD_DIRECTORY))
    except OSError:
        return None


def alarm(count: int | None, limit: int | None, ratio: float = WARN_RATIO) -> str | None:
    """The warning to give for ``count`` open descriptors under ``limit``, or None."""
    if count is None or limit is None or count < limit * ratio:
        return None
    return (f"{count} files and sockets open, the process's limit is {limit}: new connections "
            "on every port will fail at the limit; look for a peer holding many connections "
            "(aiguillage_connections_refused, max_connections_per_peer) or raise the limit "
            "(ulimit -n, LimitNOFILE=)")


class DescriptorWatch:
    """Count open descriptors every :data:`CHECK_INTERVAL` seconds; warn near the limit."""

    def __init__(self, clock: Any, *, count: Callable[[], int | None] = open_descriptors,
                 limit: Callable[[], int | None] = open_file_limit,
                 interval: float = CHECK_INTERVAL, warn_interval: float = WARN_INTERVAL):
        self._clock = clock
        self._count = count
        self._limit = limit
        self._interval = interval
        self._warn_interval = warn_interval
        self._last_warning: float | None = None
        self._loop = task.LoopingCall(self.check)
        self._loop.clock = clock
        self.warnings = 0

    def start(self) -> None:
        if not self._loop.running:
            self._loop.start(self._interval, now=True)

    def stop(self) -> None:
        if self._loop.running:
            self._loop.stop()

    def check(self) -> None:
        """One count; a WARNING if it is near the limit and none was given lately."""
        message = alarm(self._count(), self._limit())
        now = self._clock.seconds()
        if message is None or (self._last_warning is not None
                               and now - self._last_warning < self._warn_interval):
            return
        self._last_warning = now
        self.warnings += 1
        log.warning("%s", message)
