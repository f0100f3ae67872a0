"""
Tests for identity.matching.compare: the level of each field comparison.
"""
from __future__ import annotations

import pytest

from identity.matching import profile
from identity.matching.compare import (
    FIELDS,
    LEVELS,
    compare,
    compare_address,
    compare_birth_date,
    compare_family,
    compare_first,
)
from identity.model import Sex, Traits


def level(field: str, name: str) -> int:
    return LEVELS[field].index(name)


def traits(**fields) -> Traits:
    fields.setdefault("birth_name", "DUPONT")
    return Traits(**fields)


@pytest.mark.parametrize("a, b, expected", [
    ({"birth_name": "Le Gall"}, {"birth_name": "LEGALL"}, "exact"),
    ({"birth_name": "GARNIER", "used_name": "LEFEVRE"}, {"birth_name": "LEFEVRE"}, "cross"),
    ({"birth_name": "DUPONT"}, {"birth_name": "DUPOND"}, "close"),
    ({"birth_name": "FEMEROT"}, {"birth_name": "FREMEROT"}, "close"),
    ({"birth_name": "DUPONT"}, {"birth_name": "MARTIN"}, "different"),
    ({"birth_name": "ANNE", "first_names": ("Garnier",)}, {"birth_name": "GARNIER", "first_names": ("Anne",)},
     "cross"),
])
def test_family_levels(a, b, expected):
    """If two family names relate so, then the level says it."""
    assert compare_family(profile(traits(**a)), profile(traits(**b))) == level("family", expected)


@pytest.mark.parametrize("a, b, expected", [
    (("Jean-Pierre",), ("JEAN PIERRE",), "exact"),
    (("Marie", "Claire"), ("Claire", "Marie"), "swapped"),
    (("Claire",), ("Marie", "Claire"), "swapped"),
    (("Lucsa", "Yann"), ("Lucas", "Yann"), "swapped"),
    (("Guillome",), ("Guillaume",), "close"),
    (("Sébastiien",), ("Sébastien",), "close"),
    (("Paul",), ("Jean-Paul",), "partial"),
    (("Jean",), ("Jean-François",), "partial"),
    (("Anne", "Marie"), ("Claire", "Marie"), "partial"),
    (("Lucas",), ("Hugo",), "different"),
    (("Dupont",), ("Jean",), "swapped"),
    ((), ("Hugo",), None),
])
def test_first_name_levels(a, b, expected):
    """If two first-name lists relate so, then the level says it."""
    inverted = a == ("Dupont",)
    pa = profile(traits(first_names=a, birth_name="JEAN" if inverted else "DUPONT"))
    found = compare_first(pa, profile(traits(first_names=b)))
    assert found == (None if expected is None else level("first", expected))


@pytest.mark.parametrize("a, b, expected", [
    ("19800512", "19800512", "exact"),
    ("19800512", "19800513", "typo"),
    ("19800512", "19800521", "typo"),
    ("19800512", "18900512", "typo"),
    ("19800512", "19801205", "typo"),
    ("19800512", "19810613", "different"),
    ("19800512", None, None),
])
def test_birth_date_levels(a, b, expected):
    """If two birth dates differ by one slip, then typo; by more, different."""
    found = compare_birth_date(profile(traits(birth_date=a)), profile(traits(birth_date=b)))
    assert found == (None if expected is None else level("birth_date", expected))


@pytest.mark.parametrize("a, b, expected", [
    (("1 rue Pasteur", "35000"), ("1 RUE PASTEUR", "35000"), "exact"),
    (("1 rue Pasteur", "35000"), (None, "35000"), "partial"),
    (("1 rue Pasteur", "35000"), ("1 rue Pasteur", "13001"), "different"),
    (("1 rue Pasteur", None), ("1 rue Pasteur", None), "partial"),
    ((None, None), ("1 rue Pasteur", "35000"), None),
])
def test_address_levels(a, b, expected):
    """If the postcode agrees, then at least partial; a street alone proves little."""
    pa = profile(traits(address=a[0], postcode=a[1]))
    pb = profile(traits(address=b[0], postcode=b[1]))
    assert compare_address(pa, pb) == (None if expected is None else level("address", expected))


def test_vector_has_one_level_per_field_and_none_for_missing():
    """If a field is missing on either side, then its level is None."""
    a = profile(traits(first_names=("Jean",), birth_date="19800512", sex=Sex.MALE))
    b = profile(traits(first_names=("Jean",), birth_date="19800512", sex=Sex.UNKNOWN, phone="0612345678"))
    vector = compare(a, b)
    assert len(vector) == len(FIELDS)
    assert dict(zip(FIELDS, vector)) == {
        "family": 0, "first": 0, "birth_date": 0, "sex": None, "birth_place": None,
        "address": None, "phone": None, "ins": None}
