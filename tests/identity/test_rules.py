"""
Tests for identity.matching.rules: what forbids an automatic link.
"""
from __future__ import annotations

import pytest

from identity.matching.compare import FIELDS, LEVELS
from identity.matching.rules import ins_conflicts, vetoes


def vector(**levels) -> tuple:
    """A comparison vector from level names; fields not given are missing."""
    return tuple(None if f not in levels else LEVELS[f].index(levels[f]) for f in FIELDS)


AGREE = dict(family="exact", first="exact", birth_date="exact", sex="exact", birth_place="exact")


def test_full_agreement_has_no_veto():
    """If every strict trait agrees, then nothing forbids the link."""
    assert vetoes(vector(**AGREE)) == ()
    assert vetoes(vector(**{**AGREE, "first": "swapped", "family": "cross"})) == ()


@pytest.mark.parametrize("field, level, reason", [
    ("family", "different", "family-name-differs"),
    ("birth_date", "different", "birth-date-differs"),
    ("sex", "different", "sex-differs"),
    ("birth_place", "different", "birth-place-differs"),
    ("ins", "different", "ins-differs"),
    ("first", "different", "possible-twin"),
    ("first", "close", "possible-twin"),
    ("first", "partial", "possible-twin"),
])
def test_one_outright_disagreement_vetoes(field, level, reason):
    """If one strict trait disagrees outright (or, with the family name and birth date
    agreeing, the first name is not the same), then the link is vetoed with its reason."""
    assert reason in vetoes(vector(**{**AGREE, field: level}))


def test_sibling_shapes_are_vetoed():
    """If the first name shares only a word, or two traits are only approximate, then veto."""
    assert "first-name-differs" in vetoes(vector(**{**AGREE, "first": "partial", "birth_date": "typo"}))
    assert "several-approximate-traits" in vetoes(
        vector(**{**AGREE, "family": "close", "birth_date": "typo"}))
    assert vetoes(vector(**{**AGREE, "birth_date": "typo"})) == ()


@pytest.mark.parametrize("others, reason", [
    ({}, "approximate-trait-uncorroborated"),
    ({"address": "different", "phone": "different"}, "approximate-trait-uncorroborated"),
    ({"birth_place": "exact", "address": "different"}, "approximate-trait-contradicted"),
    ({"address": "partial", "phone": "different"}, "approximate-trait-contradicted"),
    ({"phone": "exact"}, None),
    ({"ins": "exact"}, None),
    ({"address": "exact", "birth_place": "exact"}, None),
])
def test_one_approximate_trait_needs_a_trait_names_do_not_predict(others, reason):
    """If one of family name, first name or birth date is only approximate, then the link
    needs birth place, address, phone or INS to agree and address and phone not to differ."""
    found = vetoes(vector(family="exact", first="exact", birth_date="typo", sex="exact", **others))
    assert found == ((reason,) if reason else ())


def test_ins_conflicts_need_exact_strict_traits():
    """If the INS agrees, then a birth date typo, another sex or another name is a conflict."""
    assert ins_conflicts(vector(**AGREE)) == ()
    assert ins_conflicts(vector(**{**AGREE, "birth_date": "typo"})) == ("ins-birth-date-conflict",)
    assert ins_conflicts(vector(**{**AGREE, "sex": "different", "family": "different"})) == (
        "ins-sex-conflict", "ins-family-name-conflict")
    assert ins_conflicts(vector(family="close")) == ()
