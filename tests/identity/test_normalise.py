"""
Tests for identity.matching.normalise: French names to comparable forms.
"""
from __future__ import annotations

import pytest

from identity.matching.normalise import (
    family_forms,
    first_name_forms,
    first_name_parts,
    fold,
    phone_digits,
    place_code,
)


@pytest.mark.parametrize("written, folded", [
    ("Hélène", "HELENE"),
    ("FRANÇOISE", "FRANCOISE"),
    ("Œillet", "OEILLET"),
    ("Lætitia", "LAETITIA"),
    ("d'Artagnan", "D ARTAGNAN"),
    ("Jean-Pierre", "JEAN PIERRE"),
    ("  le   Gall ", "LE GALL"),
    ("Anaïs", "ANAIS"),
    ("Noël", "NOEL"),
])
def test_fold_removes_accents_case_and_marks(written, folded):
    """If a name has accents, ligatures, hyphens or apostrophes, then fold gives plain capitals."""
    assert fold(written) == folded


@pytest.mark.parametrize("one, other", [
    ("Le Gall", "LEGALL"),
    ("Du Pont", "DUPONT"),
    ("de La Fontaine", "LA FONTAINE"),
    ("de La Fontaine", "Lafontaine"),
    ("D'Almeida", "ALMEIDA"),
    ("Saint-Martin", "SAINT MARTIN"),
    ("Lefèvre", "LEFEVRE"),
])
def test_family_name_spellings_share_a_form(one, other):
    """If two spellings are one family name with particles written otherwise, then they share a form."""
    assert set(family_forms(one)) & set(family_forms(other))


def test_different_family_names_share_no_form():
    """If two family names differ beyond particles, then they share no form."""
    assert not set(family_forms("Le Gall")) & set(family_forms("Le Goff"))
    assert family_forms("") == () and family_forms(None) == ()


def test_compound_first_names_are_one_first_name():
    """If a compound first name is hyphenated or spaced, then it is one glued form."""
    assert first_name_forms(("Jean-Pierre", "Marie")) == ("JEANPIERRE", "MARIE")
    assert first_name_forms(("JEAN PIERRE",)) == first_name_forms(("jean-pierre",))
    assert first_name_parts(("Jean-Pierre", "Marie")) == {"JEAN", "PIERRE", "MARIE"}
    assert first_name_forms(("", "-")) == ()


@pytest.mark.parametrize("dialled", ["+33 6 12 34 56 78", "0033612345678", "06.12.34.56.78", "0612345678"])
def test_phone_numbers_reduce_to_national_digits(dialled):
    """If a number is written with a prefix or separators, then its national digits remain."""
    assert phone_digits(dialled) == "612345678"


def test_blank_values_are_none():
    """If a phone or a place is blank, then it is missing, not an empty value."""
    assert phone_digits("") is None and phone_digits(None) is None
    assert place_code(" ") is None and place_code("2a004") == "2A004"
