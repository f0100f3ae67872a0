"""
The history of the index: every change, the person it touched and what caused it.

A cause is ``message:<id>`` (the stored message that led to the change) or
``operator:<name>`` (a command run by someone); nothing is written without one,
so that any decision can be explained, and the event's detail holds what is
needed to undo it (the identifiers a merge moved, the traits before a change).

test-case-name: tests.identity.store.test_service
"""
from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import or_, select

from identity.store.schema import id_events

CAUSE_KINDS = ("message", "operator")


class IdentityError(ValueError):
    """An index operation that cannot be done; the message names the person, item or identifier."""


def message_cause(message_id: int | str) -> str:
    """The cause of a change made while processing a stored message."""
    return f"message:{message_id}"


def operator_cause(name: str) -> str:
    """The cause of a change an operator made."""
    return f"operator:{name}"


def check_cause(cause: str) -> str:
    """Refuse a change without a cause of a known kind."""
    kind, _, ref = cause.partition(":")
    if kind not in CAUSE_KINDS or not ref:
        raise IdentityError(f"cause {cause!r}: expected message:<id> or operator:<name>")
    return cause


def record(conn: Any, kind: str, person_id: int, cause: str, *, other: int | None = None,
           identifier: tuple[str, str] | None = None, detail: dict | None = None) -> None:
    """Write one history event in the caller's transaction."""
    domain, value = identifier or (None, None)
    conn.execute(id_events.insert(), {
        "at": time.time(), "kind": kind, "person_id": person_id, "other_person_id": other,
        "domain": domain, "value": value, "cause": check_cause(cause),
        "detail": event_detail(detail)})


def event_detail(detail: dict | None) -> str | None:
    """The detail column of an event: JSON, or NULL when there is nothing to add."""
    return json.dumps(detail, ensure_ascii=False, sort_keys=True) if detail else None


def history(conn: Any, person_id: int) -> list[dict[str, Any]]:
    """The events naming ``person_id`` on either side, oldest first."""
    rows = conn.execute(select(id_events).where(or_(
        id_events.c.person_id == person_id, id_events.c.other_person_id == person_id))
        .order_by(id_events.c.id))
    return [{**row._asdict(), "detail": json.loads(row.detail) if row.detail else None}
            for row in rows]
