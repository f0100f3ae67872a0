"""
The comparable form of one identity, computed once per identity.

Normalising and encoding names is the costly part of a comparison; a
:class:`Profile` holds the result so that an incoming identity is normalised
once and every indexed person once, at indexing time. A store-backed index can
keep these columns or rebuild them from the traits with :func:`profile`.

test-case-name: tests.identity.test_blocking
"""
from __future__ import annotations

from dataclasses import dataclass

from identity.matching.normalise import (
    family_forms,
    first_name_forms,
    first_name_parts,
    phone_digits,
    place_code,
    street,
)
from identity.matching.phonetic import french_phonetic
from identity.model import INS, Sex, Traits


@dataclass(frozen=True, slots=True)
class Profile:
    """Normalised traits: name forms, phonetic keys and plain comparable values."""

    birth_forms: tuple[str, ...]
    used_forms: tuple[str, ...]
    family_keys: tuple[str, ...]
    first_forms: tuple[str, ...]
    first_parts: frozenset[str]
    first_keys: tuple[str, ...]
    birth_date: str | None
    sex: str | None
    birth_place: str | None
    postcode: str | None
    street: str | None
    phone: str | None
    ins: INS | None

    @property
    def family(self) -> str:
        """The main spelling of the family name: the birth name, else the used name."""
        return (self.birth_forms or self.used_forms)[0]

    @property
    def first(self) -> str | None:
        """The first first name, glued, or None."""
        return self.first_forms[0] if self.first_forms else None


def _sound_key(form: str) -> str:
    """The phonetic key of a normalised name; a name whose letters are all silent (``H``)
    has none, and is keyed by its written form so that it can still be found."""
    return french_phonetic(form) or form


def _name_keys(forms: tuple[str, ...]) -> tuple[str, ...]:
    """Phonetic keys of a name glued whole and without particles (DUPONT for
    both DU PONT and DUPONT; FONTAINE for DE LA FONTAINE)."""
    return tuple(_sound_key(form) for form in (forms[0], forms[-1])) if forms else ()


def profile(traits: Traits) -> Profile:
    """Normalise and encode the traits of one identity."""
    birth_forms = family_forms(traits.birth_name)
    used_forms = family_forms(traits.used_name)
    family_keys = tuple(dict.fromkeys(k for k in _name_keys(birth_forms) + _name_keys(used_forms) if k))
    first_forms = first_name_forms(traits.first_names)
    sex = traits.sex.value if traits.sex in (Sex.MALE, Sex.FEMALE) else None
    return Profile(
        birth_forms=birth_forms,
        used_forms=used_forms,
        family_keys=family_keys,
        first_forms=first_forms,
        first_parts=first_name_parts(traits.first_names),
        first_keys=tuple(_sound_key(form) for form in first_forms),
        birth_date=traits.birth_date,
        sex=sex,
        birth_place=place_code(traits.birth_place),
        postcode=place_code(traits.postcode),
        street=street(traits.address),
        phone=phone_digits(traits.phone),
        ins=traits.ins,
    )
