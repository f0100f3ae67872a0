"""
Tests for the store-backed candidate index (identity/store/index.py) and the codec:
it answers the matcher as the in-memory index does, on SQLite and PostgreSQL.
"""
from __future__ import annotations

from identity.matching import Matcher, MemoryCandidateIndex, profile
from identity.store.codec import json_profile, profile_json, row_traits, traits_row
from identity.store.index import StoreCandidateIndex, match
from identity.store.persons import create_person
from tests.identity.cast import MARTINS, PEOPLE, seen
from tests.identity.store.test_service import OPERATOR

QUERIES = [seen("twin-hugo"), seen("father", first_names=("Jean Pierre",)), seen("married", birth_name=None),
           seen("qualified"), seen("accented", birth_name="DELAFONTAINE"), MARTINS["martin-3"]]


def test_profile_and_traits_survive_the_round_trip():
    """If a profile or traits are written to a row and read back, then they are equal."""
    for traits in PEOPLE.values():
        assert json_profile(profile_json(profile(traits))) == profile(traits)
        assert row_traits(traits_row(traits)) == traits


def test_store_index_resolves_as_the_memory_index(engine):
    """If the same persons are in both indexes, then every query gets the same outcome,
    person and score from each."""
    memory = MemoryCandidateIndex()
    names = {}
    with engine.begin() as conn:
        for name, traits in {**PEOPLE, **MARTINS}.items():
            person_id = create_person(conn, traits, OPERATOR)
            names[str(person_id)] = name
            memory.add(name, profile(traits))
        stored = Matcher(StoreCandidateIndex(conn))
        for query in QUERIES:
            a, b = stored.resolve(query), Matcher(memory).resolve(query)
            assert (a.outcome, names.get(a.person_id), a.score) == (b.outcome, b.person_id, b.score)
            c = match(conn, query)  # counts prefetched in one statement
            assert (c.outcome, c.person_id, c.score) == (a.outcome, a.person_id, a.score)


def test_counts_follow_the_persons(engine):
    """If persons are added, then person_count and name_count count them."""
    with engine.begin() as conn:
        for traits in MARTINS.values():
            create_person(conn, traits, OPERATOR)
        index = StoreCandidateIndex(conn)
        assert index.person_count() == len(MARTINS)
        assert index.name_count("family", "MARTIN") == len(MARTINS)
        assert index.name_count("family", "DURAND") == 0
        assert index.candidates([]) == []
        index.prefetch_counts(profile(MARTINS["martin-1"]))
        create_person(conn, MARTINS["martin-1"], OPERATOR)
        assert index.name_count("family", "MARTIN") == len(MARTINS)  # as prefetched
        index.prefetch_counts(profile(MARTINS["martin-1"]))
        assert index.name_count("family", "MARTIN") == len(MARTINS) + 1
        assert index.name_count("first", "ZOE") == 0
