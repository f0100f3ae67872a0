"""Tests for channels.refusals: which unreadable frames are stored one by one, and the
summaries of the rest (pure, no clock but numbers)."""
from __future__ import annotations

from channels.refusals import SAMPLE_SIZE, RefusalAccountant


def test_past_the_threshold_frames_go_into_one_summary_per_window():
    accountant = RefusalAccountant(threshold=2, window=60)
    decisions = [accountant.note(f"F{n}".encode(), f"error {n}", n) for n in range(5)]
    assert [store for store, _ in decisions] == [True, True, False, False, False]
    assert all(due is None for _, due in decisions)
    summary = accountant.close()
    assert (summary.count, summary.first_at, summary.last_at) == (3, 2, 4)
    assert (summary.first_sample, summary.last_sample) == (b"F2", b"F4")
    assert (summary.first_error, summary.last_error) == ("error 2", "error 4")
    assert accountant.close() is None


def test_a_new_window_hands_over_the_last_summary_and_stores_again():
    accountant = RefusalAccountant(threshold=1, window=10)
    accountant.note(b"a", "e", 0)
    accountant.note(b"b", "e", 1)
    store, due = accountant.note(b"c", "e", 10)
    assert store and due.count == 1 and due.first_sample == b"b"
    assert accountant.note(b"d", "e", 11) == (False, None)


def test_a_window_under_the_threshold_has_no_summary():
    accountant = RefusalAccountant(threshold=3, window=10)
    assert accountant.note(b"a", "e", 0) == (True, None)
    assert accountant.note(b"b", "e", 20) == (True, None)
    assert accountant.close() is None


def test_samples_are_bounded_and_the_text_counts():
    accountant = RefusalAccountant(threshold=0, window=60)
    accountant.note(b"x" * (SAMPLE_SIZE * 3), "100 empty", 0)
    summary = accountant.close()
    assert len(summary.first_sample) == SAMPLE_SIZE
    text = summary.text("127.0.0.1:5000", 0, 60)
    assert text.startswith("1 more unreadable frame(s) from 127.0.0.1:5000") and "60 s" in text
