"""
Field comparators: how alike two profiles are, field by field, as discrete levels.

Fellegi–Sunter scoring needs each field's agreement as one of a few levels, so
each comparator answers with a level index (its position in :data:`LEVELS`) or
None when either side lacks the field: a missing value is no evidence either
way. String similarity is Jaro-Winkler from rapidfuzz; birth-date typos are an
optimal-string-alignment distance of 1 (one digit changed, or two adjacent
digits swapped) or day and month swapped.

test-case-name: tests.identity.test_compare
"""
from __future__ import annotations

from collections.abc import Callable

from rapidfuzz.distance import OSA, JaroWinkler

from identity.matching.profile import Profile

CLOSE_NAME = 0.9
"""Jaro-Winkler similarity from which two names are one name misspelled."""

CLOSE_EDITS = ((8, 2), (4, 1))
"""(shortest length, edits): names this long this few edits apart are one name misspelled.
Jaro-Winkler alone forgives a slip at the end of a name but not one near its start."""

LEVELS: dict[str, tuple[str, ...]] = {
    "family": ("exact", "cross", "close", "different"),
    "first": ("exact", "close", "swapped", "partial", "different"),
    "birth_date": ("exact", "typo", "different"),
    "sex": ("exact", "different"),
    "birth_place": ("exact", "different"),
    "address": ("exact", "partial", "different"),
    "phone": ("exact", "different"),
    "ins": ("exact", "different"),
}
"""The fields compared, in vector order, and their levels from best to worst."""

FIELDS: tuple[str, ...] = tuple(LEVELS)

Level = int | None
Vector = tuple[Level, ...]


def _close(a: str, b: str) -> bool:
    """Whether two spellings are one name misspelled (a keying slip, a letter lost)."""
    if JaroWinkler.similarity(a, b) >= CLOSE_NAME:
        return True
    shortest = min(len(a), len(b))
    for length, edits in CLOSE_EDITS:
        if shortest >= length:
            return OSA.distance(a, b, score_cutoff=edits) <= edits
    return False


def inverted(a: Profile, b: Profile) -> bool:
    """Whether one side wrote the family name as first name and the first name as
    family name (a common slip on forms that ask NOM, Prénom)."""
    return bool(a.first and b.first and a.first in b.birth_forms + b.used_forms
                and b.first in a.birth_forms + a.used_forms)


def compare_family(a: Profile, b: Profile) -> Level:
    """exact: birth names share a spelling; cross: a birth or used name meets the
    other's used name (married names); close: a spelling within Jaro-Winkler 0.9
    or one phonetic key; different otherwise. Names written the other way
    round (family as first name and back) count as cross."""
    if set(a.birth_forms) & set(b.birth_forms):
        return 0
    if set(a.birth_forms + a.used_forms) & set(b.birth_forms + b.used_forms) or inverted(a, b):
        return 1
    if set(a.family_keys) & set(b.family_keys):
        return 2
    names_a, names_b = a.birth_forms[:1] + a.used_forms[:1], b.birth_forms[:1] + b.used_forms[:1]
    if any(_close(x, y) for x in names_a for y in names_b):
        return 2
    return 3


def compare_first(a: Profile, b: Profile) -> Level:
    """exact: same first first name; swapped: the first names of one are all
    first names of the other (order changed, some left out), or the lists are
    equal but for a misspelled first one; close: misspelled
    or same phonetic key; partial: they share only a word of a
    compound name or a beginning (PAUL / JEAN-PAUL, JEAN / JEAN-FRANÇOIS), which
    twins often do; different otherwise."""
    x, y = a.first, b.first
    if x is None or y is None:
        return None
    if x == y:
        return 0
    mine, theirs = set(a.first_forms), set(b.first_forms)
    if mine <= theirs or theirs <= mine or inverted(a, b):
        return 2
    if len(mine) > 1 and a.first_forms[1:] == b.first_forms[1:] and _close(x, y):
        return 2
    if a.first_keys[0] == b.first_keys[0] or _close(x, y):
        return 1
    if x in b.first_parts or y in a.first_parts or a.first_parts & b.first_parts \
            or (min(len(x), len(y)) >= 3 and (x.startswith(y) or y.startswith(x))):
        return 3
    return 4


def compare_birth_date(a: Profile, b: Profile) -> Level:
    """exact; typo: one digit off, two adjacent digits swapped, or day and month
    swapped; different otherwise."""
    x, y = a.birth_date, b.birth_date
    if x is None or y is None:
        return None
    if x == y:
        return 0
    if OSA.distance(x, y) == 1 or (x[:4] == y[:4] and x[4:6] == y[6:8] and x[6:8] == y[4:6]):
        return 1
    return 2


def _equal(x: str | None, y: str | None) -> Level:
    if x is None or y is None:
        return None
    return 0 if x == y else 1


def compare_sex(a: Profile, b: Profile) -> Level:
    """exact or different; unknown and other sexes are missing."""
    return _equal(a.sex, b.sex)


def compare_birth_place(a: Profile, b: Profile) -> Level:
    """exact or different INSEE code of the birth commune."""
    return _equal(a.birth_place, b.birth_place)


def compare_address(a: Profile, b: Profile) -> Level:
    """exact: same postcode and a close street; partial: same postcode only;
    different otherwise (a street name alone proves little: every town has a
    rue de la République). Missing when either side lacks the postcode and
    the street is not there to compare."""
    postcode = _equal(a.postcode, b.postcode)
    street = None if a.street is None or b.street is None else _close(a.street, b.street)
    if postcode is None:
        return None if not street else 1
    if postcode == 0:
        return 0 if street else 1
    return 2


def compare_phone(a: Profile, b: Profile) -> Level:
    """exact or different national phone digits."""
    return _equal(a.phone, b.phone)


def compare_ins(a: Profile, b: Profile) -> Level:
    """exact or different INS matricule, whatever the identity status."""
    x = a.ins.matricule if a.ins else None
    y = b.ins.matricule if b.ins else None
    return _equal(x, y)


COMPARATORS: tuple[Callable[[Profile, Profile], Level], ...] = (
    compare_family, compare_first, compare_birth_date, compare_sex, compare_birth_place,
    compare_address, compare_phone, compare_ins,
)


def compare(a: Profile, b: Profile) -> Vector:
    """The comparison vector of two profiles, one level (or None) per field of FIELDS."""
    return tuple(comparator(a, b) for comparator in COMPARATORS)
