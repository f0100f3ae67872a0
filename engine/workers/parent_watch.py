"""
A child's watch on its supervisor: when the supervisor is gone, the child stops cleanly.

The supervisor holds the write end of the child's stdin and never writes to it; the read end
sees end-of-file only when the supervisor's process has ended, however it ended. A daemon
thread waits on that read (a blocking call, off the reactor) and asks the reactor to stop,
which runs the engine's clean stop: nothing acknowledged is lost, no child is left serving
without its supervisor.

test-case-name: tests.workers.test_parent_watch
"""
from __future__ import annotations

import logging
import os
import threading
from typing import Any, Callable

log = logging.getLogger(__name__)


def wait_for_end_of_file(fd: int) -> None:
    """Block until ``fd`` reads end-of-file (or fails); what was written is discarded."""
    while True:
        try:
            if not os.read(fd, 4096):
                return
        except OSError:
            return


def watch_parent(reactor: Any, stop: Callable[[], Any], fd: int = 0) -> threading.Thread:
    """Call ``stop`` on the reactor thread once ``fd`` (stdin) is closed by the parent."""
    def run() -> None:
        wait_for_end_of_file(fd)
        reactor.callFromThread(_gone, stop)

    thread = threading.Thread(target=run, name="aiguillage-parent-watch", daemon=True)
    thread.start()
    return thread


def _gone(stop: Callable[[], Any]) -> None:
    log.warning("the supervisor is gone (stdin closed): stopping")
    stop()
