"""
Rate events written late: each writer keeps in memory the arrivals and sends its group commits
made, and adds them to ``rate_buckets`` at most once every ``RATE_FLUSH_SECONDS``.

Why: rates are statistics, not records. Unlike the counts (engine.store.counters), which must
stay exact and go in each batch's own transaction, a rate may lag by a second and lose its last
second at a crash. Upserting the buckets in every group commit cost the writer thread its
statement and, on SQLite, one more page (WAL frame) per commit (bench/README.md has the
figures). The events now go in with whichever group commit comes once the interval has passed
(engine.store.counters.Counters.rows), and a commit of their own (:class:`FlushRatesOp`) when
the writer goes idle with some pending and when the store stops (engine.store.store), so that
none waits for ever. The prune of old buckets goes with them.

test-case-name: tests.store.test_pendingrates
"""
from __future__ import annotations

import math
import time
from collections import defaultdict
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from engine.store.rawsql import execute_all
from engine.store.writer import WriteOp

if TYPE_CHECKING:
    from engine.store.counters import Counters

RATE_FLUSH_SECONDS = 1.0  # a writer adds its pending rate events at most this often
RateKey = tuple[str, str, int]  # channel, destination, bucket


class PendingRates:
    """The rate events of one writer's group commits not yet in ``rate_buckets`` (writer
    thread only), and when the last went in.

    Each group commit goes: :meth:`begin` (before its transaction: what one that failed
    staged is dropped, its items stage again when they are written again), :meth:`stage`
    of its events while it writes, :meth:`take` if it writes the pending ones too, and
    :meth:`committed` once it has committed. Events stay pending until a transaction that
    took them commits: none is written twice nor dropped, whatever fails.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 every: float = RATE_FLUSH_SECONDS):
        self._clock = clock
        self._every = every
        self._written_at = -math.inf  # the first group commit writes its events at once
        self.pending: defaultdict[RateKey, int] = defaultdict(int)  # committed, not written
        self._staged: defaultdict[RateKey, int] = defaultdict(int)  # this transaction's
        self._taken = False  # this transaction writes ``pending``

    def begin(self) -> None:
        """A group commit's transaction is about to begin."""
        if self._staged:
            self._staged = defaultdict(int)
        self._taken = False

    def stage(self, events: Mapping[RateKey, int]) -> None:
        """Events the transaction under way writes in its rows."""
        staged = self._staged
        if not staged:  # the common case: one op's events a group commit, copied in C
            self._staged = defaultdict(int, events)
            return
        for key, n in events.items():
            staged[key] += n

    def due(self) -> bool:
        """Whether ``RATE_FLUSH_SECONDS`` have passed since the pending events last went in."""
        return self._clock() - self._written_at >= self._every

    def take(self) -> dict[RateKey, int]:
        """What the transaction under way is to write into ``rate_buckets``: the pending
        events (unless it took them already) and those it staged so far."""
        taken, self._staged = self._staged, defaultdict(int)
        if not self._taken:
            self._taken = True
            for key, n in self.pending.items():
                taken[key] += n
        return taken

    def committed(self) -> None:
        """The transaction under way committed (called again, it changes nothing)."""
        staged = self._staged
        if self._taken:
            self.pending, self._staged = staged, defaultdict(int)
            self._written_at = self._clock()
            self._taken = False
        elif staged:
            self._staged = defaultdict(int)
            if self.pending:
                self.add(staged)
            else:
                self.pending = staged

    def add(self, events: Mapping[RateKey, int]) -> None:
        """Events of a transaction that has committed, read after its commit
        (engine.store.pgoutcome)."""
        pending = self.pending
        for key, n in events.items():
            pending[key] += n


class FlushRatesOp(WriteOp):
    """Write the rate events a writer holds (:class:`PendingRates`) now,
    whether due or not: submitted when the writer goes idle with some, and at stop
    (engine.store.store). Items: anything (None). Each result: whether events are still
    pending after the commit (PostgreSQL's outcomes of the same group commit, read after
    it: engine.store.pgoutcome)."""

    rank = 80  # after the ops that stage events: their events go in with it
    # statistics that may lose their last second at a crash (see the module doc): on
    # PostgreSQL they commit with the delivery outcomes (engine.store.writer), whose sends
    # they count, after them
    durable = False

    def __init__(self, counts: "Counters"):
        self._counts = counts

    def prepare(self, items: Sequence[Any]) -> None:
        self._counts.rates.begin()

    def apply(self, conn: Any, items: Sequence[Any]) -> list[None]:
        execute_all(conn, self._counts.flush_writes())  # the one write of a rate flush
        return [None] * len(items)

    def finish(self, conn: Any, results: list) -> list[bool]:
        self._counts.rates.committed()
        return [bool(self._counts.rates.pending)] * len(results)
