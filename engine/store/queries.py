"""
What the engine and the CLI read from the store. Every function takes an open connection and
runs in a database thread (never on the reactor): the Store wraps them in Deferreds, the CLI
calls them directly.

test-case-name: tests.store.test_queries
"""
from __future__ import annotations

import time
from typing import Any

from sqlalchemy import and_, func, select

from engine import status as st
from engine.store.records import DueDelivery
from engine.store.schema import deliveries, journal, messages

RATE_WINDOW = 60.0  # seconds: "rate over the last minute"


def fetch_due(conn: Any, channel: str, destination: str, lane: int, after_id: int,
              limit: int) -> list[DueDelivery]:
    """Queued deliveries of one lane after ``after_id``, oldest first, with their payloads."""
    query = (
        select(deliveries.c.id, deliveries.c.message_id, deliveries.c.attempts,
               deliveries.c.next_attempt_at, messages.c.raw, messages.c.control_id,
               messages.c.message_type, messages.c.charset)
        .join(messages, messages.c.id == deliveries.c.message_id)
        .where(deliveries.c.channel == channel, deliveries.c.destination == destination,
               deliveries.c.lane == lane, deliveries.c.status == st.QUEUED,
               deliveries.c.id > after_id)
        .order_by(deliveries.c.id)
        .limit(limit)
    )
    return [DueDelivery(*row) for row in conn.execute(query)]


def received_messages(conn: Any, after_id: int, limit: int) -> list[Any]:
    """Messages committed but not yet processed (RECEIVED), oldest first."""
    query = (
        select(messages.c.id, messages.c.channel, messages.c.raw, messages.c.charset,
               messages.c.control_id, messages.c.message_type)
        .where(messages.c.status == st.RECEIVED, messages.c.id > after_id)
        .order_by(messages.c.id)
        .limit(limit)
    )
    return list(conn.execute(query))


def status_counts(conn: Any, now: float | None = None) -> dict:
    """Per channel and destination: counts by status and the rate over the last minute.

    Shaped for ``aiguillage status --json``: ``{channel: {"received": n, "filtered": n,
    "errored": n, "duplicates": n, "rate_in": msgs/s, "destinations": {name: {"queued": n,
    "sent": n, "errored": n, "rate_out": msgs/s}}}}``.
    """
    now = time.time() if now is None else now
    report: dict = {}
    for channel, status, count in conn.execute(
        select(messages.c.channel, messages.c.status, func.count())
        .group_by(messages.c.channel, messages.c.status)
    ):
        entry = _channel_entry(report, channel)
        entry["received"] += count
        entry[_MESSAGE_KEYS[status]] += count
    for channel, count in conn.execute(
        select(messages.c.channel, func.count())
        .where(messages.c.received_at >= now - RATE_WINDOW)
        .group_by(messages.c.channel)
    ):
        _channel_entry(report, channel)["rate_in"] = round(count / RATE_WINDOW, 2)
    _destination_counts(conn, report, now)
    return report


_MESSAGE_KEYS = {st.RECEIVED: "pending", st.FILTERED: "filtered", st.TRANSFORMED: "processed",
                 st.ERROR: "errored", st.DUPLICATE: "duplicates"}
_DELIVERY_KEYS = {st.QUEUED: "queued", st.SENT: "sent", st.ERROR: "errored"}


def _channel_entry(report: dict, channel: str) -> dict:
    if channel not in report:
        report[channel] = {"received": 0, "pending": 0, "filtered": 0, "processed": 0,
                           "errored": 0, "duplicates": 0, "rate_in": 0.0, "destinations": {}}
    return report[channel]


def _destination_entry(report: dict, channel: str, destination: str) -> dict:
    destinations = _channel_entry(report, channel)["destinations"]
    if destination not in destinations:
        destinations[destination] = {"queued": 0, "sent": 0, "errored": 0, "retrying": 0,
                                     "rate_out": 0.0}
    return destinations[destination]


def _destination_counts(conn: Any, report: dict, now: float) -> None:
    for channel, destination, status, count in conn.execute(
        select(deliveries.c.channel, deliveries.c.destination, deliveries.c.status, func.count())
        .group_by(deliveries.c.channel, deliveries.c.destination, deliveries.c.status)
    ):
        _destination_entry(report, channel, destination)[_DELIVERY_KEYS[status]] += count
    for channel, destination, count in conn.execute(
        select(deliveries.c.channel, deliveries.c.destination, func.count())
        .where(deliveries.c.status == st.QUEUED, deliveries.c.attempts > 0)
        .group_by(deliveries.c.channel, deliveries.c.destination)
    ):
        _destination_entry(report, channel, destination)["retrying"] = count
    for channel, destination, count in conn.execute(
        select(deliveries.c.channel, deliveries.c.destination, func.count())
        .where(deliveries.c.status == st.SENT, deliveries.c.updated_at >= now - RATE_WINDOW)
        .group_by(deliveries.c.channel, deliveries.c.destination)
    ):
        _destination_entry(report, channel, destination)["rate_out"] = round(count / RATE_WINDOW, 2)


def list_messages(conn: Any, *, channel: str | None = None, status: str | None = None,
                  since: float | None = None, until: float | None = None,
                  control_id: str | None = None, limit: int = 50) -> list[dict]:
    """Newest first, without payloads: what ``aiguillage messages list`` shows."""
    conditions = []
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
    detail["journal"] = [
        dict(r._mapping) for r in conn.execute(
            select(journal).where(journal.c.message_id == message_id).order_by(journal.c.id))
    ]
    return detail
