"""
A reviewer's decisions on the queue: accept, reject, or link to another person.

test-case-name: tests.identity.store.test_review
"""
from __future__ import annotations

from typing import Any

from identity.store.history import IdentityError, record
from identity.store.merges import merge
from identity.store.review import decide, open_item_row, reject_pair


def accept(conn: Any, item_id: int, cause: str) -> int:
    """The pair is one person: merge the incoming into the candidate; the survivor."""
    item = open_item_row(conn, item_id)
    if item.candidate_id is None:
        raise IdentityError(f"review item {item_id} proposes no person: link it to one or reject it")
    decide(conn, item_id, "accepted", cause)
    merge(conn, item.candidate_id, item.person_id, cause)
    return item.candidate_id


def reject(conn: Any, item_id: int, cause: str) -> None:
    """The pair is two persons: close the item and never propose the pair again."""
    item = open_item_row(conn, item_id)
    decide(conn, item_id, "rejected", cause)
    if item.candidate_id is not None:
        reject_pair(conn, item.person_id, item.candidate_id, cause)
    record(conn, "reject", item.person_id, cause, other=item.candidate_id, detail={"item": item_id})


def link_to(conn: Any, item_id: int, person_id: int, cause: str) -> int:
    """The incoming is neither new nor the candidate but ``person_id``: merge it there."""
    item = open_item_row(conn, item_id)
    decide(conn, item_id, "linked", cause)
    if item.candidate_id is not None and person_id != item.candidate_id:
        reject_pair(conn, item.person_id, item.candidate_id, cause)
    merge(conn, person_id, item.person_id, cause)
    return person_id
