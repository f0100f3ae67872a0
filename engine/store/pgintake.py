"""
The intake's new rows on PostgreSQL in one statement, where a copy of a stored message is a
duplicate to record, not an error.

Why: the intake writes a batch without first reading its dedupe keys back (a read costs a
round trip before the writes can go, engine.store.pgpipeline). When the unique index on
``messages.dedupe_key`` refused a batch, the whole transaction failed, its connection was
dropped (a failed pipeline can leave psycopg's prepared statements wrong) and the batch went
again with the look-up: a reconnect and two more round trips for every batch holding a message
its sender resent, a common case (an HL7 sender resends what it got no ACK for). Here the
messages go in with ``ON CONFLICT (dedupe_key) DO NOTHING``, and the same statement writes
what its rows depend on for the messages that went in only, and records the others as
duplicates: nothing fails, the batch commits in its one round trip.

What the statement does, in its parts (each a ``WITH`` query; they see the table as it was
when the statement began, and each other's rows only through ``RETURNING``):

- ``fresh``: the new messages, as the intake decided them, each keyed one unless another
  message holds its key already (stored, or committed by another writer meanwhile: the insert
  waits for that writer);
- ``skipped``: the keyed messages ``fresh`` left out: copies of a stored message;
- ``copies``: those, and the later copies of a message within the batch (the intake sends
  them DUPLICATE naming the first), inserted DUPLICATE naming the message that holds the key:
  the first copy if it went in, else the stored one;
- the deliveries and journal lines of every message but the skipped ones; each skipped one's
  DUPLICATE line;
- the counts: the batch's tally (engine.store.counters), taken back for each skipped message
  (its status, its deliveries' QUEUED) and counted DUPLICATE instead;
- the rate buckets, as they are (a copy is an arrival too).

The statement returns each row of ``copies`` (id, the message it is a copy of), for the
intake's answers. A stored message committed by another writer after this statement began is
invisible to it: its copy is then returned naming none, and the intake looks it up once the
batch has committed (engine.store.ops.IngestOp.finish).

Ids: a skipped message keeps its id (its DUPLICATE row has it); the delivery ids it was given
stay unused, a gap in the sequence, the order of the others unchanged.

test-case-name: tests.store.test_pgintake, tests.store.test_stored_keys
"""
from __future__ import annotations

from typing import Any, Sequence

from engine import status as st
from engine.store import pgbulk
from engine.store.pgbulk import EncodedArray
from engine.store.schema import counts, deliveries, journal, messages, rate_buckets

# what the intake gives for each new message besides its row: the key of a later copy within
# the batch (its row holds none), and the error its duplicate row would have
EXTRA_COLUMNS = ("duplicate_key", "duplicate_error")


class IntakeStatement:
    """The intake's batch of new rows on PostgreSQL (see the module doc), built once."""

    def __init__(self, quote: Any, message_columns: Sequence[str],
                 delivery_columns: Sequence[str], journal_columns: Sequence[str],
                 count_columns: Sequence[str], rate_columns: Sequence[str]):
        self._message_types = [pgbulk.array_type(messages, c) for c in message_columns]
        text = pgbulk.array_type(messages, "error")  # both extra columns are text
        self._extra_types = [text for _ in EXTRA_COLUMNS]
        self._delivery_types = [pgbulk.array_type(deliveries, c) for c in delivery_columns]
        self._journal_types = [pgbulk.array_type(journal, c) for c in journal_columns]
        self._count_types = [pgbulk.array_type(counts, c) for c in count_columns]
        self._rate_types = [pgbulk.array_type(rate_buckets, c) for c in rate_columns]
        self.sql = _statement(quote, message_columns, delivery_columns, journal_columns,
                              count_columns, rate_columns)

    def execute(self, cursor: Any, new: Sequence[tuple], extra: Sequence[tuple],
                delivered: Sequence[tuple], lines: Sequence[tuple], count_rows: Sequence[tuple],
                rate_rows: Sequence[tuple]) -> None:
        """Send the batch on ``cursor`` (a psycopg cursor of the writer's transaction);
        its rows (:meth:`copies`) are read once the results are in. ``new``: message rows;
        ``extra``: (duplicate_key, duplicate_error) of each; then the other tables' rows."""
        pgbulk.register(cursor)
        charset = cursor.connection.info.encoding
        parameters: list[EncodedArray] = []
        for types, rows in ((self._message_types + self._extra_types,
                             [row + more for row, more in zip(new, extra)]),
                            (self._delivery_types, delivered), (self._journal_types, lines),
                            (self._count_types, count_rows), (self._rate_types, rate_rows)):
            columns = list(zip(*rows)) if rows else [()] * len(types)
            parameters.extend(EncodedArray(kind.encode(column, charset))
                              for kind, column in zip(types, columns))
        cursor.execute(self.sql, parameters)


# Names the stored message of each copy (ids, keys: two arrays) in the copy's row; returns
# (copy id, stored id) of each one named.
NAME_COPIES = ("UPDATE messages AS copy SET duplicate_of = stored.id "
               "FROM unnest(%s::int8[], %s::text[]) AS wanted (id, key) "
               "JOIN messages AS stored ON stored.dedupe_key = wanted.key "
               "WHERE copy.id = wanted.id RETURNING copy.id, stored.id")


