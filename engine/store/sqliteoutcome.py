"""
A batch of delivery outcomes on SQLite in one statement that says which rows it moved: the
write of engine.store.ops.DeliveryUpdateOp there, without reading the rows first.

Why: the counts (engine.store.counters) move from each delivery's current status to its new
one, so the op read the batch's rows (``SELECT ... WHERE id IN (...)``) before it wrote them,
one statement more in every group commit that carries outcomes; a lane that keeps up with the
intake records a few outcomes at a time, and that read weighed on each of them. The lane knows
what the row held when it read it: QUEUED (it reads only those, and holds the lane's lease),
with the attempts it read (``DeliveryUpdate.tried``). So each outcome is applied only to a row
that is still QUEUED with those attempts, by one ``UPDATE ... FROM (VALUES ...) RETURNING``
(SQLite 3.35), and the rows it returns are the ones it moved, with their channel and
destination: their old status and attempts are then known, and the counts with them.

An outcome whose row it did not move is one of two: a delivery no longer QUEUED (an operator
or another process recorded it meanwhile: it must change nothing, and it is not counted), or
one QUEUED with other attempts than the lane read (queued again by a replay after another
process parked it). Those, rare, go the read-then-write way (engine.store.counters
``delivery_moves`` then the conditional UPDATE): what they change, and how they are counted,
is what it was. So is a batch that names a delivery twice (retried and sent within one group
commit: the statement sees the table as it was when it began) or holds an outcome whose
attempts read are unknown (``tried`` None).

test-case-name: tests.store.test_sqliteoutcome
"""
from __future__ import annotations

import sqlite3
from typing import Any, Sequence

from engine import status as st
from engine.store import counters
from engine.store.rawsql import cursor, execute_many

# Outcomes per statement (7 values bound each): a batch is cut into the largest of these
# that fit, and what is left (fewer than the smallest) goes in one statement of its size. So
# the writer's connection prepares at most a few dozen texts whatever the batches' sizes: its
# statement cache (128, the intake's statements among them) keeps them, where one text per
# size prepared most backlog batches' statement anew (a read of 500 sent in batches of 128).
SIZES = (128, 64, 32, 16)
# the VALUES columns, in order (SQLite names them column1, column2...)
VALUES = ("id", "status", "attempts", "next_attempt_at", "last_error", "response", "tried")


def supported(dialect_name: str) -> bool:
    """Whether the dialect named so is SQLite with ``UPDATE ... FROM`` and ``RETURNING``
    (3.35)."""
    return dialect_name == "sqlite" and sqlite3.sqlite_version_info >= (3, 35)


class OutcomeUpdate:
    """The statement of an outcome batch (see the module doc), its text built once per size."""

    def __init__(self, quote: Any, fallback_update: str):
        self._quote = quote
        self._fallback = fallback_update  # the one-row conditional UPDATE (ops.py's)
        self._texts: dict[int, str] = {}

    def write(self, conn: Any, outcomes: Sequence[Any], now: float,
              counts: counters.Counters) -> tuple[counters.Tally, list[bool]] | None:
        """Apply ``outcomes`` (DeliveryUpdate) inside the writer's transaction on ``conn``:
        the counts' tally of what moved, and whether each outcome, in order, moved its row.
        None, having written nothing, for a batch this cannot write (see the module doc)."""
        if any(u.tried is None for u in outcomes) \
                or len({u.delivery_id for u in outcomes}) < len(outcomes):
            return None
        moved: dict[int, tuple[str, str]] = {}  # delivery id: (channel, destination)
        cur = cursor(conn)
        try:
            start = 0
            for size in sizes(len(outcomes)):
                chunk, start = outcomes[start:start + size], start + size
                params: list[Any] = [now]
                for u in chunk:
                    params += (u.delivery_id, u.status, u.attempts, u.next_attempt_at,
                               u.last_error, u.response, u.tried)
                cur.execute(self._text(len(chunk)), params)
                for delivery_id, channel, destination in cur.fetchall():
                    moved[delivery_id] = (channel, destination)
        finally:
            cur.close()
        left = [u for u in outcomes if u.delivery_id not in moved]
        if left:  # not QUEUED any more, or queued again: as the read-then-write way does
            tally, left_moves = counts.delivery_moves(conn, left)
            execute_many(conn, self._fallback, [
                (u.status, u.attempts, now, u.next_attempt_at, u.last_error, u.response,
                 u.delivery_id, st.QUEUED) for u in left])
            moves_of = dict(zip((u.delivery_id for u in left), left_moves))
        else:
            tally, moves_of = counters.Tally(), {}
        moves = []
        for u in outcomes:
            where = moved.get(u.delivery_id)
            if where is None:
                moves.append(moves_of[u.delivery_id])
                continue
            moves.append(True)
            tally.attempted(where[0], where[1], (st.QUEUED, u.tried), (u.status, u.attempts))
        return tally, moves

    def _text(self, count: int) -> str:
        text = self._texts.get(count)
        if text is None:
            text = self._texts[count] = _statement(self._quote, count)
        return text


def sizes(count: int) -> list[int]:
    """The statements' sizes for ``count`` outcomes, in order (see :data:`SIZES`)."""
    cut = []
    for size in SIZES:
        while count >= size:
            cut.append(size)
            count -= size
    return cut + [count] if count else cut


def _statement(quote: Any, count: int) -> str:
    """``count`` outcomes applied to the rows still QUEUED with the attempts read, returning
    those rows' id, channel and destination; ``updated_at`` is the first parameter."""
    d = quote("deliveries")
    column = {name: f"v.column{i}" for i, name in enumerate(VALUES, 1)}
    row = "(" + ", ".join("?" for _ in VALUES) + ")"
    sets = ", ".join(f"{quote(name)} = {column[name]}" for name in
                     ("status", "attempts", "next_attempt_at", "last_error", "response"))
    # QUEUED written into the SQL, as everywhere a status is matched (engine.store.queries)
    return (f"UPDATE {d} SET {quote('updated_at')} = ?, {sets} "
            f"FROM (VALUES {', '.join(row for _ in range(count))}) AS v "
            f"WHERE {d}.{quote('id')} = {column['id']} "
            f"AND {d}.{quote('status')} = '{st.QUEUED}' "
            f"AND {d}.{quote('attempts')} = {column['tried']} "
            f"RETURNING {d}.{quote('id')}, {d}.{quote('channel')}, {d}.{quote('destination')}")
