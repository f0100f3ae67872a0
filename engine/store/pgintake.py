"""
The intake's new rows on PostgreSQL in one statement, where a copy of a stored message is a
duplicate to record, not an error: the full way of writing a batch, which
engine.store.ops.IngestOp takes for a batch that holds such a copy (its lean statement, the
plain inserts, refused by the unique index) and for the batches right after one.

Why: the intake writes a batch without first reading its dedupe keys back (a read costs a
round trip before the writes can go, engine.store.pgpipeline). When the unique index on
``messages.dedupe_key`` refused a batch, the whole transaction failed, its connection was
dropped (a failed pipeline can leave psycopg's prepared statements wrong) and the batch went
again with the look-up: a reconnect and two more round trips for every batch holding a message
its sender resent, a common case (an HL7 sender resends what it got no ACK for). Here the
messages go in with ``ON CONFLICT (dedupe_key) DO NOTHING``, and the same statement writes
what its rows depend on for the messages that went in only, and records the others as
duplicates: nothing fails, the batch commits in its one round trip. The server spends more
per message on it than on the plain inserts (the speculative insertion, the parts that find
and leave out the copies), hence the lean way first for a batch after batches without one
(bench/README.md has the figures).

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

import logging
import re
from typing import Any, Sequence

from engine import status as st
from engine.store import counters, pgbulk
from engine.store.pgbulk import EncodedArray
from engine.store.schema import counts, deliveries, journal, messages, rate_buckets

log = logging.getLogger(__name__)

# what the intake gives for each new message besides its row: the key of a later copy within
# the batch (its row holds none), and the error its duplicate row would have
EXTRA_COLUMNS = ("duplicate_key", "duplicate_error")


class IntakeStatement:
    """The intake's batch of new rows on PostgreSQL (see the module doc), built once.

    Its parameters are named, one array per column, each sent once however often the
    statement names it: the part that finds the skipped messages unnests a few columns,
    not the raw bytes, and the copies' part reads the rows again only when there are copies.
    """

    def __init__(self, quote: Any, message_columns: Sequence[str],
                 delivery_columns: Sequence[str], journal_columns: Sequence[str],
                 count_columns: Sequence[str], rate_columns: Sequence[str]):
        self._tables = (("m", messages, (*message_columns, *EXTRA_COLUMNS)),
                        ("d", deliveries, delivery_columns), ("j", journal, journal_columns),
                        ("c", counts, count_columns), ("r", rate_buckets, rate_columns))
        self._types = [[_array_type(table, c) for c in columns]
                       for _, table, columns in self._tables]
        # sent as ``$n`` text on a raw cursor (:func:`raw_cursor`), the names in ``order``
        self.sql, self.order = positional(_statement(quote, message_columns, delivery_columns,
                                                     journal_columns, count_columns,
                                                     rate_columns))

    def execute(self, cursor: Any, new: Sequence[tuple], extra: Sequence[tuple],
                delivered: Sequence[tuple], lines: Sequence[tuple], count_rows: Sequence[tuple],
                rate_rows: Sequence[tuple]) -> None:
        """Send the batch on ``cursor`` (:func:`raw_cursor`, in the writer's transaction);
        its rows (:func:`copies`) are read once the results are in. ``new``: message rows;
        ``extra``: (duplicate_key, duplicate_error) of each; then the other tables' rows."""
        pgbulk.register(cursor)
        charset = cursor.connection.info.encoding
        parameters: dict[str, EncodedArray] = {}
        tables = ([row + more for row, more in zip(new, extra)], delivered, lines, count_rows,
                  rate_rows)
        for (prefix, _, names), types, rows in zip(self._tables, self._types, tables):
            columns = list(zip(*rows)) if rows else [()] * len(types)
            for name, kind, column in zip(names, types, columns):
                parameters[f"{prefix}_{name}"] = EncodedArray(kind.encode(column, charset))
        cursor.execute(self.sql, [parameters[name] for name in self.order])


# Names the stored message of each copy (ids, keys: two arrays) in the copy's row; returns
# (copy id, stored id) of each one named.
NAME_COPIES = ("UPDATE messages AS copy SET duplicate_of = stored.id "
               "FROM unnest(%s::int8[], %s::text[]) AS wanted (id, key) "
               "JOIN messages AS stored ON stored.dedupe_key = wanted.key "
               "WHERE copy.id = wanted.id RETURNING copy.id, stored.id")


def raw_cursor(conn: Any) -> Any:
    """A cursor of an SQLAlchemy connection's psycopg connection that sends ``$n`` statements
    as they are (psycopg's RawCursor).

    Why: psycopg turns ``%(name)s`` placeholders into ``$n`` at every call, and caches that
    work only for statements of at most 4 KiB and 50 parameters; this one is longer, so a
    plain cursor parsed its text again for every batch, in the writer thread.
    """
    import psycopg

    return psycopg.RawCursor(conn.connection.dbapi_connection)


def positional(sql: str) -> tuple[str, tuple[str, ...]]:
    """``sql`` with each ``%(name)b`` written ``$n`` (one number per name, however often
    it appears), and the names in number order."""
    order: dict[str, int] = {}

    def number(match: "re.Match[str]") -> str:
        return f"${order.setdefault(match.group(1), len(order) + 1)}"

    text = _NAMED.sub(number, sql)
    if "%(" in text or "%s" in text or "%b" in text:
        raise ValueError("a placeholder of another kind is left in the statement")
    return text, tuple(order)


_NAMED = re.compile(r"%\((\w+)\)b")


def copies(cursor: Any) -> list[tuple[int, int | None]]:
    """The (id, duplicate_of) of each message the statement stored DUPLICATE."""
    return cursor.fetchall()


def _statement(quote: Any, message_columns: Sequence[str], delivery_columns: Sequence[str],
               journal_columns: Sequence[str], count_columns: Sequence[str],
               rate_columns: Sequence[str]) -> str:
    q = quote
    names = ", ".join(q(c) for c in message_columns)
    duplicate, queued = _constant(st.DUPLICATE), _constant(st.QUEUED)
    # a copy's row: the new row's values but for its status, error, key and first copy
    copy_values = ", ".join({
        "status": duplicate, "error": "n.duplicate_error", "dedupe_key": "NULL",
        "duplicate_of": "COALESCE((SELECT e.id FROM messages AS e WHERE e.dedupe_key = "
                        "COALESCE(n.dedupe_key, n.duplicate_key)), CASE WHEN n.duplicate_of "
                        "IN (SELECT id FROM fresh) THEN n.duplicate_of END)",
    }.get(c, f"n.{q(c)}") for c in message_columns)
    new_columns = (*message_columns, *EXTRA_COLUMNS)
    skipped_columns = ("id", "channel", "received_at", "node", "status", "dedupe_key",
                       "duplicate_error")
    count_keys = ", ".join(q(c) for c in count_columns[:-1])
    count, rate_count = q(count_columns[-1]), q(rate_columns[-1])
    rate_keys = ", ".join(q(c) for c in rate_columns[:-1])
    target = {t.name: q(t.name) for t in (messages, deliveries, journal, counts, rate_buckets)}
    # only when the batch holds a copy (a one-time filter: the rows are not read otherwise)
    any_copy = ("(EXISTS (SELECT 1 FROM skipped) OR EXISTS (SELECT 1 FROM "
                f"{_unnest(messages, 'm', ('duplicate_of',), 'c', q)} "
                "WHERE c.duplicate_of IS NOT NULL))")
    return (
        f"WITH fresh AS (INSERT INTO {target['messages']} ({names}) "
        f"SELECT {names} FROM {_unnest(messages, 'm', message_columns, 'n', q)} "
        f"WHERE n.duplicate_of IS NULL ON CONFLICT (dedupe_key) DO NOTHING RETURNING id), "
        f"skipped AS MATERIALIZED (SELECT * FROM "
        f"{_unnest(messages, 'm', skipped_columns, 'n', q)} "
        f"WHERE n.dedupe_key IS NOT NULL AND n.id NOT IN (SELECT id FROM fresh)), "
        f"copies AS (INSERT INTO {target['messages']} ({names}) "
        f"SELECT {copy_values} FROM {_unnest(messages, 'm', new_columns, 'n', q)} "
        f"WHERE {any_copy} AND (n.duplicate_of IS NOT NULL "
        f"OR n.id IN (SELECT id FROM skipped)) RETURNING id, duplicate_of), "
        f"delivered AS (INSERT INTO {target['deliveries']} "
        f"({', '.join(q(c) for c in delivery_columns)}) "
        f"SELECT * FROM {_unnest(deliveries, 'd', delivery_columns, 'd', q)} "
        f"WHERE d.message_id NOT IN (SELECT id FROM skipped)), "
        f"lines AS (INSERT INTO {target['journal']} "
        f"({', '.join(q(c) for c in journal_columns)}) "
        f"SELECT * FROM {_unnest(journal, 'j', journal_columns, 'j', q)} "
        f"WHERE j.message_id NOT IN (SELECT id FROM skipped) "
        f"UNION ALL SELECT id, NULL, {duplicate}, received_at, duplicate_error FROM skipped), "
        f"counted AS (INSERT INTO {target['counts']} "
        f"({', '.join(q(c) for c in count_columns)}) "
        f"SELECT {count_keys}, sum({count}) FROM ("
        f"SELECT * FROM {_unnest(counts, 'c', count_columns, 'c', q)} "
        f"UNION ALL SELECT node, channel, '', status, -1 FROM skipped "
        f"UNION ALL SELECT node, channel, '', {duplicate}, 1 FROM skipped "
        f"UNION ALL SELECT s.node, d.channel, d.destination, {queued}, -1 FROM "
        f"{_unnest(deliveries, 'd', ('message_id', 'channel', 'destination'), 'd', q)} "
        f"JOIN skipped AS s ON s.id = d.message_id WHERE EXISTS (SELECT 1 FROM skipped)"
        f") AS tally GROUP BY {count_keys} HAVING sum({count}) <> 0 "
        f"ORDER BY {counters.lock_order(*(q(c) for c in count_columns[:-1]))} "  # lock order
        f"ON CONFLICT ({count_keys}) DO UPDATE "
        f"SET {count} = {target['counts']}.{count} + excluded.{count}), "
        f"rated AS (INSERT INTO {target['rate_buckets']} "
        f"({', '.join(q(c) for c in rate_columns)}) "
        f"SELECT * FROM {_unnest(rate_buckets, 'r', rate_columns, 'r', q)} "
        f"ON CONFLICT ({rate_keys}) DO UPDATE "
        f"SET {rate_count} = {target['rate_buckets']}.{rate_count} + excluded.{rate_count}) "
        f"SELECT id, duplicate_of FROM copies"
    )


def _unnest(table: Any, prefix: str, columns: Sequence[str], alias: str, quote: Any) -> str:
    """``unnest(%(prefix_column)b::type[], ...) AS alias (columns)``: the named arrays of
    ``columns`` (each sent once, however often the statement names it)."""
    arrays = ", ".join(f"%({prefix}_{c})b::{_array_type(table, c).name}" for c in columns)
    return f"unnest({arrays}) AS {alias} ({', '.join(quote(c) for c in columns)})"


def _array_type(table: Any, column: str) -> pgbulk.ArrayType:
    """The array type of a column, the extra ones (text) included."""
    if column in EXTRA_COLUMNS:
        return pgbulk.array_type(messages, "error")
    return pgbulk.array_type(table, column)


def _constant(value: str) -> str:
    """A status name of the code as an SQL literal (never user input)."""
    if not value.isalnum():
        raise ValueError(f"not a constant name: {value!r}")
    return f"'{value}'"


class Written:
    """A batch's intake statement (:class:`IntakeStatement`) once executed, until its rows are
    read: its cursor, and the ids and dedupe keys of its new messages."""

    __slots__ = ("cursor", "ids", "keys", "_copied")

    def __init__(self, cursor: Any, ids: list[int], keys: list[str | None]):
        self.cursor = cursor
        self.ids = ids
        self.keys = keys
        self._copied: dict[int, int | None] | None = None

    def copied(self) -> dict[int, int | None]:
        """The messages the statement stored DUPLICATE: {id: the message it copies}. In the
        transaction, reading them ends the pipeline (as a SQLAlchemy statement would)."""
        if self._copied is None:
            self._copied = dict(copies(self.cursor))
        return self._copied

    def close(self) -> None:
        try:
            self.cursor.close()
        except Exception:  # its connection failed with its batch: nothing left to free
            log.debug("closing an intake cursor failed", exc_info=True)
