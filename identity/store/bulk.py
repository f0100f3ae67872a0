"""
Loading many persons at once: a territory's first import, and the benchmarks.

The same rows as :func:`identity.store.persons.create_person` writes one by one
(person, traits, identifier, blocking keys, counts, a ``create`` event naming the
cause), in a few executemany per batch instead of several statements per person.
It does not match the persons against each other or the index: the import is
taken as it comes, and duplicates inside it are for the review to find.

test-case-name: tests.identity.store.test_bulk
"""
from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select, text

from identity.matching.blocking import blocking_keys
from identity.model import LocalIdentifier, Traits
from identity.store.codec import json_profile, traits_dict, traits_row
from identity.store.history import check_cause
from identity.store.index import count_names, upsert_counts
from identity.store.names import name_rows
from identity.store.persons import ensure_domain
from identity.store.schema import (
    ACTIVE,
    id_blocking_keys,
    id_events,
    id_identifiers,
    id_names,
    id_persons,
    id_traits,
)

BATCH = 5000


def bulk_load(conn: Any, records: Iterable[tuple[LocalIdentifier | None, Traits]], cause: str) -> int:
    """Add each (identifier, traits) as a new person, in the caller's transaction; how many."""
    check_cause(cause)
    next_id = (conn.execute(select(func.max(id_persons.c.id))).scalar() or 0) + 1
    batch: list[tuple[int, LocalIdentifier | None, Traits]] = []
    total = 0
    for identifier, traits in records:
        batch.append((next_id + total, identifier, traits))
        total += 1
        if len(batch) == BATCH:
            _write(conn, batch, cause)
            batch = []
    if batch:
        _write(conn, batch, cause)
    if total and conn.dialect.name == "postgresql":
        # explicit ids: move the sequence past them; and fresh statistics, or the planner
        # keeps the empty tables' plans (sequential scans) for the candidate lookups
        conn.execute(text("SELECT setval(pg_get_serial_sequence('id_persons', 'id'), "
                          "(SELECT max(id) FROM id_persons))"))
        for table in (id_persons, id_traits, id_blocking_keys, id_identifiers, id_names):
            conn.execute(text(f"ANALYZE {table.name}"))
    return total


def _write(conn: Any, batch: list[tuple[int, LocalIdentifier | None, Traits]], cause: str) -> None:
    now = time.time()
    persons, traits_rows, identifiers, keys, events, names = [], [], [], [], [], []
    counts: Counter = Counter()
    domains: dict = {}
    for person_id, identifier, traits in batch:
        persons.append({"id": person_id, "status": ACTIVE, "created_at": now, "updated_at": now})
        row = traits_row(traits)
        traits_rows.append({"person_id": person_id, **row})
        names.extend(name_rows(person_id, traits))
        p = json_profile(row["profile"])
        keys.extend({"key": k, "person_id": person_id} for k in dict.fromkeys(blocking_keys(p)))
        counts.update(count_names(p))
        events.append({"at": now, "kind": "create", "person_id": person_id, "cause": cause,
                       "detail": json.dumps({"traits": traits_dict(traits)}, ensure_ascii=False)})
        if identifier is not None:
            domains.setdefault(identifier.domain, identifier)
            identifiers.append({"domain": identifier.domain.oid, "value": identifier.value,
                                "person_id": person_id, "linked_at": now})
    for identifier in domains.values():
        ensure_domain(conn, identifier)
    conn.execute(id_persons.insert(), persons)
    conn.execute(id_traits.insert(), traits_rows)
    if keys:
        conn.execute(id_blocking_keys.insert(), keys)
    if names:
        conn.execute(id_names.insert(), names)
    if identifiers:
        conn.execute(id_identifiers.insert(), identifiers)
    conn.execute(id_events.insert(), events)
    upsert_counts(conn, dict(counts))


