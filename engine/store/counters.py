"""
Counts of messages and deliveries by status, kept as the writes happen instead of counted.

Why: ``aiguillage status`` and ``/metrics`` counted every row of the history on each call, so
they slowed down as the store grew. Each write op now adds up what its batch changes (a
:class:`Tally`: +1 for the new status, -1 for the old one, per channel, destination and status)
and applies it with one upsert per key in the batch's own transaction, so the counts are
exactly as durable as the rows they count. Rows are per node (see ``schema.counts``): nodes
sharing a PostgreSQL database never contend on them. Readers sum over nodes: a few dozen rows.

The rate buckets are statistics, not records: a writer adds its events to them at most about
once a second (:mod:`engine.store.pendingrates`).

:func:`recount` counts by scanning, for :func:`differences` (a test, and ``aiguillage db
check-counts``) and :func:`repair`.

test-case-name: tests.store.test_counters
"""
from __future__ import annotations

import time
from collections import defaultdict
from typing import Any, Callable, Iterable, Mapping, Sequence

from sqlalchemy import delete, func, insert, select

from engine import status as st
from engine.store.pendingrates import RATE_FLUSH_SECONDS, PendingRates, RateKey
from engine.store.rawsql import RawStatements, Statement, execute_all, fetch_all
from engine.store.schema import counts, deliveries, messages, rate_buckets

MESSAGE = ""  # the ``destination`` of a message's own count
REPAIR_NODE = ""  # the node of counts made by a migration or a repair
# Not a status: the QUEUED deliveries that have failed at least once (attempts > 0), kept
# beside the statuses so that ``retrying`` costs no walk through a long queue.
RETRYING = "RETRYING"
BUCKET_SECONDS = 10  # the width of a rate bucket
KEEP_SECONDS = 600  # rate buckets older than this are deleted

Key = tuple[str, str, str]  # channel, destination ("" for messages), status
# the columns of the rows Counters.rows gives, in order
COLUMNS = ("node", "channel", "destination", "status", "count")
RATE_COLUMNS = ("node", "channel", "destination", "bucket", "count")


