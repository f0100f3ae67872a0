"""
A batch of delivery outcomes on PostgreSQL in one statement that needs no result before the
COMMIT: the write of engine.store.ops.DeliveryUpdateOp there.

Why: the counts (engine.store.counters) move from each delivery's current status to its new
one, so the op read the rows first (``SELECT ... WHERE id IN (...)``) and then wrote. In the
writer's pipeline (engine.store.pgpipeline) that read asks for everything queued so far and its
own rows: one more round trip for the whole group commit, and a batch holding the intake's
messages too had their ACKs wait for two round trips instead of one. Here the server reads the
old statuses itself, in the statement that writes: the batch's BEGIN, writes and COMMIT go
with one Sync.

What the statement does, in its parts (each a ``WITH`` query):

- ``u``: the outcomes, one array per column (engine.store.pgbulk), in the batch's order;
- ``seen``, ``want``, ``fast``: the common case. The lane knows what the row held when it
  read it: QUEUED (it reads only those, and holds the lane's lease), with the attempts it
  read (``DeliveryUpdate.tried``). Each row still so in the statement's snapshot is set to
  its outcome by an UPDATE that does not lock it first: the UPDATE itself waits for a row
  another transaction is changing and checks it again as that one committed it, skipping it
  unless still QUEUED with those attempts. A ``FOR UPDATE`` first, as below, writes each row
  (its lock) and a WAL record a row more, for the rare case that the row changed meanwhile;
- ``rest``, ``locked``, ``old``, ``slow``: the others (a row another process or an operator
  changed, a delivery queued again by a replay, an outcome whose attempts read are unknown):
  their rows, found by their primary key, locked (``FOR UPDATE``, in id order) and read as
  they are now; those QUEUED set to their outcome. A delivery no longer QUEUED keeps its row
  (an outcome recorded late, by a process whose lane another took over, never overwrites
  the SENT or ERROR the other one recorded), as with the one-by-one update;
- ``moved``: the rows either way set to their outcome, with their old attempts (their old
  status is QUEUED);
- ``lines``: each outcome's journal line, but for a SENT without detail that moves its row
  (the row implies it, engine.store.history.journaled_outcome), in the batch's order;
- ``counted``: -1 for each old status and +1 for each new one, and likewise for ``RETRYING``
  (QUEUED with attempts > 0), summed per key (engine.store.counters.Tally.attempted);
- and it answers, per channel and destination, how many deliveries became SENT: read after
  the COMMIT (:class:`Sent`), they are the writer's rate events (engine.store.pendingrates),
  which it adds to the rate buckets later, as the intake's.

A batch that names a delivery twice (retried and sent within one group commit) is applied in
order, the second outcome seeing the first's row; the statement's parts see the table as it
was when it began, so such a batch goes the read-then-write way (engine.store.ops).

test-case-name: tests.store.test_pgoutcome
"""
from __future__ import annotations

import logging
from typing import Any, Sequence

from engine import status as st
from engine.store import counters, pgbulk, pgintake
from engine.store.pgbulk import EncodedArray
from engine.store.schema import counts, deliveries, journal

log = logging.getLogger(__name__)

# each outcome's columns, in the order of the rows :meth:`OutcomeStatement.execute` takes;
# ``detail`` is the journal line's (its error, else what the destination said)
COLUMNS = ("id", "message_id", "status", "attempts", "next_attempt_at", "last_error",
           "response", "detail", "tried")


