"""
The thread a ``file`` destination writes in: one per destination instance (one per lane),
its writes run one at a time, in the order given, each answered on the reactor thread.

Why not a Twisted ``ThreadPool`` of one thread and ``deferToThreadPool``: a lane that keeps
up with the intake hands its destination a small batch at a time, and the pool's bookkeeping
for each call (its coordinator, the worker's queue and condition, the call's context, taken
and restored in both threads) cost more instructions than naming and queuing the batch's
files. Here a call is one put on a queue the thread waits on (``SimpleQueue``, in C), and its
answer one ``callFromThread`` that fires its Deferred. A write that hangs (a mount gone away)
holds this thread, and so this lane, only.

test-case-name: tests.channels.test_file_thread
"""
from __future__ import annotations

import queue
import threading
from typing import Any, Callable

from twisted.internet import defer
from twisted.python.failure import Failure

_STOP = object()


class WritingThread:
    """Runs calls in one thread of its own, in order; Deferreds fire on the reactor."""

    def __init__(self, reactor: Any, name: str):
        self._reactor = reactor
        self._name = name
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Let the calls queued run, then end the thread (blocking until it has ended)."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join()

    def call(self, function: Callable, *args: Any, **kwargs: Any) -> defer.Deferred:
        """Deferred[``function(*args, **kwargs)``] run in the thread (called on the reactor
        thread); failed at once when the thread is not running."""
        if self._thread is None:
            return defer.fail(RuntimeError(f"{self._name}: not running"))
        answer = defer.Deferred()
        self._queue.put((function, args, kwargs, answer))
        return answer

    def _run(self) -> None:
        while True:
            call = self._queue.get()
            if call is _STOP:
                return
            function, args, kwargs, answer = call
            try:
                result = function(*args, **kwargs)
            except BaseException:
                self._reactor.callFromThread(answer.errback, Failure())
            else:
                self._reactor.callFromThread(answer.callback, result)
