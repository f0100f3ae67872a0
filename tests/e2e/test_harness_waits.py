"""The e2e harness's waits, on a fake clock: a slow count that keeps growing is waited for,
a count that stops growing fails with where it stopped."""
from __future__ import annotations

from twisted.internet import task
from twisted.trial import unittest

from tests.e2e import harness as h


class WaitWhileProgressingTests(unittest.TestCase):

    def test_slow_growth_is_waited_for_past_the_stall_time(self):
        """If a count grows by one every 20 s with a stall limit of 30 s, then the wait
        ends once the target is reached, 200 s later, without failing."""
        clock, seen = task.Clock(), [0]
        done = h.wait_while_progressing(lambda: seen[0], 10, 30, reactor=clock, interval=1)
        for _ in range(10):
            clock.advance(20)
            seen[0] += 1
            clock.advance(0)
        clock.advance(1)
        self.assertIsNone(self.successResultOf(done))

    def test_a_stalled_count_fails_naming_where_it_stopped(self):
        """If a count stops at 3 of 10, then the wait fails 30 s later and says 3 of 10."""
        clock, seen = task.Clock(), [3]
        done = h.wait_while_progressing(lambda: seen[0], 10, 30, "the sink has everything",
                                        reactor=clock, interval=1)
        clock.pump([1] * 29)
        self.assertNoResult(done)
        clock.pump([1] * 2)
        failure = self.failureResultOf(done, AssertionError)
        self.assertIn("stalled at 3 of 10 for 30 s waiting until the sink has everything",
                      str(failure.value))
