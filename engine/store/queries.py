"""
What the engine and the CLI read from the store. Every function takes an open connection and
runs in a database thread (never on the reactor): the Store wraps them in Deferreds, the CLI
calls them directly.

test-case-name: tests.store.test_queries
"""
from __future__ import annotations

import contextlib
import time
from typing import Any, Iterator

from sqlalchemy import and_, func, select

from engine import status as st
from engine.store import counters, history, pgbulk, rawsql
from engine.store.rawsql import RawStatements
from engine.store.records import DueDelivery, made
from engine.store.schema import deliveries, journal, messages

RATE_WINDOW = 60.0  # seconds: "rate over the last minute"


def fetch_due(conn: Any, channel: str, destination: str, lane: int, limit: int,
              max_bytes: int | None = None) -> DueList:
    """The first ``limit`` queued deliveries of one lane by id, with their payloads, and no
    more of them than fit in ``max_bytes`` of payload (the first is returned whatever its
    size, so that a lane never stalls on a large message).

    Always from the start of the queue, never after a cursor: ids come from per-node blocks,
    so a delivery committed late by another node may have a smaller id than one already
    read, and a replay queues an old id again. A delivery's payload is its own when its
    destination's mapping changed the message (``deliveries.payload``), else the message's
    raw bytes.

    One statement on the DBAPI cursor (a lane reads after every batch it sends). SQLite's
    cursor steps one row at a time: the rows are read until the first that does not fit.
    On PostgreSQL the database itself stops at the budget, from the payloads' lengths (read
    without reading the payloads), so that only the payloads returned cross the connection,
    in one round trip and without a server-side cursor; the rows come in the binary format,
    so that a payload is sent as its bytes, not encoded as hexadecimal text by the server
    and decoded again here.
    """
    budget = NO_BUDGET if max_bytes is None else max_bytes
    sqlite = conn.dialect.name == "sqlite"
    sql = _DUE_SQL.get(conn.dialect.name)
    if sql is None:
        mark = RawStatements(conn.dialect).mark
        sql = _DUE_SQL.setdefault(conn.dialect.name,
                                  _due_sql(mark) if sqlite else _due_within_sql(mark))
    cur = rawsql.cursor(conn)
    try:
        if sqlite:
            cur.execute(sql, (channel, destination, lane, limit))
            return _within(cur, budget)
        params = (channel, destination, lane, limit, budget)
        if pgbulk.supported(conn.dialect):  # payloads as they are, not as hexadecimal text
            with _statement_alone(conn):
                cur.execute(sql, params, binary=True)
                rows = cur.fetchall()
        else:
            cur.execute(sql, params)
            rows = cur.fetchall()
    finally:
        cur.close()
    due = DueList([_due(row) for row in rows])
    due.cut = bool(rows) and len(rows) < rows[0][9]  # the head held more than the budget
    return due


@contextlib.contextmanager
def _statement_alone(conn: Any) -> Iterator[None]:
    """Run the block's one statement in a transaction of its own (psycopg 3, autocommit): a
    read of one statement sees one snapshot either way, and psycopg would send a ``BEGIN``
    before it and the ``COMMIT`` after it (Store.read) in a round trip each, three where one
    does, for every read of a lane. A connection already in a transaction is left as is."""
    from psycopg.pq import TransactionStatus

    driver = conn.connection.driver_connection
    if driver.autocommit or driver.info.transaction_status != TransactionStatus.IDLE:
        yield
        return
    driver.autocommit = True
    try:
        yield
    finally:
        # a connection that broke meanwhile cannot be switched back; the pool drops it
        if not driver.closed and driver.info.transaction_status == TransactionStatus.IDLE:
            driver.autocommit = False


def _within(rows: Any, budget: int) -> DueList:
    """The rows of ``_due_sql`` read one at a time until the first that does not fit."""
    due, total = DueList(), 0
    for row in rows:
        total += row[9] or 0
        if due and total > budget:
            due.cut = True
            break
        due.append(_due(row))
    return due


def _due(row: Any) -> DueDelivery:
    """The delivery a row of ``_due_sql`` reads, by its columns' names; made without the
    frozen dataclass's ``__init__`` (engine.store.records.made): a lane reads every delivery
    it sends, in the read thread."""
    return made(DueDelivery, delivery_id=row[0], message_id=row[1], attempts=row[2],
                next_attempt_at=row[3], raw=row[4], control_id=row[5], message_type=row[6],
                charset=row[7], peer=row[8])


