"""
The candidate index: blocking key → persons, behind a small interface.

The resolver needs three questions answered: which persons share one of these
blocking keys, who holds this INS, and how common is this name. The
:class:`CandidateIndex` protocol is those three questions; the in-memory
:class:`MemoryCandidateIndex` answers them from dictionaries so that matching
can be tested and benchmarked without a database, and a store-backed index
will answer them from tables.

test-case-name: tests.identity.test_index
"""
from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from identity.matching.blocking import blocking_keys
from identity.matching.profile import Profile


@dataclass(frozen=True, slots=True)
class IndexedPerson:
    """A person of the index as the matcher sees it: an id and a profile."""

    person_id: str
    profile: Profile


class CandidateIndex(Protocol):
    """What the resolver asks of the persons already known."""

    def _count(self, profile: Profile, change: int) -> None:
        """Keep the name and place counts behind :meth:`name_count`."""
        for field, value in (("family", profile.family), ("first", profile.first),
                             ("birth_place", profile.birth_place)):
            if value:
                self._counts[field][value] += change

    def candidates(self, keys: Iterable[str]) -> Sequence[IndexedPerson]:
        """The persons having at least one of these blocking keys, each once."""

    def by_ins(self, matricule: str) -> Sequence[IndexedPerson]:
        """The persons holding this INS matricule (more than one is itself a problem)."""

    def name_count(self, field: str, value: str) -> int:
        """How many persons have ``value`` as their ``field`` ("family", "first" or
        "birth_place"): the frequency weighing of :meth:`MatchModel.exact_weight`."""

    def person_count(self) -> int:
        """How many persons the index holds."""


class MemoryCandidateIndex:
    """A :class:`CandidateIndex` held in dictionaries, with ``add`` and ``remove``."""

    def __init__(self) -> None:
        self._persons: dict[str, IndexedPerson] = {}
        self._buckets: defaultdict[str, list[str]] = defaultdict(list)
        self._ins: defaultdict[str, list[str]] = defaultdict(list)
        self._counts: dict[str, Counter] = {"family": Counter(), "first": Counter(), "birth_place": Counter()}

    def __len__(self) -> int:
        return len(self._persons)

    def add(self, person_id: str, profile: Profile) -> None:
        """Index a person, or re-index it with a new profile."""
        if person_id in self._persons:
            self.remove(person_id)
        self._persons[person_id] = IndexedPerson(person_id, profile)
        for key in blocking_keys(profile):
            self._buckets[key].append(person_id)
        if profile.ins:
            self._ins[profile.ins.matricule].append(person_id)
        self._count(profile, 1)

    def remove(self, person_id: str) -> None:
        """Forget a person (merged away, or about to be re-indexed)."""
        profile = self._persons.pop(person_id).profile
        for key in blocking_keys(profile):
            self._buckets[key].remove(person_id)
        if profile.ins:
            self._ins[profile.ins.matricule].remove(person_id)
        self._count(profile, -1)

    def _count(self, profile: Profile, change: int) -> None:
        """Keep the name and place counts behind :meth:`name_count`."""
        for field, value in (("family", profile.family), ("first", profile.first),
                             ("birth_place", profile.birth_place)):
            if value:
                self._counts[field][value] += change

    def candidates(self, keys: Iterable[str]) -> list[IndexedPerson]:
        ids: dict[str, None] = {}
        for key in keys:
            bucket = self._buckets.get(key)
            if bucket:
                ids.update(dict.fromkeys(bucket))
        return [self._persons[i] for i in ids]

    def by_ins(self, matricule: str) -> list[IndexedPerson]:
        return [self._persons[i] for i in self._ins.get(matricule, ())]

    def name_count(self, field: str, value: str) -> int:
        return self._counts[field][value]

    def person_count(self) -> int:
        return len(self._persons)
