"""
The writes the engine makes, each applied to a whole batch at once (writer thread only).

Every function here runs inside the group-commit transaction opened by
:class:`engine.store.writer.GroupCommitWriter`; none of them commits.

test-case-name: tests.store.test_ops
"""
from __future__ import annotations

import logging
import time
from typing import Any, Iterator, Sequence

from engine import status as st
from engine.store import (
    consent, counters, dedupekey, history, pgintake, pgoutcome, sqliteoutcome)
from engine.store.records import (
    DecidedMessage,
    Decision,
    DeliveryUpdate,
    InboundRecord,
    IngestResult,
    made,
)
from engine.store.idblocks import IdAllocator
from engine.store.rawsql import RawStatements, cursor, execute_all, execute_many, fetch_all
from engine.store.schema import deliveries, journal, messages
from engine.store.writer import WriteOp

log = logging.getLogger(__name__)

def dedupe_key(record: InboundRecord) -> str | None:
    """The key that makes a later copy of this message a duplicate, or None if it has none."""
    if not record.dedupe or record.status != st.RECEIVED or not record.control_id:
        return None
    identity = record.identity or ((record.sender or "",), (record.control_id,))
    return dedupekey.key(record.channel, identity)


MESSAGE_COLUMNS = tuple(c.name for c in messages.c)
# A new delivery's row: not yet tried, so without the columns an attempt fills (``attempts``
# takes its server default, 0; ``last_error`` and ``response`` NULL). Fewer values bound per
# delivery: Python 3.11's sqlite3 binds each None through its adaptation protocol
# (engine.store.sqlitebind), several times the cost of an int's bind.
UNTRIED = ("attempts", "last_error", "response")
DELIVERY_COLUMNS = tuple(c.name for c in deliveries.c if c.name not in UNTRIED)
JOURNAL_COLUMNS = ("message_id", "delivery_id", "status", "at", "detail")
DELIVERY_UPDATE_COLUMNS = ("status", "attempts", "updated_at", "next_attempt_at", "last_error",
                           "response")


