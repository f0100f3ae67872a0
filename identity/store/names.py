"""
The folded names a person is searched by (``id_names``), kept beside its traits.

A PDQ query asks for names by their start, case and accents folded (``DUP``
finds ``DUPRÉ``). Each person has one row per distinct folded family name
(birth and used, kind ``F``) and first name (kind ``G``), written wherever its
traits are written (:func:`identity.store.persons.create_person`,
:func:`identity.store.persons.update_traits`, :func:`identity.store.bulk.bulk_load`),
so that a name start is a range on the primary key (:func:`prefix_range`).

test-case-name: tests.identity.store.test_search
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam

from identity.matching.normalise import fold
from identity.model import Traits
from identity.store.schema import FAMILY, GIVEN, id_names

WIDTH = 128  # id_names.folded
_AFTER_ANY_LETTER = "~"  # folded names hold A-Z, 0-9 and spaces, all before "~" bytewise
_FORGET = id_names.delete().where(id_names.c.person_id == bindparam("id"))


def name_rows(person_id: int, traits: Traits) -> list[dict[str, Any]]:
    """The id_names rows of a person with ``traits``."""
    family = dict.fromkeys(fold(n)[:WIDTH] for n in (traits.birth_name, traits.used_name) if n)
    given = dict.fromkeys(fold(n)[:WIDTH] for n in traits.first_names)
    return ([{"kind": FAMILY, "folded": f, "person_id": person_id} for f in family if f]
            + [{"kind": GIVEN, "folded": g, "person_id": person_id} for g in given if g])


def index_names(conn: Any, person_id: int, traits: Traits) -> None:
    """Write the person's names (after :func:`forget_names` when they change)."""
    rows = name_rows(person_id, traits)
    if rows:
        conn.execute(id_names.insert(), rows)


def forget_names(conn: Any, person_id: int) -> None:
    conn.execute(_FORGET, {"id": person_id})


def prefix_range(text: str) -> tuple[str, str] | None:
    """The folded bounds [low, high) of the names starting with ``text``; None when the
    text folds to nothing (only marks), which matches every name."""
    low = fold(text)[:WIDTH]
    return (low, low + _AFTER_ANY_LETTER) if low else None
