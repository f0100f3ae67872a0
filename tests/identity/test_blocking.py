"""
Tests for identity.matching.blocking: a person and its variants meet under some key.
"""
from __future__ import annotations

from dataclasses import replace

import pytest

from identity.matching import profile
from identity.matching.blocking import blocking_keys, inverted_keys
from identity.model import Sex, Traits

PERSON = Traits("DU PONT", ("Marie-Claire", "Anne"), "19640928", Sex.FEMALE, used_name="LEFÈVRE",
                birth_place="59350")


@pytest.mark.parametrize("changes", [
    {},
    {"birth_name": "Dupont"},
    {"birth_name": "LEFEVRE", "used_name": None},
    {"birth_date": "19640982"[:6] + "29"},
    {"birth_date": "19460928"},
    {"first_names": ("Anne", "Marie-Claire")},
    {"first_names": ()},
    {"birth_name": "DUPOND", "birth_date": "19640929"},
    {"first_names": ("Marie Claire",), "birth_date": "19650928"},
    {"birth_name": "DURANT", "first_names": ("Marie-Claire",)},
])
def test_variants_share_a_key(changes):
    """If a record carries one or two usual mistakes, then it shares a blocking key."""
    assert set(blocking_keys(profile(PERSON))) & set(blocking_keys(profile(replace(PERSON, **changes))))


def test_a_stranger_shares_no_key():
    """If a record is another person altogether, then no key is shared."""
    stranger = Traits("KERGUELEN", ("Yann",), "19900101", Sex.MALE, birth_place="29019")
    assert not set(blocking_keys(profile(PERSON))) & set(blocking_keys(profile(stranger)))


def test_keys_are_the_same_for_the_same_traits():
    """If the same traits are keyed twice, then the keys are equal and in one order."""
    assert blocking_keys(profile(PERSON)) == blocking_keys(profile(replace(PERSON)))


def test_inverted_names_meet_under_the_query_time_keys():
    """If family and first names are written the other way round, then the query-time
    inverted keys meet the person's keys, and the plain keys do not."""
    inverted = profile(replace(PERSON, birth_name="Marie-Claire", first_names=("Du Pont",), used_name=None,
                               birth_place=None))
    assert not set(blocking_keys(profile(PERSON))) & set(blocking_keys(inverted))
    assert set(blocking_keys(profile(PERSON))) & set(inverted_keys(inverted))