class OutcomeStatement:
    """The statement of one node's outcome batches (see the module doc), built once."""

    def __init__(self, quote: Any, node: str):
        self._node = node
        self._types = [_array_type(c) for c in COLUMNS]
        self.sql, self.order = pgintake.positional(_statement(quote))

    def write(self, conn: Any, outcomes: Sequence[Any], now: float) -> "Sent | None":
        """Write ``outcomes`` (DeliveryUpdate) inside the writer's transaction on ``conn``;
        what they sent, to read once it has committed. None, having written nothing, for a
        batch that names a delivery twice (the caller writes it in order)."""
        if len({u.delivery_id for u in outcomes}) < len(outcomes):
            return None
        for u in outcomes:
            st.check_transition("delivery", st.QUEUED, u.status)
        bucket = int(now // counters.BUCKET_SECONDS)
        if not outcomes:
            return Sent(None, bucket)
        rows = [(u.delivery_id, u.message_id, u.status, u.attempts, u.next_attempt_at,
                 u.last_error, u.response, u.last_error or u.detail, u.tried)
                for u in outcomes]
        cur = pgintake.raw_cursor(conn)  # read after the commit (Sent)
        try:
            self.execute(cur, rows, now)
        except BaseException:
            cur.close()
            raise
        return Sent(cur, bucket)

    def execute(self, cursor: Any, rows: Sequence[tuple], now: float) -> None:
        """Queue the statement for ``rows`` (one per outcome, :data:`COLUMNS`; no delivery
        twice) on a raw cursor (pgintake.raw_cursor): nothing is read back."""
        pgbulk.register(cursor)
        charset = cursor.connection.info.encoding
        parameters: dict[str, Any] = {
            f"u_{name}": EncodedArray(kind.encode(column, charset))
            for name, kind, column in zip(COLUMNS, self._types, zip(*rows))}
        parameters.update(now=EncodedArray(_FLOAT.encode([now], charset)),
                          node=EncodedArray(_TEXT.encode([self._node], charset)))
        # prepared (psycopg's default: from its sixth call on): planning it at each call
        # cost the server more than the rest. Safe because ``locked`` looks each row up
        # by its key (LATERAL): the generic plan made while ``deliveries`` is small uses
        # the primary key too, where a join would read the table (see pgbulk.update)
        cursor.execute(self.sql, [parameters[name] for name in self.order], prepare=None)


# the batch's scalars go as one-element arrays: one binary encoding for every parameter
_FLOAT = pgbulk.array_type(deliveries, "updated_at")
_TEXT = pgbulk.array_type(deliveries, "channel")


class Sent:
    """A batch's statement once executed, until its answer is read after the commit: how
    many of its deliveries became SENT, per channel and destination, in the bucket of its
    ``now``."""

    __slots__ = ("cursor", "bucket")

    def __init__(self, cursor: Any, bucket: int):
        self.cursor = cursor
        self.bucket = bucket

    def events(self) -> dict[tuple[str, str, int], int]:
        """{(channel, destination, bucket): deliveries sent} (engine.store.pendingrates)."""
        if self.cursor is None:
            return {}
        return {(channel, destination, self.bucket): n
                for channel, destination, n in self.cursor.fetchall()}

    def close(self) -> None:
        if self.cursor is None:
            return
        try:
            self.cursor.close()
        except Exception:  # its connection failed with its batch: nothing left to free
            log.debug("closing an outcome cursor failed", exc_info=True)


def _statement(quote: Any) -> str:
    q = quote
    queued, sent, retrying = (_constant(s) for s in (st.QUEUED, st.SENT, counters.RETRYING))
    table = {t.name: q(t.name) for t in (deliveries, journal, counts)}
    arrays = ", ".join(f"%(u_{c})b::{_array_type(c).name}" for c in COLUMNS)
    now, node = "(%(now)b::float8[])[1]", "(%(node)b::text[])[1]"
    count = q("count")
    count_keys = ", ".join(q(c) for c in ("node", "channel", "destination", "status"))
    d = table["deliveries"]
    sets = ("status = {r}.status, attempts = {r}.attempts, updated_at = " + now
            + ", next_attempt_at = {r}.next_attempt_at, last_error = {r}.last_error, "
            "response = {r}.response")
    return (
        f"WITH u AS MATERIALIZED (SELECT * FROM unnest({arrays}) WITH ORDINALITY "
        f"AS u ({', '.join(q(c) for c in COLUMNS)}, position)), "
        # the common case: each outcome whose row is, in the statement's snapshot, as its
        # lane read it (QUEUED, with the attempts it read), found by its key (LATERAL, one
        # look-up per outcome; OFFSET 0 keeps the planner from making it a join, which
        # could read the table) ...
        f"seen AS MATERIALIZED (SELECT k.* FROM u CROSS JOIN LATERAL (SELECT d.id, "
        f"d.attempts AS tried, d.status AS was FROM {d} AS d WHERE d.id = u.id OFFSET 0) "
        f"AS k), "
        f"want AS MATERIALIZED (SELECT s.*, u.status, u.attempts, u.next_attempt_at, "
        f"u.last_error, u.response FROM seen AS s JOIN u ON u.id = s.id "
        f"WHERE s.was = {queued} AND s.tried = u.tried ORDER BY s.id), "
        # ... changed without a lock first, in id order (the order of the row locks, as
        # below): the UPDATE waits for a row another is changing and checks it again as
        # committed (status and attempts compared with ``want``'s columns: a filter of its
        # own would let the planner take the partial queue index, ix_deliveries_queue,
        # scanned whole per row)
        f"fast AS (UPDATE {d} AS d SET {sets.format(r='w')} FROM want AS w "
        f"WHERE d.id = w.id AND d.attempts = w.tried AND d.status = w.was "
        f"RETURNING d.id, d.channel, d.destination, w.tried, w.status, w.attempts), "
        # the others (rare: a row another changed, a replay, tried unknown): each row by its
        # primary key, locked in id order and read as it is now, moved if QUEUED
        f"rest AS MATERIALIZED (SELECT * FROM u WHERE u.id NOT IN (SELECT id FROM fast)), "
        f"locked AS MATERIALIZED (SELECT l.* FROM (SELECT id FROM rest ORDER BY id) AS o "
        f"CROSS JOIN LATERAL (SELECT d.id, d.channel, d.destination, d.status AS was, "
        f"d.attempts AS tried FROM {d} AS d WHERE d.id = o.id FOR UPDATE) AS l), "
        f"old AS MATERIALIZED (SELECT l.*, r.status, r.attempts, r.next_attempt_at, "
        f"r.last_error, r.response FROM locked AS l JOIN rest AS r ON r.id = l.id "
        f"WHERE l.was = {queued}), "
        f"slow AS (UPDATE {d} SET {sets.format(r='old')} FROM old WHERE {d}.id = old.id), "
        f"moved AS (SELECT id, channel, destination, tried, status, attempts FROM fast "
        f"UNION ALL SELECT id, channel, destination, tried, status, attempts FROM old), "
        f"lines AS (INSERT INTO {table['journal']} (message_id, delivery_id, status, at, detail) "
        f"SELECT u.message_id, u.id, u.status, {now}, u.detail FROM u "
        f"WHERE NOT (u.status = {sent} AND u.detail IS NULL "
        f"AND u.id IN (SELECT id FROM moved)) ORDER BY u.position), "
        f"counted AS (INSERT INTO {table['counts']} ({count_keys}, {count}) "
        f"SELECT {node}, m.channel, m.destination, k.status, sum(k.n) FROM moved AS m "
        f"CROSS JOIN LATERAL (VALUES ({queued}, -1), (m.status, 1), "
        f"(CASE WHEN m.tried > 0 THEN {retrying} END, -1), "
        f"(CASE WHEN m.status = {queued} AND m.attempts > 0 THEN {retrying} END, 1)) "
        f"AS k (status, n) WHERE k.status IS NOT NULL "
        f"GROUP BY m.channel, m.destination, k.status HAVING sum(k.n) <> 0 "
        f"ORDER BY {counters.lock_order('m.channel', 'm.destination', 'k.status')} "
        f"ON CONFLICT ({count_keys}) DO UPDATE "
        f"SET {count} = {table['counts']}.{count} + excluded.{count}) "
        f"SELECT m.channel, m.destination, count(*) FROM moved AS m "
        f"WHERE m.status = {sent} GROUP BY m.channel, m.destination"
    )


def _array_type(column: str) -> pgbulk.ArrayType:
    """The array type of an outcome's column (``detail``: text, as ``last_error``)."""
    return pgbulk.array_type(deliveries, {"detail": "last_error", "tried": "attempts"}.get(
        column, column))


def _constant(value: str) -> str:
    """A status name of the code as an SQL literal (never user input)."""
    if not value.isalnum():
        raise ValueError(f"not a constant name: {value!r}")
    return f"'{value}'"
