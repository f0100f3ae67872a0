"""
Message and delivery statuses, and the one table of allowed transitions.

A message's status follows its source side: it is RECEIVED when committed, then FILTERED (a
filter dropped it), TRANSFORMED (the pipeline ran and one delivery per destination was queued),
ERROR (it could not be read or processed) or DUPLICATE (same sender and MSH-10 as an earlier
message, acknowledged again and not processed). A delivery follows one destination: QUEUED
until SENT, or ERROR once its retries are spent; a replay queues it again.

Nobody else decides what may follow what: the store checks every change against
:data:`TRANSITIONS` before writing it, so a status set from a wrong place fails loudly.

test-case-name: tests.test_status
"""
from __future__ import annotations

RECEIVED = "RECEIVED"
FILTERED = "FILTERED"
TRANSFORMED = "TRANSFORMED"
DUPLICATE = "DUPLICATE"
QUEUED = "QUEUED"
SENT = "SENT"
ERROR = "ERROR"

MESSAGE_STATUSES = (RECEIVED, FILTERED, TRANSFORMED, DUPLICATE, ERROR)
DELIVERY_STATUSES = (QUEUED, SENT, ERROR)

# (kind, from) -> allowed targets. ``None`` is "not yet stored".
TRANSITIONS: dict[tuple[str, str | None], frozenset[str]] = {
    ("message", None): frozenset({RECEIVED, ERROR, DUPLICATE}),
    # A message is RECEIVED again only by a replay, which runs the pipeline anew.
    ("message", RECEIVED): frozenset({FILTERED, TRANSFORMED, ERROR}),
    ("message", FILTERED): frozenset({RECEIVED}),
    ("message", TRANSFORMED): frozenset({RECEIVED}),
    ("message", ERROR): frozenset({RECEIVED}),
    ("message", DUPLICATE): frozenset(),
    ("delivery", None): frozenset({QUEUED}),
    # QUEUED -> QUEUED is a failed attempt that will be retried.
    ("delivery", QUEUED): frozenset({QUEUED, SENT, ERROR}),
    ("delivery", SENT): frozenset(),
    ("delivery", ERROR): frozenset({QUEUED}),
}


class IllegalTransition(ValueError):
    """A status change the transition table does not allow."""


def check_transition(kind: str, current: str | None, target: str) -> None:
    """Raise :class:`IllegalTransition` unless ``current -> target`` is allowed for ``kind``."""
    allowed = TRANSITIONS.get((kind, current))
    if allowed is None or target not in allowed:
        raise IllegalTransition(f"{kind} status {current or 'new'} -> {target} is not allowed")