class IngestOp(WriteOp):
    """Commit messages with what was decided of them: the one write of a message's outcome.

    Two kinds of items, one code path for the outcome (:meth:`_decide`):

    - an :class:`InboundRecord` is inserted (its first journal line, duplicates detected);
      one whose plan decided before the commit (``record.decision``) is committed with that
      status, error and deliveries in the same transaction; of its journal, only what its
      rows do not imply is written (:mod:`engine.store.history`);
    - a :class:`DecidedMessage` records the decision of a message committed RECEIVED earlier
      (a slow plan decided off the reactor thread, the recovery scan, a replay), only if it
      is still RECEIVED: deciding a message twice (seen by the scan while its first decision
      was under way) queues its deliveries once. Its result is then None.

    Delivery ids are given here, in the order of the batch: a channel's decisions submitted
    in arrival order get increasing ids, which is the order its lanes send them in.

    A batch goes one of two ways:

    - lean (the common batch, with no copy of a stored message): no look-up of its keys (a
      statement per batch, on PostgreSQL a round trip before the writes) for copies that
      hardly ever come; the plain inserts (rawsql.execute_all) go, the unique index on
      ``dedupe_key`` refusing a stored key (or one another writer commits meanwhile). The
      batch then fails, is rolled back, and :meth:`again` has the writer write it once more
      the full way, with the same ids, on the same connection (pgpipeline's on PostgreSQL);
    - full: a message whose key is stored is recorded DUPLICATE instead, with what its
      decision would have written left out: on PostgreSQL in one statement
      (:mod:`engine.store.pgintake`), the stored messages named after the commit
      (:meth:`finish`); elsewhere the keys are looked up first. A batch that held such a
      copy and the ones after it go this way, ``FULL_BATCHES`` in all, counted again from
      each that holds one (a sender that resends often keeps it).

    Duplicates within one batch are found here in every case.
    """

    rank = 10

    def __init__(self, message_ids: IdAllocator, node: str, sql: RawStatements,
                 delivery_ids: IdAllocator | None = None,
                 counts: counters.Counters | None = None):
        self._ids = message_ids
        self._delivery_ids = delivery_ids
        self._node = node
        self._sql = sql
        # the writer's, shared with its other ops: their rate events are written together
        self._counts = counts or counters.Counters(sql, node)
        self._insert_message = sql.insert(messages, MESSAGE_COLUMNS)
        self._insert_delivery = sql.insert(deliveries, DELIVERY_COLUMNS)
        self._insert_line = sql.insert(journal, JOURNAL_COLUMNS)
        self._set_status = sql.update(messages, ("status", "error"), ("id", "status"))
        self._select_keys: dict[int, str] = {}  # batch size -> the dedupe lookup's SQL
        # PostgreSQL: the batch's new rows in one statement that records copies (see above)
        self._intake = pgintake.IntakeStatement(
            sql.quote, MESSAGE_COLUMNS, DELIVERY_COLUMNS, JOURNAL_COLUMNS, counters.COLUMNS,
            counters.RATE_COLUMNS) if sql.bulk else None
        self._written: pgintake.Written | None = None  # the last apply's, until finish reads it
        # how many batches go the full way before the lean one is tried again, and where the
        # id allocators stood when a lean batch began (for again)
        self._full_batches = 0
        self._lean_marks: tuple | None = None
        # the items prepare was given, sorted out (_sorted_out), for apply
        self._prepared: tuple[Sequence, tuple] | None = None

    def prepare(self, items: Sequence[InboundRecord | DecidedMessage]) -> None:
        self._counts.rates.begin()
        self._prepared = (items, _sorted_out(items))  # apply is given the same list next
        records, _, queued = self._prepared[1]
        if records:
            self._ids.reserve(len(records))
        if queued and self._delivery_ids is not None:
            self._delivery_ids.reserve(queued)

    def apply(self, conn: Any, items: Sequence[InboundRecord | DecidedMessage]) -> list:
        """One result per item, in order; items are applied in the batch's order, so that
        delivery ids follow the order decisions were submitted in, whatever their kind."""
        self._forget()
        prepared, self._prepared = self._prepared, None
        records, decided, queued = (prepared[1] if prepared is not None and prepared[0] is items
                                    else _sorted_out(items))
        lean = self._full_batches == 0
        self._lean_marks = self._marks() if lean else None
        self._full_batches = max(self._full_batches - 1, 0)
        ids = self._ids.take(len(records)) if records else []
        keys = [dedupe_key(r) for r in records]
        # lean: the unique index refuses a stored key; full: looked up, or on PostgreSQL
        # found by the statement (see the class doc)
        seen = {} if lean or self._intake is not None else self._existing_keys(
            conn, [k for k in keys if k])
        if seen:
            self.write_full_way(FULL_BATCHES)  # copies of stored messages come in runs
        fresh = self._still_received(conn, decided) if decided else set()
        batch, now, results = _Batch(), time.time(), []
        if queued:  # the batch's delivery ids at once, handed out in the batch's order
            batch.delivery_ids = iter(self._take_delivery_ids(queued))
        next_id, key_of = iter(ids), iter(keys)
        for item in items:
            if isinstance(item, InboundRecord):
                results.append(self._insert(next(next_id), item, next(key_of), seen, batch))
            elif item.message_id in fresh:
                fresh.discard(item.message_id)
                results.append(self._decided(item, now, batch))
            else:
                results.append(None)  # no longer RECEIVED: decided already
        if self._intake is not None and not lean:
            self._write_with_copies(conn, batch, ids, keys)
        else:
            self._write(conn, batch)  # the lean way, a stored key fails it (see again)
        for message_id, changes, cause, at in batch.consent:
            # a copy's decision is not its own: the stored message's was recorded already
            if self._written is None or message_id not in self._written.copied():
                consent.apply_changes(conn, changes, cause, at)
        return results

    def again(self, error: BaseException) -> bool:
        """A lean batch failed on a key stored already: write it once more the full way,
        with the ids it had, and the batches after it likewise (see the class doc)."""
        marks, self._lean_marks = self._lean_marks, None
        if marks is None or not stored_key_refused(error):
            return False
        self.write_full_way(FULL_BATCHES)
        message_ids, delivery_ids = marks
        self._ids.rewind(message_ids)
        if delivery_ids is not None and self._delivery_ids is not None:
            self._delivery_ids.rewind(delivery_ids)
        return True

    def _marks(self) -> tuple:
        """Where the id allocators stand (:meth:`again` rewinds them)."""
        return (self._ids.mark(),
                self._delivery_ids.mark() if self._delivery_ids is not None else None)

    def write_full_way(self, batches: int) -> None:
        """Write the next ``batches`` batches the full way (PostgreSQL; see the class doc),
        the lean way after them."""
        self._full_batches = batches

    def finish(self, conn: Any, results: list) -> list:
        """The results of the batch just committed (writer thread, after the commit): on
        PostgreSQL, a message the statement found stored already is DUPLICATE, naming the
        stored one (looked up now if another writer committed it while the statement ran).
        The batch's staged rate events are pending from now on (engine.store.pendingrates)."""
        self._counts.rates.committed()
        written, self._written = self._written, None
        if written is None:
            return results
        try:
            copied = written.copied()
        finally:
            written.close()
        if not copied:
            return results
        keys = dict(zip(written.ids, written.keys))  # the new messages' (not the decided)
        if any(first not in keys for first in copied.values()):
            # a copy of a stored message (not of one of this batch): they come in runs
            self.write_full_way(FULL_BATCHES)
        unnamed = {i: keys[i] for i, first in copied.items() if first is None}
        if unnamed:
            copied.update(self._name_copies(conn, unnamed))
        for position, result in enumerate(results):
            if isinstance(result, IngestResult) and result.message_id in copied \
                    and result.message_id in keys:
                results[position] = made(IngestResult, message_id=result.message_id,
                                         status=st.DUPLICATE,
                                         duplicate_of=copied[result.message_id],
                                         delivery_ids=())
        return results

    def _write(self, conn: Any, batch: "_Batch") -> None:
        cur = cursor(conn)  # one for the batch's statements
        try:
            execute_many(conn, self._set_status, batch.updates, cur)
            # new rows, each kind in a table of its own: one statement on PostgreSQL
            execute_all(conn, [(self._insert_message, batch.messages),
                               (self._insert_delivery, batch.deliveries),
                               (self._insert_line, batch.lines),
                               *self._counts.writes(batch.tally)], cur)
        finally:
            cur.close()

    def _write_with_copies(self, conn: Any, batch: "_Batch", ids: list[int],
                           keys: list[str | None]) -> None:
        """PostgreSQL: the batch's new rows in one statement (engine.store.pgintake), whose
        rows :meth:`finish` reads once the transaction has committed."""
        counted, rated, prune = self._counts.rows(batch.tally)
        cur = cursor(conn)
        try:
            execute_many(conn, self._set_status, batch.updates, cur)
            execute_many(conn, self._counts.prune, prune, cur)
        finally:
            cur.close()
        if not (batch.messages or batch.deliveries or batch.lines or counted or rated):
            return
        own = pgintake.raw_cursor(conn)  # read after the commit: a cursor of its own
        self._written = pgintake.Written(own, ids, keys)
        self._intake.execute(own, batch.messages, batch.extra, batch.deliveries, batch.lines,
                             counted, rated)

    def _name_copies(self, conn: Any, keys: dict[int, str | None]) -> dict[int, int | None]:
        """The stored message of each copy (its id: its key) that the statement could not
        see (committed by another writer while it ran), written in the copies' rows too."""
        wanted = [(i, k) for i, k in keys.items() if k is not None]
        if not wanted:
            return {}
        try:  # never raises: the batch has committed, it must not be written again
            with conn.begin():  # transaction boundary: the copies' names, after their batch
                cur = cursor(conn)
                try:
                    cur.execute(pgintake.NAME_COPIES, ([i for i, _ in wanted],
                                                       [k for _, k in wanted]))
                    return dict(cur.fetchall())
                finally:
                    cur.close()
        except Exception:
            log.exception("naming the stored messages of %d copies failed", len(wanted))
            return {}

    def _forget(self) -> None:
        """Drop what a batch that did not commit left (its cursor), before the next one."""
        written, self._written = self._written, None
        if written is not None:
            written.close()

    def _insert(self, message_id: int, record: InboundRecord, key: str | None,
                seen: dict[str, int], batch: "_Batch") -> IngestResult:
        status, duplicate_of, copy_key = record.status, None, None
        if key is not None and key in seen:
            status, duplicate_of, key, copy_key = st.DUPLICATE, seen[key], None, key
        elif key is not None:
            seen[key] = message_id
        batch.extra.append((copy_key, record.error))
        if status not in _NEW_MESSAGE:  # the transition table's answer, read once (below)
            st.check_transition("message", None, status)
        decision = record.decision if status == st.RECEIVED else None
        first, then = history.journaled_at_ingest(
            decision and decision.status, decision and decision.journal_detail)
        if first:  # else implied by the message's row (engine.store.history)
            batch.lines.append((message_id, None, status, record.received_at, record.error))
        delivery_ids: tuple[int, ...] = ()
        error = record.error
        if decision is not None:
            status, error = decision.status, decision.error
            delivery_ids = self._decide(message_id, record.channel, decision,
                                        record.received_at, batch, journaled=then)
        batch.messages.append((
            message_id, record.channel, record.received_at, self._node, record.peer,
            record.sender, record.control_id, record.message_type, record.charset, status,
            error, key, duplicate_of, record.raw))
        batch.tally.ingested(record.channel, status,
                             record.decision.deliveries if delivery_ids else (),
                             record.received_at)
        return made(IngestResult, message_id=message_id, status=status,
                    duplicate_of=duplicate_of, delivery_ids=delivery_ids)

    def _decided(self, item: DecidedMessage, now: float, batch: "_Batch") -> IngestResult:
        decision = item.decision
        batch.updates.append((decision.status, decision.error, item.message_id, st.RECEIVED))
        delivery_ids = self._decide(item.message_id, item.channel, decision, now, batch)
        batch.tally.decided(item.channel, decision.status, decision.deliveries)
        return IngestResult(item.message_id, decision.status, None, delivery_ids)

    def _decide(self, message_id: int, channel: str, decision: Decision, at: float,
                batch: "_Batch", journaled: bool = True) -> tuple[int, ...]:
        """Journal a RECEIVED message's decision (unless its row implies the line) and
        queue its deliveries (their ids; their QUEUED lines are implied by their rows)."""
        if decision.status not in _DECIDED_MESSAGE:
            st.check_transition("message", st.RECEIVED, decision.status)
        if journaled:
            batch.lines.append((message_id, None, decision.status, at,
                                decision.journal_detail))
        if decision.consent:
            batch.consent.append((message_id, decision.consent, f"message:{message_id}", at))
        if not decision.deliveries:
            return ()
        ids = []
        for new in decision.deliveries:
            delivery_id = next(batch.delivery_ids)
            ids.append(delivery_id)
            batch.deliveries.append((delivery_id, message_id, channel, new.destination,
                                     new.lane, st.QUEUED, at, at, at, new.payload))
        return tuple(ids)

    def _take_delivery_ids(self, count: int) -> list[int]:
        """``count`` delivery ids for a batch's decisions (an upper bound: a copy, or a
        message no longer RECEIVED, leaves a gap)."""
        if self._delivery_ids is None:
            raise RuntimeError("this IngestOp was built without a delivery id allocator")
        return self._delivery_ids.take(count)

    def _existing_keys(self, conn: Any, keys: list[str]) -> dict[str, int]:
        if not keys:
            return {}
        sql = self._select_keys.get(len(keys))
        if sql is None:  # one text per batch size, built once (at most batch_max of them)
            sql = self._sql.select_in(messages, ("dedupe_key", "id"), "dedupe_key", len(keys))
            self._select_keys[len(keys)] = sql
        return dict(fetch_all(conn, sql, keys))

    def _still_received(self, conn: Any, message_ids: list[int]) -> set[int]:
        status = self._sql.equals_constant("status", st.RECEIVED)
        sql = self._sql.select_in(messages, ("id",), "id", len(message_ids), extra=status)
        if conn.dialect.name == "postgresql":
            sql += " FOR UPDATE"
        return {row[0] for row in fetch_all(conn, sql, message_ids)}