NO_BUDGET = 2**62  # the byte budget of a read given none
_DUE_SQL: dict[str, str] = {}  # fetch_due's statement per dialect, built once
# QUEUED is written into the SQL, not bound: only then may SQLite and PostgreSQL's generic
# plans use the partial index ``ix_deliveries_queue`` (lane, id order, no sort) rather than
# sort every QUEUED delivery of the destination at each read.
_DUE_FROM = f"""FROM deliveries d JOIN messages m ON m.id = d.message_id
    WHERE d.channel = {{mark}} AND d.destination = {{mark}} AND d.lane = {{mark}}
      AND d.status = '{st.QUEUED}'
    ORDER BY d.id LIMIT {{mark}}"""


def _due_sql(mark: str) -> str:
    """The lane's first deliveries with their payloads and the payloads' sizes."""
    return ("SELECT d.id, d.message_id, d.attempts, d.next_attempt_at, "
            "coalesce(d.payload, m.raw), m.control_id, m.message_type, m.charset, m.peer, "
            "coalesce(length(d.payload), length(m.raw)) " + _DUE_FROM.format(mark=mark))


def _due_within_sql(mark: str) -> str:
    """The same rows cut at the byte budget by the database: ``head``, the lane's first
    deliveries with their payloads' sizes; ``due``, their running total and count; then the
    payloads of the first one and of those within the budget, with the head's count (the
    read was cut when fewer rows come back)."""
    return f"""WITH head AS (
    SELECT d.id AS id, d.message_id AS message_id,
           coalesce(length(d.payload), length(m.raw)) AS size
    {_DUE_FROM.format(mark=mark)}),
due AS (
    SELECT id, message_id,
           sum(size) OVER (ORDER BY id ROWS UNBOUNDED PRECEDING) AS upto,
           row_number() OVER (ORDER BY id) AS n,
           count(*) OVER () AS total
    FROM head)
SELECT d.id, d.message_id, d.attempts, d.next_attempt_at, coalesce(d.payload, m.raw),
       m.control_id, m.message_type, m.charset, m.peer, due.total
FROM due JOIN deliveries d ON d.id = due.id JOIN messages m ON m.id = due.message_id
WHERE due.n = 1 OR due.upto <= {mark}
ORDER BY d.id"""


class DueList(list):
    """What :func:`fetch_due` returns: a list of :class:`DueDelivery`; ``cut`` is True when
    queued deliveries were left out to keep within the byte budget (read again for them)."""

    def __init__(self, items: Any = (), cut: bool = False):
        super().__init__(items)
        self.cut = cut


def within_budget(sizes: list[tuple[int, int]], max_bytes: int) -> list[int]:
    """The ids of the longest prefix of (id, size) rows whose sizes add up to at most
    ``max_bytes``; the first id whatever its size."""
    chosen: list[int] = []
    total = 0
    for delivery_id, size in sizes:
        total += size or 0
        if chosen and total > max_bytes:
            break
        chosen.append(delivery_id)
    return chosen


def received_messages(conn: Any, after_id: int, limit: int) -> list[Any]:
    """Messages committed but not yet processed (RECEIVED), oldest first."""
    query = (
        select(messages.c.id, messages.c.channel, messages.c.raw, messages.c.charset,
               messages.c.control_id, messages.c.message_type, messages.c.peer)
        .where(messages.c.status == st.RECEIVED, messages.c.id > after_id)
        .order_by(messages.c.id)
        .limit(limit)
    )
    return list(conn.execute(query))


def status_counts(conn: Any, now: float | None = None) -> dict:
    """Per channel and destination: counts by status and the rate over the last minute.

    Shaped for ``aiguillage status --json``. Both a channel and each of its destinations carry
    ``received``, ``filtered``, ``queued``, ``sent``, ``errored`` and ``rate`` (per second,
    over the last minute: messages in for a channel, deliveries sent for a destination). A
    channel's ``queued`` and ``sent`` add up its destinations'; its ``errored`` counts
    messages that could not be read or processed plus deliveries parked in ERROR. Extra keys:
    ``pending`` (committed, not yet processed), ``duplicates``, ``retrying``.

    The counts (``retrying`` included) come from the ``counts`` table and the rates from the
    ``rate_buckets`` table (engine.store.counters): nothing here grows with the history, the
    queues or the rate.
    """
    now = time.time() if now is None else now
    report: dict = {}
    for (channel, destination, status), count in counters.totals(conn).items():
        if destination == counters.MESSAGE:
            entry = channel_entry(report, channel)
            entry["received"] += count
            key = _MESSAGE_KEYS.get(status)
            if key:
                entry[key] += count
        else:
            _add_delivery_count(report, channel, destination, status, count)
    _rates(conn, report, now)
    return report


