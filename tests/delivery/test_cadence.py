"""Tests for engine.delivery.cadence: when a lane may read its queue again (pure)."""
from __future__ import annotations

from engine.delivery.cadence import BUSY_READ, BUSY_READ_GAP, NEVER, READ_GAP, read_gap, read_wait


def test_busy_lane_waits_for_the_rest_of_its_gap():
    """If the last read found work and left none unread, then the next read waits until the
    gap since that read's start has passed."""
    assert read_wait(False, 100.0, 0.5, 100.125) == 0.375
    assert read_wait(False, 100.0, 0.5, 100.5) <= 0


def test_backlog_reads_at_once():
    """If the last read left due work unread, then the next read goes at once."""
    assert read_wait(True, 100.0, READ_GAP, 100.0) == 0.0


def test_no_gap_after_no_read_with_work():
    """If no read found work yet (or the last one found nothing), then nothing is waited."""
    assert read_wait(False, NEVER, READ_GAP, 0.0) <= 0


def test_a_read_that_found_many_makes_the_busy_gap():
    """If a read found busy_read deliveries or more, then the next gap is the busy one;
    fewer, the quiet one."""
    assert read_gap(BUSY_READ, 0.02, 0.1) == 0.1
    assert read_gap(BUSY_READ - 1, 0.02, 0.1) == 0.02
    assert read_gap(5, 0.02, 0.1, busy_read=5) == 0.1
    assert BUSY_READ_GAP > READ_GAP
