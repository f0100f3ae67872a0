"""
The store-backed candidate index: the matcher's three questions answered from tables.

:class:`StoreCandidateIndex` implements
:class:`identity.matching.index.CandidateIndex` on one open connection, so a
resolution and the writes it leads to share a transaction. Candidates come
from ``id_blocking_keys`` (primary key on key, person) joined to the stored
profiles; counts come from ``id_counts``, kept by :func:`index_person` and
:func:`unindex_person` in the writer's transaction.

test-case-name: tests.identity.store.test_index
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import (
    BigInteger, String, Text, any_, bindparam, cast, null, select, union_all, update)
from sqlalchemy.dialects import postgresql, sqlite

from identity.matching.blocking import blocking_keys, inverted_keys
from identity.matching.index import IndexedPerson
from identity.matching.model import MatchModel
from identity.matching.profile import Profile, profile
from identity.matching.resolver import Matcher, Resolution
from identity.model import Traits
from identity.store.codec import json_profile
from identity.store.schema import ACTIVE, id_blocking_keys, id_counts, id_persons, id_traits

PERSONS = "persons"
DEFAULT_MODEL = MatchModel()  # frozen: built and checked once, not per decision

_CANDIDATES = (
    select(id_traits.c.person_id, id_traits.c.profile)
    .where(id_traits.c.person_id.in_(
        select(id_blocking_keys.c.person_id)
        .where(id_blocking_keys.c.key.in_(bindparam("keys", expanding=True)))))
)
_BY_INS = (
    select(id_traits.c.person_id, id_traits.c.profile)
    .join(id_persons, id_persons.c.id == id_traits.c.person_id)
    .where(id_traits.c.ins == bindparam("ins"), id_persons.c.status == ACTIVE)
)


def _prefetch(keys_match: Any, names_match: Any) -> Any:
    """Candidates and counts in one statement: rows with a person are candidates, rows with a
    name are counts (a round trip costs more than either query on PostgreSQL)."""
    return union_all(
        select(id_traits.c.person_id, id_traits.c.profile,
               cast(null(), String).label("name"), cast(null(), BigInteger).label("value"))
        .where(id_traits.c.person_id.in_(select(id_blocking_keys.c.person_id).where(keys_match))),
        select(cast(null(), BigInteger).label("person_id"), cast(null(), Text).label("profile"),
               id_counts.c.name, id_counts.c.value).where(names_match))


# PostgreSQL gets arrays, so that the statement's text does not vary with the number of keys
# and psycopg prepares it once per connection; SQLite expands the lists.
_PREFETCH = {
    "postgresql": _prefetch(
        id_blocking_keys.c.key == any_(bindparam("keys", type_=postgresql.ARRAY(String))),
        id_counts.c.name == any_(bindparam("names", type_=postgresql.ARRAY(String)))),
    "sqlite": _prefetch(id_blocking_keys.c.key.in_(bindparam("keys", expanding=True)),
                        id_counts.c.name.in_(bindparam("names", expanding=True))),
}
_COUNT = select(id_counts.c.value).where(id_counts.c.name == bindparam("name"))
_COUNTS = select(id_counts.c.name, id_counts.c.value).where(
    id_counts.c.name.in_(bindparam("names", expanding=True)))


def count_names(p: Profile) -> list[str]:
    """The id_counts rows a person with profile ``p`` adds one to."""
    names = [PERSONS]
    for field, value in (("family", p.family), ("first", p.first), ("birth_place", p.birth_place)):
        if value:
            names.append(f"{field}:{value}")
    return names


class StoreCandidateIndex:
    """A :class:`CandidateIndex` reading the identity tables through ``conn``.

    :meth:`prefetch` reads, in one statement, the counts and the candidates the matcher
    will ask for one profile (:meth:`prefetch_counts` the counts alone): a round trip
    each costs more than the query on PostgreSQL. They hold until the next prefetch, so
    an index is for one decision, made before any write.
    """

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self._counts: dict[str, int] = {}
        self._keys: list[str] | None = None
        self._candidates: list[IndexedPerson] = []

    def prefetch(self, p: Profile) -> None:
        """Read the counts and the candidates the matcher will ask for ``p``."""
        names = count_names(p)
        keys = list(dict.fromkeys(blocking_keys(p) + inverted_keys(p)))
        self._counts = dict.fromkeys(names, 0)
        self._keys, self._candidates = keys, []
        statement = _PREFETCH[self.conn.dialect.name]
        for row in self.conn.execute(statement, {"keys": keys, "names": names}):
            if row.name is None:
                self._candidates.append(IndexedPerson(str(row.person_id), json_profile(row.profile)))
            else:
                self._counts[row.name] = row.value

    def prefetch_counts(self, p: Profile) -> None:
        names = count_names(p)
        self._counts = dict.fromkeys(names, 0)
        self._counts.update((row.name, row.value) for row in self.conn.execute(_COUNTS, {"names": names}))

    def candidates(self, keys: Iterable[str]) -> list[IndexedPerson]:
        keys = list(dict.fromkeys(keys))
        if keys == self._keys:
            return self._candidates
        if not keys:
            return []
        rows = self.conn.execute(_CANDIDATES, {"keys": keys})
        return [IndexedPerson(str(row.person_id), json_profile(row.profile)) for row in rows]

    def by_ins(self, matricule: str) -> list[IndexedPerson]:
        rows = self.conn.execute(_BY_INS, {"ins": matricule})
        return [IndexedPerson(str(row.person_id), json_profile(row.profile)) for row in rows]

    def name_count(self, field: str, value: str) -> int:
        return self._count(f"{field}:{value}")

    def person_count(self) -> int:
        return self._count(PERSONS)

    def _count(self, name: str) -> int:
        if name in self._counts:
            return self._counts[name]
        return self.conn.execute(_COUNT, {"name": name}).scalar() or 0


def match(conn: Any, traits: Traits, model: MatchModel | None = None,
          exclude: int | None = None) -> Resolution:
    """The matcher's decision on ``traits`` against the stored index (``exclude``: leave
    that person out, to match a known person against the others)."""
    p = profile(traits)
    index = StoreCandidateIndex(conn)
    index.prefetch(p)
    return Matcher(index if exclude is None else _Excluding(index, str(exclude)),
                   model or DEFAULT_MODEL).resolve(p)


class _Excluding:
    """The index without one person."""

    def __init__(self, index: StoreCandidateIndex, person_id: str) -> None:
        self._index, self._person = index, person_id

    def candidates(self, keys: Iterable[str]) -> list[IndexedPerson]:
        return [p for p in self._index.candidates(keys) if p.person_id != self._person]

    def by_ins(self, matricule: str) -> list[IndexedPerson]:
        return [p for p in self._index.by_ins(matricule) if p.person_id != self._person]

    def name_count(self, field: str, value: str) -> int:
        return self._index.name_count(field, value)

    def person_count(self) -> int:
        return self._index.person_count()


def add_counts(conn: Any, names: Iterable[str], change: int) -> None:
    """Add ``change`` to each named count, creating the row at need."""
    names = list(names)
    if change < 0 and names:
        conn.execute(_DECREMENT, [{"n": name, "change": -change} for name in names])
    elif names:
        upsert_counts(conn, {name: change for name in names})


def _upsert(dialect: Any) -> Any:
    statement = dialect.insert(id_counts)
    return statement.on_conflict_do_update(
        index_elements=[id_counts.c.name], set_={"value": id_counts.c.value + statement.excluded.value})


_UPSERT = {"sqlite": _upsert(sqlite), "postgresql": _upsert(postgresql)}
_DECREMENT = (update(id_counts).where(id_counts.c.name == bindparam("n"))
              .values(value=id_counts.c.value - bindparam("change")))
_UNINDEX = id_blocking_keys.delete().where(id_blocking_keys.c.person_id == bindparam("id"))


def upsert_counts(conn: Any, changes: dict[str, int]) -> None:
    """Add each positive change to its count (one upsert per row, in one executemany)."""
    conn.execute(_UPSERT[conn.dialect.name],
                 [{"name": name, "value": change} for name, change in changes.items()])


def index_person(conn: Any, person_id: int, p: Profile) -> None:
    """Make a person a candidate: its blocking keys and its share of the counts."""
    keys = list(dict.fromkeys(blocking_keys(p)))
    if keys:
        conn.execute(id_blocking_keys.insert(), [{"key": k, "person_id": person_id} for k in keys])
    add_counts(conn, count_names(p), 1)


def unindex_person(conn: Any, person_id: int, p: Profile) -> None:
    """No longer a candidate (merged away, or about to be re-indexed with new traits)."""
    conn.execute(_UNINDEX, {"id": person_id})
    add_counts(conn, count_names(p), -1)