def copies(cursor: Any) -> list[tuple[int, int | None]]:
    """The (id, duplicate_of) of each message the statement stored DUPLICATE."""
    return cursor.fetchall()


def _statement(quote: Any, message_columns: Sequence[str], delivery_columns: Sequence[str],
               journal_columns: Sequence[str], count_columns: Sequence[str],
               rate_columns: Sequence[str]) -> str:
    q = quote
    new_columns = (*message_columns, *EXTRA_COLUMNS)
    message_names = ", ".join(q(c) for c in message_columns)
    duplicate = _constant(st.DUPLICATE)
    queued = _constant(st.QUEUED)
    # a copy's row: the new row's values but for its status, error, key and first copy
    copy_values = ", ".join({
        "status": duplicate, "error": "n.duplicate_error", "dedupe_key": "NULL",
        "duplicate_of": "COALESCE((SELECT e.id FROM messages AS e WHERE e.dedupe_key = "
                        "COALESCE(n.dedupe_key, n.duplicate_key)), CASE WHEN n.duplicate_of "
                        "IN (SELECT id FROM fresh) THEN n.duplicate_of END)",
    }.get(c, f"n.{q(c)}") for c in message_columns)
    journal_names = ", ".join(q(c) for c in journal_columns)
    count_names = ", ".join(q(c) for c in count_columns)
    count_keys = ", ".join(q(c) for c in count_columns[:-1])
    count = q(count_columns[-1])
    rate_names = ", ".join(q(c) for c in rate_columns)
    rate_keys = ", ".join(q(c) for c in rate_columns[:-1])
    rate_count = q(rate_columns[-1])
    tables = {t.name: q(t.name) for t in (messages, deliveries, journal, counts, rate_buckets)}
    return (
        f"WITH new AS MATERIALIZED (SELECT * FROM {_unnest(new_columns, 'n', q)}), "
        f"delivered AS MATERIALIZED (SELECT * FROM {_unnest(delivery_columns, 'd', q)}), "
        f"fresh AS (INSERT INTO {tables['messages']} ({message_names}) "
        f"SELECT {message_names} FROM new WHERE duplicate_of IS NULL "
        f"ON CONFLICT (dedupe_key) DO NOTHING RETURNING id), "
        f"skipped AS MATERIALIZED (SELECT id, channel, received_at, node, status, "
        f"duplicate_error FROM new WHERE dedupe_key IS NOT NULL "
        f"AND id NOT IN (SELECT id FROM fresh)), "
        f"copies AS (INSERT INTO {tables['messages']} ({message_names}) "
        f"SELECT {copy_values} FROM new AS n WHERE n.duplicate_of IS NOT NULL "
        f"OR n.id IN (SELECT id FROM skipped) RETURNING id, duplicate_of), "
        f"delivered_rows AS (INSERT INTO {tables['deliveries']} "
        f"({', '.join(q(c) for c in delivery_columns)}) "
        f"SELECT * FROM delivered WHERE message_id NOT IN (SELECT id FROM skipped)), "
        f"lines AS (INSERT INTO {tables['journal']} ({journal_names}) "
        f"SELECT * FROM {_unnest(journal_columns, 'j', q)} "
        f"WHERE message_id NOT IN (SELECT id FROM skipped) "
        f"UNION ALL SELECT id, NULL, {duplicate}, received_at, duplicate_error FROM skipped), "
        f"counted AS (INSERT INTO {tables['counts']} ({count_names}) "
        f"SELECT {count_keys}, sum({count}) FROM ("
        f"SELECT * FROM {_unnest(count_columns, 'c', q)} "
        f"UNION ALL SELECT node, channel, '', status, -1 FROM skipped "
        f"UNION ALL SELECT node, channel, '', {duplicate}, 1 FROM skipped "
        f"UNION ALL SELECT s.node, d.channel, d.destination, {queued}, -1 "
        f"FROM delivered AS d JOIN skipped AS s ON s.id = d.message_id"
        f") AS tally GROUP BY {count_keys} HAVING sum({count}) <> 0 "
        f"ON CONFLICT ({count_keys}) DO UPDATE "
        f"SET {count} = {tables['counts']}.{count} + excluded.{count}), "
        f"rated AS (INSERT INTO {tables['rate_buckets']} ({rate_names}) "
        f"SELECT * FROM {_unnest(rate_columns, 'r', q)} "
        f"ON CONFLICT ({rate_keys}) DO UPDATE "
        f"SET {rate_count} = {tables['rate_buckets']}.{rate_count} + excluded.{rate_count}) "
        f"SELECT id, duplicate_of FROM copies"
    )


def _unnest(columns: Sequence[str], alias: str, quote: Any) -> str:
    """``unnest(%b::type[], ...) AS alias (columns)``, types from the tables' columns."""
    table = _TABLE_OF[alias]
    types = ["text[]" if column in EXTRA_COLUMNS else pgbulk.array_type(table, column).name
             for column in columns]
    arrays = ", ".join(f"%b::{name}" for name in types)
    return f"unnest({arrays}) AS {alias} ({', '.join(quote(c) for c in columns)})"


_TABLE_OF = {"n": messages, "d": deliveries, "j": journal, "c": counts, "r": rate_buckets}


def _constant(value: str) -> str:
    """A status name of the code as an SQL literal (never user input)."""
    if not value.isalnum():
        raise ValueError(f"not a constant name: {value!r}")
    return f"'{value}'"
