"""
Merge two persons into one, and undo it.

A merge moves every identifier of the merged person to the survivor, takes the
merged person out of the candidate index and keeps its row and traits
(``merged_into``); the history event lists the identifiers moved, which is
what :func:`unmerge` moves back. Undoing a merge says the two are different
persons: the pair is recorded as rejected so that it is not proposed again.

test-case-name: tests.identity.store.test_service
"""
from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import and_, select, update

from identity.matching.profile import profile
from identity.store.history import IdentityError, record
from identity.store.index import index_person, unindex_person
from identity.store.persons import active_person, identifiers_of, person_row, traits_of
from identity.store.review import close_items, reject_pair
from identity.store.schema import ACTIVE, MERGED, id_events, id_identifiers, id_persons


def merge(conn: Any, survivor: int, merged: int, cause: str, by: str = "merge") -> list[tuple[str, str]]:
    """Merge ``merged`` into ``survivor``; the identifiers moved.

    ``by`` says what asked for it (``merge``, or ``link`` for an ADT A24 link, which
    only an unlink undoes); it is kept in the event's detail."""
    if survivor == merged:
        raise IdentityError(f"person {survivor} cannot be merged into itself")
    active_person(conn, survivor)
    active_person(conn, merged)
    moved = identifiers_of(conn, merged)
    conn.execute(update(id_identifiers).where(id_identifiers.c.person_id == merged)
                 .values(person_id=survivor, linked_at=time.time()))
    unindex_person(conn, merged, profile(traits_of(conn, merged)))
    _set_status(conn, merged, MERGED, survivor)
    close_items(conn, merged, cause)
    record(conn, "merge", survivor, cause, other=merged, detail={"identifiers": moved, "by": by})
    return moved


def unmerge(conn: Any, merged: int, cause: str) -> list[tuple[str, str]]:
    """Undo the merge of ``merged``: its identifiers go back and it is a candidate again."""
    row = person_row(conn, merged)
    if row.status != MERGED:
        raise IdentityError(f"person {merged} is not merged")
    survivor = row.merged_into
    active_person(conn, survivor)  # a survivor merged since must be unmerged first
    moved = [tuple(i) for i in merge_detail(conn, survivor, merged)["identifiers"]]
    for domain, value in moved:
        conn.execute(update(id_identifiers).where(
            id_identifiers.c.domain == domain, id_identifiers.c.value == value,
            id_identifiers.c.person_id == survivor).values(person_id=merged, linked_at=time.time()))
    _set_status(conn, merged, ACTIVE, None)
    index_person(conn, merged, profile(traits_of(conn, merged)))
    reject_pair(conn, survivor, merged, cause)
    record(conn, "unmerge", survivor, cause, other=merged, detail={"identifiers": moved})
    return moved


def merge_detail(conn: Any, survivor: int, merged: int) -> dict:
    detail = conn.execute(select(id_events.c.detail).where(and_(
        id_events.c.kind == "merge", id_events.c.person_id == survivor,
        id_events.c.other_person_id == merged)).order_by(id_events.c.id.desc()).limit(1)).scalar()
    if detail is None:
        raise IdentityError(f"no merge of person {merged} into {survivor} in the history")
    return json.loads(detail)


def _set_status(conn: Any, person_id: int, status: str, merged_into: int | None) -> None:
    conn.execute(update(id_persons).where(id_persons.c.id == person_id).values(
        status=status, merged_into=merged_into, updated_at=time.time()))


