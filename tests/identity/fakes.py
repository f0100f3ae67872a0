"""
An in-memory :class:`identity.service.IdentityService` for the HL7 side's tests.

It keeps persons in dictionaries and resolves new identities with the real
matcher over a :class:`MemoryCandidateIndex`, so an ADT feed test exercises the
same decisions the store will. Merges and links remember what they absorbed,
so that unmerge and unlink restore it. Every method answers an already-fired
Deferred. ``tests/identity/hl7/test_service.py`` checks it against the Protocol.
"""
from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace

from twisted.internet import defer

from identity.matching import Matcher, MemoryCandidateIndex, Outcome, profile
from identity.matching.normalise import fold
from identity.model import INS_DOMAINS, LocalIdentifier, Traits
from identity.service import (
    ConflictingIdentifier,
    PersonRecord,
    Registered,
    Registration,
    SearchCriteria,
    SearchPage,
    UnknownIdentifier,
)


@dataclass
class _Absorbed:
    """A person taken into another by a merge or link, kept to be restored."""

    record: PersonRecord
    into: str


class MemoryIdentityService:
    """The index in dictionaries (see the module docstring)."""

    def __init__(self) -> None:
        self.persons: dict[str, PersonRecord] = {}
        self.reviews: list[tuple[str, tuple[str, ...]]] = []
        self._absorbed: dict[LocalIdentifier, _Absorbed] = {}
        self._index = MemoryCandidateIndex()
        self._ids = (f"P{n}" for n in itertools.count(1))

    # -- helpers ---------------------------------------------------------------------------
    def add_person(self, record: PersonRecord) -> None:
        """Put ``record`` in the index as it is (to set up a test)."""
        self._put(record)

    def holder(self, identifier: LocalIdentifier) -> str | None:
        return next((pid for pid, rec in self.persons.items() if identifier in rec.identifiers), None)

    def _held(self, identifier: LocalIdentifier) -> PersonRecord:
        person_id = self.holder(identifier)
        if person_id is None:
            raise UnknownIdentifier(identifier)
        return self.persons[person_id]

    def _put(self, record: PersonRecord) -> None:
        if record.person_id in self.persons:
            self._index.remove(record.person_id)
        self.persons[record.person_id] = record
        self._index.add(record.person_id, profile(record.traits))

    def _drop(self, person_id: str) -> None:
        self._index.remove(person_id)
        del self.persons[person_id]

    # -- the Protocol ----------------------------------------------------------------------
    def register(self, identifiers: Sequence[LocalIdentifier], traits: Traits,
                 review_reasons: Sequence[str] = ()) -> defer.Deferred:
        try:
            return defer.succeed(self._register(tuple(identifiers), traits, tuple(review_reasons)))
        except Exception:
            return defer.fail()

    def _register(self, identifiers, traits, reasons) -> Registration:
        local = [i for i in identifiers if i.domain not in INS_DOMAINS]  # the INS links via the matcher
        known = next((self.holder(i) for i in local if self.holder(i)), None)
        if known is not None:
            old = self.persons[known]
            merged = old.identifiers + tuple(i for i in identifiers if i not in old.identifiers)
            self._put(PersonRecord(known, merged, traits))
            return Registration(known, Registered.UPDATED)
        resolution = Matcher(self._index).resolve(traits)
        if reasons or resolution.outcome is Outcome.REVIEW:
            person_id = next(self._ids)
            self._put(PersonRecord(person_id, identifiers, traits))
            why = reasons or resolution.reasons
            self.reviews.append((person_id, why))
            return Registration(person_id, Registered.REVIEW, why)
        if resolution.outcome is Outcome.LINKED:
            old = self.persons[resolution.person_id]
            added = tuple(i for i in identifiers if i not in old.identifiers)
            self._put(replace(old, identifiers=old.identifiers + added))
            return Registration(old.person_id, Registered.LINKED)
        person_id = next(self._ids)
        self._put(PersonRecord(person_id, identifiers, traits))
        return Registration(person_id, Registered.CREATED)

    def merge(self, survivor: Sequence[LocalIdentifier], absorbed: LocalIdentifier) -> defer.Deferred:
        try:
            keep = next((self.persons[p] for p in map(self.holder, survivor) if p), None)
            if keep is None:
                raise UnknownIdentifier(survivor[0])
            return defer.succeed(self._absorb(keep, self._held(absorbed), absorbed))
        except Exception:
            return defer.fail()

    def _absorb(self, keep: PersonRecord, gone: PersonRecord, key: LocalIdentifier) -> str:
        if gone.person_id == keep.person_id:
            return keep.person_id
        self._absorbed[key] = _Absorbed(gone, keep.person_id)
        self._drop(gone.person_id)
        added = tuple(i for i in gone.identifiers if i not in keep.identifiers)
        self._put(replace(keep, identifiers=keep.identifiers + added))
        return keep.person_id

    def unmerge(self, absorbed: LocalIdentifier) -> defer.Deferred:
        try:
            return defer.succeed(self._restore(absorbed))
        except Exception:
            return defer.fail()

    def _restore(self, key: LocalIdentifier) -> str:
        entry = self._absorbed.pop(key, None)
        if entry is None:
            raise UnknownIdentifier(key)
        keep = self.persons[entry.into]
        restored = set(entry.record.identifiers)
        self._put(replace(keep, identifiers=tuple(i for i in keep.identifiers if i not in restored)))
        self._put(entry.record)
        return entry.record.person_id

    def link(self, first: LocalIdentifier, second: LocalIdentifier) -> defer.Deferred:
        try:
            return defer.succeed(self._absorb(self._held(first), self._held(second), second))
        except Exception:
            return defer.fail()

    def unlink(self, first: LocalIdentifier, second: LocalIdentifier) -> defer.Deferred:
        try:
            self._held(first)
            self._restore(second)
            return defer.succeed(None)
        except Exception:
            return defer.fail()

    def change_identifier(self, old: LocalIdentifier, new: LocalIdentifier) -> defer.Deferred:
        try:
            person = self._held(old)
            if self.holder(new) not in (None, person.person_id):
                raise ConflictingIdentifier(new)
            ids = tuple(new if i == old else i for i in person.identifiers)
            self._put(replace(person, identifiers=ids))
            return defer.succeed(person.person_id)
        except Exception:
            return defer.fail()

    def person(self, identifier: LocalIdentifier) -> defer.Deferred:
        person_id = self.holder(identifier)
        return defer.succeed(self.persons[person_id] if person_id else None)

    def search(self, criteria: SearchCriteria, offset: int, count: int) -> defer.Deferred:
        found = [r for _, r in sorted(self.persons.items()) if matches(r, criteria)]
        return defer.succeed(SearchPage(len(found), tuple(found[offset:offset + count])))


def matches(record: PersonRecord, c: SearchCriteria) -> bool:
    """Whether ``record`` agrees with every criterion given (the Protocol's rules)."""
    t = record.traits
    names = [fold(n) for n in (t.birth_name, t.used_name) if n]
    checks = [
        c.family_name is None or any(n.startswith(fold(c.family_name)) for n in names),
        c.given_name is None or any(fold(f).startswith(fold(c.given_name)) for f in t.first_names),
        c.birth_date is None or (t.birth_date or "").startswith(c.birth_date),
        c.sex is None or t.sex.value == c.sex,
        c.postcode is None or t.postcode == c.postcode,
        c.city is None or t.city == c.city,
        c.birth_place is None or t.birth_place == c.birth_place,
        c.identifier is None or c.identifier in record.identifiers,
        not c.in_domains or any(i.domain in c.in_domains for i in record.identifiers),
    ]
    return all(checks)