class Tally:
    """What one batch changes in the counts.

    Its two tables are ``defaultdict(int)``, not ``Counter``: the writer makes one per group
    commit and adds to a new key a few times each, and a Counter does both in Python (its
    ``__init__``, its ``__missing__``) where a defaultdict does them in C.
    """

    def __init__(self) -> None:
        self.deltas: defaultdict[Key, int] = defaultdict(int)
        # (channel, destination, bucket) -> arrivals
        self.events: defaultdict[RateKey, int] = defaultdict(int)

    def happened(self, channel: str, destination: str, at: float) -> None:
        """A message arrived (destination ``""``) or a delivery was sent at ``at``."""
        self.events[(channel, destination, int(at // BUCKET_SECONDS))] += 1

    def moved(self, channel: str, destination: str, old: str | None, new: str | None) -> None:
        """One message (destination ``""``) or delivery went from ``old`` to ``new``."""
        if old == new:
            return
        if old is not None:
            self.deltas[(channel, destination, old)] -= 1
        if new is not None:
            self.deltas[(channel, destination, new)] += 1

    def attempted(self, channel: str, destination: str, old: tuple[str, int],
                  new: tuple[str, int]) -> None:
        """A delivery went from (status, attempts) ``old`` to ``new``."""
        self.moved(channel, destination, old[0], new[0])
        was, now = _retrying(*old), _retrying(*new)
        if was != now:  # a retry queued, or one that ended (most outcomes: neither)
            self.moved(channel, destination, was, now)
        if new[0] == st.SENT and old[0] != st.SENT:
            self.happened(channel, destination, time.time())

    def ingested(self, channel: str, status: str, deliveries: Iterable[Any],
                 at: float | None = None) -> None:
        """A new message, received ``at``, committed in ``status`` with ``deliveries``
        (NewDelivery) queued. What :meth:`moved` and :meth:`happened` would add, added here
        at once: every message committed goes through this."""
        deltas = self.deltas
        deltas[(channel, MESSAGE, status)] += 1
        self.events[(channel, MESSAGE,
                     int((time.time() if at is None else at) // BUCKET_SECONDS))] += 1
        for new in deliveries:
            deltas[(channel, new.destination, st.QUEUED)] += 1

    def decided(self, channel: str, status: str, deliveries: Iterable[Any]) -> None:
        """A message committed RECEIVED earlier got its decision: ``status``, with
        ``deliveries`` (NewDelivery) queued."""
        self.moved(channel, MESSAGE, st.RECEIVED, status)
        for new in deliveries:
            self.moved(channel, new.destination, None, st.QUEUED)


class Counters:
    """Applies tallies for one node (writer thread), with SQL built once per dialect; the
    one instance of a writer holds its :class:`PendingRates`, its intake and delivery
    outcomes alike (engine.store.store).

    Every writer applies its count rows in one order, that of their keys (channel,
    destination, status, compared as code points: ``COLLATE "C"`` in PostgreSQL's
    statements, engine.store.pgintake and pgoutcome). Why: a node's processes count on the
    same rows (per node), the intake adding to a destination's QUEUED row while a delivery
    process takes from it and adds to SENT; two transactions locking some of the same rows
    in different orders can deadlock.
    """

    def __init__(self, sql: RawStatements, node: str,
                 clock: Callable[[], float] = time.monotonic,
                 every: float = RATE_FLUSH_SECONDS):
        self._node = node
        self._sql = sql
        self._add = sql.insert_or_add(counts, ("node", "channel", "destination", "status"),
                                      "count")
        self._add_events = sql.insert_or_add(
            rate_buckets, ("node", "channel", "destination", "bucket"), "count")
        self.prune = (f"DELETE FROM {rate_buckets.name} WHERE node = {sql.mark} "
                       f"AND bucket < {sql.mark}")
        self._pruned_before = 0  # the oldest bucket kept at the last prune
        self.rates = PendingRates(clock, every)

    def add(self, conn: Any, tally: Tally, cur: Any = None) -> None:
        """Apply ``tally``, its rate events included, inside the caller's transaction (on
        ``cur`` if given), outside the writer (CLI operations: nothing is left pending)."""
        events = self._rate_rows(tally.events)
        execute_all(conn, [(self._add, self._count_rows(tally)), (self._add_events, events),
                           (self.prune, self.prune_rows(time.time()) if events else [])], cur)

    def writes(self, tally: Tally) -> list[tuple[Statement, list[tuple]]]:
        """What a group commit of the writer writes for ``tally``, each statement with its
        rows, for a caller that writes them with its own (rawsql.execute_all)."""
        rows, events, prune = self.rows(tally)
        return [(self._add, rows), (self._add_events, events), (self.prune, prune)]

    def rows(self, tally: Tally) -> tuple[list[tuple], list[tuple], list[tuple]]:
        """The rows :meth:`writes` gives its statements, for a caller that writes them in a
        statement of its own (engine.store.pgintake): count rows (node, channel,
        destination, status, count), rate bucket rows (node, channel, destination, bucket,
        count) and the :attr:`prune` parameters. The tally's events are staged
        (:class:`PendingRates`); rate rows come only when the pending ones are due."""
        rates = self.rates
        if tally.events:
            rates.stage(tally.events)
        events, prune = self.flush_rows() if rates.due() else ([], [])
        return self._count_rows(tally), events, prune

    def flush_writes(self) -> list[tuple[Statement, list[tuple]]]:
        """The rate events pending and staged, whether due or not, with the prune that goes
        with them (engine.store.pendingrates.FlushRatesOp)."""
        events, prune = self.flush_rows()
        return [(self._add_events, events), (self.prune, prune)]

    def flush_rows(self) -> tuple[list[tuple], list[tuple]]:
        """The rate bucket rows of the events pending and staged (taken: see
        :class:`PendingRates`), and the :attr:`prune` parameters that go with them."""
        events = self._rate_rows(self.rates.take())
        return events, self.prune_rows(time.time()) if events else []

    def _count_rows(self, tally: Tally) -> list[tuple]:
        # in the order of their keys: the order of the row locks (see the class doc)
        return [(self._node, *key, delta) for key, delta in sorted(tally.deltas.items())
                if delta]

    def _rate_rows(self, events: Mapping[RateKey, int]) -> list[tuple]:
        return [(self._node, *key, n) for key, n in sorted(events.items()) if n]

    def prune_rows(self, now: float) -> list[tuple]:
        """The :attr:`prune` parameters of a write of rate buckets at ``now``: none, or once
        per bucket one row."""
        oldest = int((now - KEEP_SECONDS) // BUCKET_SECONDS)
        if oldest <= self._pruned_before:
            return []
        self._pruned_before = oldest
        return [(self._node, oldest)]

    def delivery_moves(self, conn: Any, updates: Sequence[Any]) -> tuple[Tally, list[bool]]:
        """The tally of ``updates`` (DeliveryUpdate), read before they are written: each
        delivery's channel, destination and current status come from its row; and for each
        update, in order, whether it moves its row (the delivery is QUEUED when it applies)."""
        ids = [u.delivery_id for u in updates]
        columns = ("id", "channel", "destination", "status", "attempts")
        sql = self._sql.select_in(deliveries, columns, "id", len(ids))
        current = {row[0]: row[1:] for row in fetch_all(conn, sql, ids)}
        tally, moves = Tally(), []
        for u in updates:  # an update of a delivery no longer QUEUED changes nothing
            moving = u.delivery_id in current and current[u.delivery_id][2] == st.QUEUED
            moves.append(moving)
            if moving:
                channel, destination, *old = current[u.delivery_id]
                tally.attempted(channel, destination, tuple(old), (u.status, u.attempts))
                current[u.delivery_id] = (channel, destination, u.status, u.attempts)
        return tally, moves


def lock_order(*columns: str) -> str:
    """An ``ORDER BY`` list for PostgreSQL's statements that upsert count rows: ``columns``
    (the key's, in order) compared as code points, the order of :meth:`Counters.rows`'
    rows, which every writer locks them in (see :class:`Counters`)."""
    return ", ".join(f'{column} COLLATE "C"' for column in columns)


def _retrying(status: str, attempts: int) -> str | None:
    return RETRYING if status == st.QUEUED and attempts > 0 else None


def add_core(conn: Any, tally: Tally, node: str = REPAIR_NODE) -> None:
    """Apply ``tally`` on an SQLAlchemy connection outside the writer (CLI operations)."""
    Counters(RawStatements(conn.dialect), node).add(conn, tally)


def rates(conn: Any, window: float, now: float | None = None) -> dict[tuple[str, str], float]:
    """Per (channel, destination): arrivals per second over the last ``window`` seconds,
    from the rate buckets (the oldest bucket weighted by the part of it in the window)."""
    now = time.time() if now is None else now
    start = (now - window) / BUCKET_SECONDS
    query = (select(rate_buckets.c.channel, rate_buckets.c.destination, rate_buckets.c.bucket,
                    func.sum(rate_buckets.c.count))
             .where(rate_buckets.c.bucket >= int(start))
             .group_by(rate_buckets.c.channel, rate_buckets.c.destination,
                       rate_buckets.c.bucket))
    found: dict[tuple[str, str], float] = {}
    for channel, destination, bucket, n in conn.execute(query):
        weight = 1.0 if bucket > int(start) else int(start) + 1 - start
        found[(channel, destination)] = found.get((channel, destination), 0.0) + int(n) * weight
    return {key: total / window for key, total in found.items()}


def totals(conn: Any) -> dict[Key, int]:
    """The counts summed over nodes, zeros left out (reads a few rows, whatever the history)."""
    query = (select(counts.c.channel, counts.c.destination, counts.c.status,
                    func.sum(counts.c.count))
             .group_by(counts.c.channel, counts.c.destination, counts.c.status))
    return {(c, d, s): int(n) for c, d, s, n in conn.execute(query) if n}


def recount(conn: Any) -> dict[Key, int]:
    """The counts by scanning every message and delivery: slow on a large store."""
    found: dict[Key, int] = {}
    for channel, status, n in conn.execute(
            select(messages.c.channel, messages.c.status, func.count())
            .group_by(messages.c.channel, messages.c.status)):
        found[(channel, MESSAGE, status)] = n
    for channel, destination, status, n in conn.execute(
            select(deliveries.c.channel, deliveries.c.destination, deliveries.c.status,
                   func.count())
            .group_by(deliveries.c.channel, deliveries.c.destination, deliveries.c.status)):
        found[(channel, destination, status)] = n
    for channel, destination, n in conn.execute(
            select(deliveries.c.channel, deliveries.c.destination, func.count())
            .where(deliveries.c.status == st.QUEUED, deliveries.c.attempts > 0)
            .group_by(deliveries.c.channel, deliveries.c.destination)):
        found[(channel, destination, RETRYING)] = n
    return found


def differences(conn: Any) -> dict[Key, tuple[int, int]]:
    """Keys whose kept count differs from a recount: {key: (kept, recounted)}."""
    kept, found = totals(conn), recount(conn)
    return {key: (kept.get(key, 0), found.get(key, 0)) for key in kept.keys() | found.keys()
            if kept.get(key, 0) != found.get(key, 0)}


def repair(conn: Any) -> None:
    """Replace every kept count by a recount (run with the engines stopped: a write made
    while it runs could be counted twice or not at all)."""
    found = recount(conn)
    conn.execute(delete(counts))
    if found:
        conn.execute(insert(counts), [
            {"node": REPAIR_NODE, "channel": c, "destination": d, "status": s, "count": n}
            for (c, d, s), n in found.items()])
