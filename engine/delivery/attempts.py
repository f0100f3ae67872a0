"""
The records a lane makes for every delivery it sends: the context its destination is given,
and the outcome of a send that went through.

Both are frozen dataclasses, made here with :func:`engine.store.records.made` rather than
their generated ``__init__``, which sets each field through ``object.__setattr__`` (a slow
call on CPython 3.11): a lane makes one of each for every delivery, on the reactor thread.
The objects are the same (equal, hashed alike, still frozen; tests.delivery.test_attempts).

test-case-name: tests.delivery.test_attempts
"""
from __future__ import annotations

from typing import Sequence

from engine import status as st
from engine.interfaces import DeliveryContext
from engine.store.records import DeliveryUpdate, DueDelivery, made


def contexts_for(channel: str, batch: Sequence[DueDelivery]) -> list[DeliveryContext]:
    """What the destination knows of each delivery of ``batch`` (of ``channel``) besides its
    payload, this attempt counted."""
    return [made(DeliveryContext, channel=channel, message_id=due.message_id,
                 delivery_id=due.delivery_id, control_id=due.control_id,
                 message_type=due.message_type, attempt=due.attempts + 1, charset=due.charset,
                 peer=due.peer) for due in batch]


def sent_update(due: DueDelivery, at: float, response: bytes | None,
                note: str | None) -> DeliveryUpdate:
    """The outcome of ``due`` sent at ``at``: SENT, this attempt counted, with what the
    destination answered (``response``) and said of it (``note``, the SENT line's detail)."""
    return made(DeliveryUpdate, delivery_id=due.delivery_id, message_id=due.message_id,
                status=st.SENT, attempts=due.attempts + 1, next_attempt_at=at,
                last_error=None, response=response, detail=note, tried=due.attempts)