def _sorted_out(items: Sequence[InboundRecord | DecidedMessage]
                ) -> tuple[list[InboundRecord], list[int], int]:
    """A batch's new messages, the ids of its decided ones, and how many deliveries its
    decisions queue at most (what a decision of a copy, or of a message no longer RECEIVED,
    would queue is counted: its ids are then a gap)."""
    records, decided, queued = [], [], 0
    for item in items:
        if isinstance(item, InboundRecord):
            records.append(item)
        else:
            decided.append(item.message_id)
        if item.decision is not None:
            queued += len(item.decision.deliveries)
    return records, decided, queued


# The statuses a new message, a RECEIVED message's decision, and a QUEUED delivery's outcome
# may take: the transition table's (engine.status), read once; a status outside them goes
# through its check and fails.
_NEW_MESSAGE = st.TRANSITIONS[("message", None)]
_DECIDED_MESSAGE = st.TRANSITIONS[("message", st.RECEIVED)]
_QUEUED_DELIVERY = st.TRANSITIONS[("delivery", st.QUEUED)]

# PostgreSQL: batches written the full way from one that held a copy of a stored message on
# (that one included): the lean way costs a copy's batch a failed attempt and two round trips
FULL_BATCHES = 32


def stored_key_refused(error: BaseException) -> bool:
    """Whether ``error`` is the database refusing a row of ``messages`` for a unique key: on
    PostgreSQL any (the dedupe key; or an id, which the full way cannot help: it then fails
    again and the writer goes one by one), on SQLite the dedupe key. The driver's own error,
    or SQLAlchemy's wrapping it."""
    error = getattr(error, "orig", None) or error
    if getattr(error, "sqlite_errorname", None) == SQLITE_UNIQUE:
        return str(error) == SQLITE_KEY_REFUSED
    diag = getattr(error, "diag", None)
    return (getattr(error, "sqlstate", None) == UNIQUE_VIOLATION and diag is not None
            and diag.table_name == messages.name)


