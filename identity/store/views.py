"""
Reading the index for operators: search, one person in full, and the JSONL export.

test-case-name: tests.identity.store.test_cli
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import select

from identity.matching.blocking import blocking_keys, inverted_keys
from identity.matching.index import IndexedPerson
from identity.matching.profile import profile
from identity.matching.resolver import Matcher
from identity.model import Traits
from identity.store.codec import json_profile, row_traits, traits_dict
from identity.store.history import history
from identity.store.index import StoreCandidateIndex
from identity.store.persons import identifiers_of, person_row
from identity.store.review import open_items
from identity.store.schema import ACTIVE, id_identifiers, id_persons, id_review, id_traits

EXPORT_PAGE = 1000


def summary(conn: Any, person_id: int) -> dict[str, Any]:
    """A person's id, status, traits and identifiers."""
    row = person_row(conn, person_id)
    traits = conn.execute(select(id_traits).where(id_traits.c.person_id == person_id)).first()
    return {"person_id": person_id, "status": row.status, "merged_into": row.merged_into,
            "traits": traits_dict(row_traits(traits._mapping)),
            "identifiers": [{"domain": d, "value": v} for d, v in identifiers_of(conn, person_id)]}


def by_identifier(conn: Any, domain: str, value: str) -> list[dict[str, Any]]:
    """The person holding (domain OID, value), as a list of zero or one summaries."""
    person_id = conn.execute(select(id_identifiers.c.person_id).where(
        id_identifiers.c.domain == domain, id_identifiers.c.value == value)).scalar()
    return [] if person_id is None else [summary(conn, person_id)]


def by_traits(conn: Any, traits: Traits, limit: int = 10) -> list[dict[str, Any]]:
    """Active persons resembling ``traits``, best first, with their match score.

    The candidates are those the resolver would compare; with too few traits for
    a blocking key (a family name alone), the persons of that normalised family name.
    """
    p = profile(traits)
    index = StoreCandidateIndex(conn)
    keys = blocking_keys(p) + inverted_keys(p)
    if keys:
        persons = index.candidates(keys)
    else:
        rows = conn.execute(select(id_traits.c.person_id, id_traits.c.profile)
                            .join(id_persons, id_persons.c.id == id_traits.c.person_id)
                            .where(id_traits.c.family_norm == p.family, id_persons.c.status == ACTIVE)
                            .limit(1000))
        persons = [IndexedPerson(str(r.person_id), json_profile(r.profile)) for r in rows]
    scored = Matcher(index).score_all(p, persons)[:limit]
    return [{**summary(conn, int(c.person_id)), "score": round(c.score, 2)} for c in scored]


def show(conn: Any, person_id: int) -> dict[str, Any]:
    """A person in full: summary, history, and the open review items naming it."""
    return {**summary(conn, person_id), "history": history(conn, person_id),
            "review": open_items(conn, person_id=person_id)}


def export(conn: Any) -> Iterator[dict[str, Any]]:
    """One record per active person, then one per open review item (``aiguillage identity export``)."""
    last = 0
    while True:
        rows = conn.execute(select(id_traits).join(id_persons, id_persons.c.id == id_traits.c.person_id)
                            .where(id_persons.c.status == ACTIVE, id_traits.c.person_id > last)
                            .order_by(id_traits.c.person_id).limit(EXPORT_PAGE)).all()
        if not rows:
            break
        last = rows[-1].person_id
        held: dict[int, list[dict[str, str]]] = {}
        for ident in conn.execute(select(id_identifiers).where(id_identifiers.c.person_id.in_(
                [r.person_id for r in rows])).order_by(id_identifiers.c.domain, id_identifiers.c.value)):
            held.setdefault(ident.person_id, []).append({"domain": ident.domain, "value": ident.value})
        for row in rows:
            yield {"type": "person", "person_id": row.person_id, "identifiers": held.get(row.person_id, []),
                   "traits": traits_dict(row_traits(row._mapping))}
    for item in conn.execute(select(id_review).where(id_review.c.status == "open").order_by(id_review.c.id)):
        yield {"type": "review", "item": item.id, "person_id": item.person_id,
               "candidate_id": item.candidate_id, "score": item.score,
               "reasons": item.reasons.split(",") if item.reasons else []}
