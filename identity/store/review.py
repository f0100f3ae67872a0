"""
The review queue: pairs the matcher was not sure of, and the reviewers' decisions.

An item pairs the person an incoming identity became with the person it may
be. Accepting merges the first into the second; linking merges it into a
person the reviewer chose; rejecting records the pair as two persons, and a
rejected pair is never opened again.

test-case-name: tests.identity.store.test_review
"""
from __future__ import annotations

import time
from typing import Any

from sqlalchemy import and_, bindparam, or_, select, update

from identity.store.history import IdentityError, check_cause, record
from identity.store.schema import id_rejected_pairs, id_review

OPEN = "open"

_REJECTED = select(id_rejected_pairs.c.low).where(
    id_rejected_pairs.c.low == bindparam("low"), id_rejected_pairs.c.high == bindparam("high"))
_OPEN_BETWEEN = select(id_review.c.id).where(id_review.c.status == OPEN, or_(
    and_(id_review.c.person_id == bindparam("a"), id_review.c.candidate_id == bindparam("b")),
    and_(id_review.c.person_id == bindparam("b"), id_review.c.candidate_id == bindparam("a"))))
_OPEN_ALONE = select(id_review.c.id).where(
    id_review.c.status == OPEN, id_review.c.person_id == bindparam("a"), id_review.c.candidate_id.is_(None))


def _pair(a: int, b: int) -> dict[str, int]:
    return {"low": min(a, b), "high": max(a, b)}


def is_rejected(conn: Any, a: int, b: int) -> bool:
    return conn.execute(_REJECTED, _pair(a, b)).first() is not None


def reject_pair(conn: Any, a: int, b: int, cause: str) -> None:
    """Remember that ``a`` and ``b`` are two persons (idempotent)."""
    if not is_rejected(conn, a, b):
        conn.execute(id_rejected_pairs.insert().values(at=time.time(), cause=check_cause(cause), **_pair(a, b)))


def _open_between(conn: Any, a: int, b: int) -> int | None:
    return conn.execute(_OPEN_BETWEEN, {"a": a, "b": b}).scalar()


def open_item(conn: Any, person_id: int, candidate_id: int | None, score: float | None,
              reasons: tuple[str, ...], cause: str) -> int | None:
    """Queue the pair for review; None if it was rejected before or is already queued.

    Without a candidate (the sender doubted the identity, the matcher found nobody) the
    item asks a reviewer to look at the person alone; one such item per person is open.
    """
    if candidate_id is None:
        if conn.execute(_OPEN_ALONE, {"a": person_id}).first() is not None:
            return None
    elif person_id == candidate_id or is_rejected(conn, person_id, candidate_id):
        return None
    elif _open_between(conn, person_id, candidate_id) is not None:
        return None
    item = conn.execute(id_review.insert(), {
        "person_id": person_id, "candidate_id": candidate_id, "score": score,
        "reasons": ",".join(reasons), "status": OPEN, "opened_at": time.time(),
        "cause": check_cause(cause)}).inserted_primary_key[0]
    record(conn, "review", person_id, cause, other=candidate_id,
           detail={"item": item, "score": score, "reasons": list(reasons)})
    return item


def open_item_row(conn: Any, item_id: int) -> Any:
    """An open item's row, or IdentityError naming it."""
    row = conn.execute(select(id_review).where(id_review.c.id == item_id)).first()
    if row is None:
        raise IdentityError(f"review item {item_id} does not exist")
    if row.status != OPEN:
        raise IdentityError(f"review item {item_id} is already {row.status}")
    return row


def decide(conn: Any, item_id: int, status: str, cause: str) -> None:
    """Close one item with the reviewer's decision."""
    conn.execute(update(id_review).where(id_review.c.id == item_id).values(
        status=status, decided_at=time.time(), decided_by=check_cause(cause)))


def close_items(conn: Any, person_id: int, cause: str) -> None:
    """Close the open items of a person merged away: there is nothing left to decide."""
    conn.execute(update(id_review).where(id_review.c.status == OPEN, or_(
        id_review.c.person_id == person_id, id_review.c.candidate_id == person_id))
        .values(status="closed", decided_at=time.time(), decided_by=check_cause(cause)))


def open_items(conn: Any, limit: int | None = None, person_id: int | None = None) -> list[dict[str, Any]]:
    """The queue (or the items naming ``person_id``), oldest first."""
    query = select(id_review).where(id_review.c.status == OPEN).order_by(id_review.c.id)
    if person_id is not None:
        query = query.where(or_(id_review.c.person_id == person_id, id_review.c.candidate_id == person_id))
    if limit:
        query = query.limit(limit)
    return [dict(row._mapping) for row in conn.execute(query)]
