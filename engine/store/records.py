"""
Plain records passed between the engine and the store.

Kept apart from the SQL so that the pipeline and the delivery workers can build and read them
without importing SQLAlchemy.

test-case-name: tests.store.test_ops
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

# The longest MSH values (in characters) a message is stored with: the widths of the columns
# that hold them (engine/store/schema.py), and HL7's own maxima for HD (MSH-3, MSH-4). A
# message whose header holds a longer one is refused for good (AR) and stored in ERROR with
# those values clipped, the same on every database.
HEADER_LIMITS: dict[int, int] = {3: 227, 4: 227, 9: 64, 10: 199, 18: 32}
SENDER_LENGTH = HEADER_LIMITS[3] + 1 + HEADER_LIMITS[4]  # messages.sender: MSH-3 "|" MSH-4


def made(cls: type[T], **values: Any) -> T:
    """``cls(**values)`` for a frozen dataclass, given every one of its fields, without its
    generated ``__init__``: that one sets each field with ``object.__setattr__``, a slow
    call on CPython 3.11, and the intake makes a few such records per message. The object
    is the same (equal, hashed alike, still frozen); a field left out would read its class
    default, so the callers give them all (tests.store.test_records)."""
    instance = object.__new__(cls)
    instance.__dict__.update(values)
    return instance


@dataclass(frozen=True)
class InboundRecord:
    """One inbound message as it is committed before its acknowledgement."""

    channel: str
    received_at: float
    peer: str
    raw: bytes
    status: str  # RECEIVED, or ERROR when it could not be read
    sender: str | None = None
    control_id: str | None = None
    message_type: str | None = None
    charset: str | None = None
    error: str | None = None
    dedupe: bool = True
    # What the channel's plan decided, when it was decided before the commit (a fast plan):
    # the message is committed with that status, error and deliveries in one transaction.
    # None: committed RECEIVED, decided later (a slow plan) with a DecidedMessage.
    decision: "Decision | None" = None
    # What makes a later copy a duplicate, as decoded values (escapes resolved): the
    # components of MSH-3, those of MSH-4, and MSH-10. None: ``sender`` and ``control_id``
    # as they are (records not read from a message's MSH).
    identity: tuple[tuple[str, ...], ...] | None = None


@dataclass(frozen=True)
class IngestResult:
    """What the store made of an :class:`InboundRecord`."""

    message_id: int
    status: str
    duplicate_of: int | None = None
    delivery_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class NewDelivery:
    """A delivery the pipeline decided on: which destination, on which ordering lane."""

    destination: str
    lane: int = 0
    # The bytes to send when this destination's mapping changed the message; None: send the
    # message's raw bytes as received.
    payload: bytes | None = None


@dataclass(frozen=True)
class Decision:
    """What a channel's plan made of one message (:func:`engine.flow.decision.decide`).

    ``status`` is TRANSFORMED (one delivery per destination it goes to), FILTERED or ERROR;
    ``error`` is stored with the message, ``detail`` on its journal line (with ``error``
    first when both are set).
    """

    status: str
    error: str | None = None
    detail: str | None = None
    deliveries: tuple[NewDelivery, ...] = ()
    # When the error has a meaning in HL7's table 0357 (a structural validation failure),
    # its code and ERR-2 location (``PID^1^3``) for the ACK; None: 207, internal error.
    error_code: int | None = None
    error_location: str = ""
    # What answers the sender instead of an ACK once decided (a PIX or PDQ query's RSP);
    # not stored: the query and its audit record are.
    response: bytes | None = None
    # Warnings for the ACK of a message that went through (ERR severity W): (table 0357
    # code, text, ERR-2 location) each; an identity kept for review says why.
    warnings: tuple[tuple[int, str, str], ...] = ()
    # What the message says of its patient's consent (an ADT's opposition field), recorded
    # with the decision, in the same transaction (engine.store.consent).
    consent: tuple["ConsentChange", ...] = ()

    @property
    def journal_detail(self) -> str | None:
        return self.error or self.detail


@dataclass(frozen=True)
class ConsentChange:
    """A patient's opposition (``opposed``) or its withdrawal, read from a message, for each
    of the patient's ``identifiers`` (domain OID, value) in ``scope``."""

    identifiers: tuple[tuple[str, str], ...]
    scope: str
    opposed: bool
    reason: str | None = None


@dataclass(frozen=True)
class DecidedMessage:
    """A decision for a message committed RECEIVED before it was decided (a slow plan, the
    recovery scan, a replay): recorded only if the message is still RECEIVED."""

    message_id: int
    channel: str
    decision: Decision


@dataclass(frozen=True)
class DeliveryUpdate:
    """A delivery attempt's outcome: SENT, QUEUED again (retry later) or ERROR (parked)."""

    delivery_id: int
    message_id: int
    status: str
    attempts: int
    next_attempt_at: float
    last_error: str | None = None
    response: bytes | None = None
    # what the destination said of a success (an XDS registry's warnings): the SENT line's
    # detail, not an error of the row
    detail: str | None = None
    # the attempts the delivery had when its lane read it QUEUED (None: not known): the
    # store then knows the row's old state without reading it (engine.store.sqliteoutcome)
    tried: int | None = None


@dataclass(frozen=True)
class DueDelivery:
    """A queued delivery with what a destination needs to send it."""

    delivery_id: int
    message_id: int
    attempts: int
    next_attempt_at: float
    raw: bytes
    control_id: str | None
    message_type: str | None
    charset: str | None
    peer: str | None = None  # where the message came from, as stored ("mllp://host:port")


@dataclass
class QueuedDeliveries:
    """Deliveries committed in one batch, grouped for the lanes that will send them."""

    by_lane: dict[tuple[str, str, int], list[int]] = field(default_factory=dict)
