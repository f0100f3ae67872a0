"""Tests for channels.file_thread: a destination's writes in a thread of its own."""
from __future__ import annotations

import threading

from twisted.internet import defer, reactor
from twisted.trial import unittest

from channels.file_thread import WritingThread


class WritingThreadTests(unittest.TestCase):

    def started(self):
        thread = WritingThread(reactor, "file-destination-test")
        thread.start()
        self.addCleanup(thread.stop)
        return thread

    @defer.inlineCallbacks
    def test_calls_run_in_order_in_one_thread_off_the_reactor(self):
        """If several calls are made, then each runs in the same thread, not the reactor's,
        in the order made, and its Deferred fires with its result."""
        thread, ran = self.started(), []

        def note(n):
            ran.append((n, threading.current_thread().name))
            return n * 2

        answers = yield defer.gatherResults([thread.call(note, n) for n in range(5)])
        self.assertEqual(answers, [0, 2, 4, 6, 8])
        self.assertEqual(ran, [(n, "file-destination-test") for n in range(5)])

    @defer.inlineCallbacks
    def test_a_call_that_raises_fails_its_deferred_and_the_next_runs(self):
        """If a call raises, then its Deferred fails with the error; the thread goes on."""
        thread = self.started()

        def fail():
            raise OSError(28, "No space left on device")

        error = yield self.assertFailure(thread.call(fail), OSError)
        self.assertEqual(error.errno, 28)
        answer = yield thread.call(lambda: "written")
        self.assertEqual(answer, "written")

    @defer.inlineCallbacks
    def test_stop_runs_what_was_queued_then_calls_fail(self):
        """If the thread stops, then the calls queued run first; a call after fails."""
        thread = WritingThread(reactor, "file-destination-test")
        thread.start()
        gate = threading.Event()
        first = thread.call(gate.wait, 5)
        second = thread.call(lambda: "second")
        gate.set()
        thread.stop()
        answers = yield defer.gatherResults([first, second])
        self.assertEqual(answers, [True, "second"])
        self.assertFalse(thread.running)
        yield self.assertFailure(thread.call(lambda: None), RuntimeError)
