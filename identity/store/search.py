"""
Reading persons as the HL7 side sees them: one person by identifier, and the PDQ search.

:func:`person_records` turns person ids into :class:`identity.service.PersonRecord`
(identifiers with their domain, traits as received) in two statements for a
whole page. :func:`search` is the demographic query of IHE PDQ (ITI-21) as
:class:`identity.service.SearchCriteria` defines it, in SQL so that the total,
the order and the page come from the database:

* a name start is a range on ``id_names``' primary key (see
  :mod:`identity.store.names`), never a scan of the persons; with both names
  asked, both are matched inside ``id_names`` (the family name's range, each
  one's first names on its own rows, or the two ranges joined: the planner's
  choice), so that only the persons bearing both are read;
* a birth date is equal, or a prefix as a range of dates (``1980`` is
  ``[1980, 1981)``), on the ``id_traits.birth_date`` index;
* sex, postcode, city and birth place are equal;
* ``identifier`` is the holder of that identifier, ``in_domains`` the persons
  holding one identifier in those domains (ITI-21 QPD-8);
* only active persons (not merged away), in person id order, so that a
  continuation query sees the same order. The status is read per person found,
  by its key (a correlated subquery): as a join, PostgreSQL's planner hashed
  every person of ``id_persons`` for a common family name.

test-case-name: tests.identity.store.test_search
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, exists, func, select

from identity.model import IdentifierDomain, LocalIdentifier
from identity.service import PersonRecord, SearchCriteria, SearchPage
from identity.store.codec import row_traits
from identity.store.names import prefix_range
from identity.store.persons import owner
from identity.store.schema import (
    ACTIVE,
    FAMILY,
    GIVEN,
    id_domains,
    id_identifiers,
    id_names,
    id_persons,
    id_traits,
)

ONE_PASS = 2000

_HELD = (select(id_identifiers.c.person_id, id_identifiers.c.domain, id_identifiers.c.value,
                id_domains.c.namespace, id_domains.c.id_type)
         .join(id_domains, id_domains.c.oid == id_identifiers.c.domain))


def person_records(conn: Any, person_ids: Sequence[int]) -> list[PersonRecord]:
    """The records of ``person_ids``, in that order (ids without traits are left out)."""
    if not person_ids:
        return []
    ids = list(person_ids)
    traits = {row.person_id: row_traits(row._mapping)
              for row in conn.execute(select(id_traits).where(id_traits.c.person_id.in_(ids)))}
    held: dict[int, list[LocalIdentifier]] = {}
    rows = conn.execute(_HELD.where(id_identifiers.c.person_id.in_(ids))
                        .order_by(id_identifiers.c.domain, id_identifiers.c.value))
    for row in rows:
        domain = IdentifierDomain(row.domain, row.namespace, row.id_type)
        held.setdefault(row.person_id, []).append(LocalIdentifier(domain, row.value))
    return [PersonRecord(str(pid), tuple(held.get(pid, ())), traits[pid]) for pid in ids if pid in traits]


def person_by_identifier(conn: Any, identifier: LocalIdentifier) -> PersonRecord | None:
    """The person holding ``identifier``, or None."""
    person_id = owner(conn, identifier)
    if person_id is None:
        return None
    found = person_records(conn, [person_id])
    return found[0] if found else None


def search(conn: Any, criteria: SearchCriteria, offset: int, count: int) -> SearchPage:
    """One page of the persons matching ``criteria`` (see the module docstring)."""
    if offset < 0 or count < 0:
        raise ValueError(f"search page: offset {offset} and count {count} must not be negative")
    matching = matching_persons(criteria)
    ordered = matching.order_by(id_traits.c.person_id)
    # one pass for the usual query (up to ONE_PASS matches: the ids are the total and the
    # page); a count and a page for a broad one, rather than fetching every id
    ids = conn.execute(ordered.limit(ONE_PASS + 1)).scalars().all()
    if len(ids) <= ONE_PASS:
        total, ids = len(ids), ids[offset:offset + count]
    else:
        total = conn.execute(select(func.count()).select_from(matching.subquery())).scalar()
        ids = conn.execute(ordered.offset(offset).limit(count)).scalars().all() if count else []
    return SearchPage(total, tuple(person_records(conn, ids)))


_STATUS = (select(id_persons.c.status).where(id_persons.c.id == id_traits.c.person_id)
           .scalar_subquery())


def matching_persons(criteria: SearchCriteria) -> Any:
    """The SELECT of the active persons' ids matching ``criteria`` (unordered)."""
    return select(id_traits.c.person_id).where(_STATUS == ACTIVE, *conditions(criteria))


def conditions(c: SearchCriteria) -> list[Any]:
    """The WHERE terms on ``id_traits`` for each criterion given."""
    where: list[Any] = []
    named = _names_term(c)
    if named is not None:
        where.append(id_traits.c.person_id.in_(named))
    if c.birth_date is not None:
        where.append(_date_term(c.birth_date))
    for column, value in ((id_traits.c.sex, c.sex), (id_traits.c.postcode, c.postcode),
                          (id_traits.c.city, c.city), (id_traits.c.birth_place, c.birth_place)):
        if value is not None:
            where.append(column == value)
    if c.identifier is not None:
        where.append(id_traits.c.person_id.in_(select(id_identifiers.c.person_id).where(
            id_identifiers.c.domain == c.identifier.domain.oid,
            id_identifiers.c.value == c.identifier.value)))
    if c.in_domains:
        where.append(exists().where(and_(
            id_identifiers.c.person_id == id_traits.c.person_id,
            id_identifiers.c.domain.in_(sorted(d.oid for d in c.in_domains)))))
    return where


def _names_term(c: SearchCriteria) -> Any:
    """The ids of the persons bearing the names asked, from ``id_names`` alone; None when no
    name is asked. The first name asked drives (a range on the key); the next is checked
    on the same person's rows (``ix_id_names_person``: person, kind, folded)."""
    ranges = [(kind, prefix_range(text)) for kind, text in ((FAMILY, c.family_name),
                                                            (GIVEN, c.given_name))
              if text is not None]
    ranges = [(kind, bounds) for kind, bounds in ranges if bounds is not None]
    if not ranges:
        return None
    (kind, (low, high)), others = ranges[0], ranges[1:]
    driving = id_names.alias("driving")
    term = select(driving.c.person_id).where(
        driving.c.kind == kind, driving.c.folded >= low, driving.c.folded < high)
    for kind, (low, high) in others:
        term = term.where(exists().where(
            id_names.c.person_id == driving.c.person_id, id_names.c.kind == kind,
            id_names.c.folded >= low, id_names.c.folded < high))
    return term


def _date_term(prefix: str) -> Any:
    """A full date is equal; a prefix of digits is the range of dates it starts."""
    if len(prefix) >= 8 or not prefix.isdigit():
        return id_traits.c.birth_date == prefix
    following = str(int(prefix) + 1).zfill(len(prefix))
    if len(following) > len(prefix):  # 9999…: no date after it
        return id_traits.c.birth_date >= prefix
    return and_(id_traits.c.birth_date >= prefix, id_traits.c.birth_date < following)