_MESSAGE_KEYS = {st.RECEIVED: "pending", st.FILTERED: "filtered", st.ERROR: "errored",
                 st.DUPLICATE: "duplicates"}
_DELIVERY_KEYS = {st.QUEUED: "queued", st.SENT: "sent", st.ERROR: "errored"}
_COUNT_KEYS = ("received", "filtered", "queued", "sent", "errored")


def channel_entry(report: dict, channel: str) -> dict:
    """The report's entry for ``channel``, created with zero counts if absent."""
    if channel not in report:
        report[channel] = dict.fromkeys(_COUNT_KEYS, 0) | {
            "pending": 0, "duplicates": 0, "rate": 0.0, "destinations": {}}
    return report[channel]


def destination_entry(report: dict, channel: str, destination: str) -> dict:
    """The report's entry for one destination of ``channel``, created if absent."""
    destinations = channel_entry(report, channel)["destinations"]
    if destination not in destinations:
        destinations[destination] = dict.fromkeys(_COUNT_KEYS, 0) | {"retrying": 0, "rate": 0.0}
    return destinations[destination]


def _add_delivery_count(report: dict, channel: str, destination: str, status: str,
                        count: int) -> None:
    entry = destination_entry(report, channel, destination)
    if status == counters.RETRYING:  # a part of QUEUED, not a status of its own
        entry["retrying"] = count
        return
    entry["received"] += count
    entry[_DELIVERY_KEYS[status]] += count
    channel_entry(report, channel)[_DELIVERY_KEYS[status]] += count


def _rates(conn: Any, report: dict, now: float) -> None:
    """``rate`` of every channel and destination, from the kept rate buckets."""
    for (channel, destination), rate in counters.rates(conn, RATE_WINDOW, now).items():
        if destination == counters.MESSAGE:
            channel_entry(report, channel)["rate"] = round(rate, 2)
        else:
            destination_entry(report, channel, destination)["rate"] = round(rate, 2)


def list_messages(conn: Any, *, channel: str | None = None, status: str | None = None,
                  since: float | None = None, until: float | None = None,
                  control_id: str | None = None, failed_deliveries: bool = False,
                  limit: int = 50) -> list[dict]:
    """Newest first, without payloads: what ``aiguillage messages list`` shows.

    ``failed_deliveries`` keeps the messages with at least one delivery parked in ERROR
    (the message itself is TRANSFORMED: it was read and routed, a destination refused it).
    """
    conditions = []
    if failed_deliveries:
        parked = select(deliveries.c.message_id).where(deliveries.c.status == st.ERROR)
        conditions.append(messages.c.id.in_(parked))
    if channel:
        conditions.append(messages.c.channel == channel)
    if status:
        conditions.append(messages.c.status == status)
    if since is not None:
        conditions.append(messages.c.received_at >= since)
    if until is not None:
        conditions.append(messages.c.received_at < until)
    if control_id:
        conditions.append(messages.c.control_id == control_id)
    columns = [c for c in messages.c if c.name not in ("raw", "dedupe_key")]
    query = select(*columns).order_by(messages.c.id.desc()).limit(limit)
    if conditions:
        query = query.where(and_(*conditions))
    return [dict(row._mapping) for row in conn.execute(query)]


def message_detail(conn: Any, message_id: int) -> dict | None:
    """One message with its payload, its deliveries and its journal; None if unknown."""
    row = conn.execute(select(messages).where(messages.c.id == message_id)).first()
    if row is None:
        return None
    detail = dict(row._mapping)
    detail["deliveries"] = [
        dict(r._mapping) for r in conn.execute(
            select(deliveries).where(deliveries.c.message_id == message_id)
            .order_by(deliveries.c.id))
    ]
    written = [dict(r._mapping) for r in conn.execute(
        select(journal).where(journal.c.message_id == message_id).order_by(journal.c.id))]
    detail["journal"] = history.lines(detail, detail["deliveries"], written)
    return detail


def queued_count(conn: Any, channel: str, destination: str | None = None,
                 lanes_from: int = 0) -> int:
    """How many deliveries of ``channel`` (of one ``destination``, on lanes numbered
    ``lanes_from`` or more) are QUEUED: what a reload leaves waiting when it removes them."""
    query = select(func.count()).select_from(deliveries).where(
        deliveries.c.channel == channel, deliveries.c.status == st.QUEUED,
        deliveries.c.lane >= lanes_from)
    if destination is not None:
        query = query.where(deliveries.c.destination == destination)
    return conn.execute(query).scalar_one()
