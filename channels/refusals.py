"""
Accounting for unreadable frames from one connection: each stored, up to a point.

Bad input is stored so an operator can see it, and the sender gets its NAK. But a peer that
sends ten thousand empty frames would then write ten thousand ERROR rows, and a hostile or
broken one can fill the disk that way. :class:`RefusalAccountant` keeps one connection's
tally per time window: the first ``threshold`` unreadable frames of a window are stored one
by one as usual; past that, each is still refused (NAKed by the source) and counted, but
only summed into one :class:`RefusalSummary` (how many, when, the first and last samples),
stored once when the window ends or the connection closes. Nothing goes unaccounted for:
stored rows plus summaries' counts equal the frames refused.

Pure (the clock is passed in), so it is tested without sockets.

test-case-name: tests.channels.test_refusals
"""
from __future__ import annotations

from dataclasses import dataclass

SAMPLE_SIZE = 1024  # bytes of the first and last summarised frames kept


@dataclass
class RefusalSummary:
    """Unreadable frames of one connection and window that were not stored one by one."""

    count: int
    first_at: float
    last_at: float
    first_sample: bytes
    last_sample: bytes
    first_error: str
    last_error: str

    def text(self, peer: str, threshold: int, window: float) -> str:
        """The error stored with the summary: what happened, in one sentence or two."""
        return (f"{self.count} more unreadable frame(s) from {peer} were refused (each "
                f"answered with a NAK) and not stored one by one: over {threshold} in "
                f"{window:g} s. First ({self.first_error}) stored as this record's payload; "
                f"last ({self.last_error}) began {self.last_sample[:80]!r}")


class RefusalAccountant:
    """One connection's tally of unreadable frames, window by window."""

    def __init__(self, threshold: int, window: float):
        self.threshold = threshold
        self.window = window
        self._started: float | None = None
        self._in_window = 0
        self._pending: RefusalSummary | None = None

    def note(self, payload: bytes, error: str,
             now: float) -> tuple[bool, RefusalSummary | None]:
        """Account for one unreadable frame at ``now``.

        Returns (store it on its own?, a summary now due for storing, from a window that
        just ended, or None).
        """
        due = None
        if self._started is None or now - self._started >= self.window:
            due = self.close()
            self._started, self._in_window = now, 0
        self._in_window += 1
        if self._in_window <= self.threshold:
            return True, due
        sample = payload[:SAMPLE_SIZE]
        pending = self._pending
        if pending is None:
            self._pending = RefusalSummary(1, now, now, sample, sample, error, error)
        else:
            pending.count += 1
            pending.last_at, pending.last_sample, pending.last_error = now, sample, error
        return False, due

    def close(self) -> RefusalSummary | None:
        """The summary of the current window, if any frame went into one; the tally restarts."""
        pending, self._pending = self._pending, None
        return pending