UNIQUE_VIOLATION = "23505"  # PostgreSQL's SQLSTATE
SQLITE_UNIQUE = "SQLITE_CONSTRAINT_UNIQUE"  # sqlite3's name of the error
SQLITE_KEY_REFUSED = f"UNIQUE constraint failed: {messages.name}.dedupe_key"


class _Batch:
    """The rows one :meth:`IngestOp.apply` writes, each kind in one ``executemany``."""

    __slots__ = ("messages", "extra", "updates", "deliveries", "lines", "tally", "consent",
                 "delivery_ids")

    def __init__(self) -> None:
        self.delivery_ids: Iterator[int] = iter(())  # taken for the batch, in its order
        self.tally = counters.Tally()  # what the rows change in the kept counts
        self.messages: list[tuple] = []
        # of each message: the key of a later copy within the batch, and the record's error
        # (engine.store.pgintake)
        self.extra: list[tuple] = []
        self.updates: list[tuple] = []
        self.deliveries: list[tuple] = []
        self.lines: list[tuple] = []
        # (message id, changes, cause, at) of decisions that carry some
        self.consent: list[tuple] = []


class DeliveryUpdateOp(WriteOp):
    """Record delivery attempts: SENT, QUEUED again for a retry, or parked in ERROR.

    Each item is the tuple of outcomes of one lane's batch (one for a single send): they
    commit together or not at all, and their submitter gets one answer for them. The SENT
    line of a delivery its outcome moves from QUEUED is implied by its row, not written
    (:mod:`engine.store.history`)."""

    rank = 30
    durable = False  # a lost outcome is a resend (GroupCommitWriter._parts, docs/operations.md)

    def __init__(self, sql: RawStatements, node: str = "node",
                 counts: counters.Counters | None = None):
        # the writer's, shared with its other ops: their rate events are written together
        self._counts = counts or counters.Counters(sql, node)
        # Only a QUEUED delivery changes: an outcome recorded late (by a process whose lane
        # another took over) never overwrites the SENT or ERROR the other one recorded.
        self._update = sql.update(deliveries, DELIVERY_UPDATE_COLUMNS, ("id", "status"))
        self._insert_line = sql.insert(journal, JOURNAL_COLUMNS)
        self._outcomes = pgoutcome.OutcomeStatement(sql.quote, node) if sql.bulk else None
        # SQLite: one statement that says which rows it moved, no read (sqliteoutcome)
        self._returning = (sqliteoutcome.OutcomeUpdate(sql.quote, self._update)
                           if sqliteoutcome.supported(sql.dialect_name) else None)
        self._sent: pgoutcome.Sent | None = None  # the last apply's, until finish reads it

    def prepare(self, items: Sequence[Sequence[DeliveryUpdate]]) -> None:
        self._counts.rates.begin()

    def apply(self, conn: Any, items: Sequence[Sequence[DeliveryUpdate]]) -> list[None]:
        now = time.time()
        outcomes = [u for item in items for u in item]
        self._forget()
        if self._outcomes:  # PostgreSQL: one statement, no read (pgoutcome)
            self._sent = self._outcomes.write(conn, outcomes, now)
            if self._sent is not None:
                return [None] * len(items)
        for u in outcomes:  # before anything is written; the table's answer read once (below)
            if u.status not in _QUEUED_DELIVERY:
                st.check_transition("delivery", st.QUEUED, u.status)
        written = self._returning and self._returning.write(conn, outcomes, now, self._counts)
        if written:
            tally, moves = written
        else:  # read the rows before they change, then write
            tally, moves = self._counts.delivery_moves(conn, outcomes)
            execute_many(conn, self._update, [
                (u.status, u.attempts, now, u.next_attempt_at, u.last_error, u.response,
                 u.delivery_id, st.QUEUED) for u in outcomes])
        lines = []
        for u, moving in zip(outcomes, moves):
            detail = u.last_error or u.detail
            if history.journaled_outcome(u.status, detail, moving):  # else implied
                lines.append((u.message_id, u.delivery_id, u.status, now, detail))
        execute_all(conn, [(self._insert_line, lines), *self._counts.writes(tally)])
        return [None] * len(items)

    def finish(self, conn: Any, results: list) -> list:
        """After the commit: the staged rate events are pending; on PostgreSQL, those of the
        deliveries the statement moved to SENT (its answer, read now) too."""
        self._counts.rates.committed()
        sent, self._sent = self._sent, None
        if sent is not None:
            try:
                self._counts.rates.add(sent.events())
            except Exception:  # the batch has committed: only its rates are lost
                log.exception("reading the deliveries a batch of outcomes sent failed")
            finally:
                sent.close()
        return results

    def _forget(self) -> None:
        """Drop what a batch that did not commit left (its cursor), before the next one."""
        sent, self._sent = self._sent, None
        if sent is not None:
            sent.close()

