"""engine.workers.parent_watch: a child stops when its supervisor's pipe closes."""
from __future__ import annotations

import os
import threading

from engine.workers.parent_watch import watch_parent


class ThreadReactor:
    """Records callFromThread calls (run them at once) and signals when one came."""

    def __init__(self) -> None:
        self.called = threading.Event()

    def callFromThread(self, f, *args) -> None:
        f(*args)
        self.called.set()


def test_stop_is_called_once_the_parent_closes_the_pipe():
    """If the parent writes, then closes its end, then stop is called, only after the close."""
    read_end, write_end = os.pipe()
    reactor, stops = ThreadReactor(), []
    thread = watch_parent(reactor, lambda: stops.append(True), fd=read_end)
    os.write(write_end, b"ignored")
    assert not reactor.called.wait(0.2) and stops == []
    os.close(write_end)
    assert reactor.called.wait(5) and stops == [True]
    thread.join(5)
    os.close(read_end)
