"""
The hard rules: evidence that forbids an automatic link whatever the score.

A missed link is recoverable; a false merge mixes two patients' records. So a
strict identity trait (RNIV: birth name, first name, birth date, sex, birth
place) that disagrees outright, or two different INS, sends even a
high-scoring pair to a human. The rules only ever demote a decision: none
turns a review or a new person into a link.

Twins are named apart because they are the classic false merge: everything
alike (name, birth date, address, often sex) but the first name, and twins'
first names are often alike too (Jean-Paul and Jean-Pierre). So when the
family name and birth date agree, only the same first name (exact, or the
same names in another order) may link: a misspelled, partial or different
first name goes to review. Siblings born a few years apart come close too
once a date is mistyped, so a first name that shares only a word with the
other's (JEAN-MARC / JEAN-FRANÇOIS) never links, and neither does a pair
where two of family name, first name and birth date are only approximate.

Strangers with a common name and first name are many: some are born a digit
away from each other. So one approximate trait links only when a trait that
names do not predict agrees (birth place, address, phone, INS) and none of
address and phone contradicts.

test-case-name: tests.identity.test_rules
"""
from __future__ import annotations

from identity.matching.compare import FIELDS, LEVELS, Vector

_F = {name: FIELDS.index(name) for name in FIELDS}


def _level(field_name: str, level: str) -> int:
    return LEVELS[field_name].index(level)


_FAMILY_AGREES = {_level("family", "exact"), _level("family", "cross"), _level("family", "close")}
_FIRST_SAME = {_level("first", "exact"), _level("first", "swapped")}
_FIRST_WEAK = {_level("first", "partial"), _level("first", "different")}
_DATE_EXACT = _level("birth_date", "exact")
_APPROXIMATE = ((FIELDS.index("family"), _level("family", "close")),
                (FIELDS.index("first"), _level("first", "close")),
                (FIELDS.index("birth_date"), _level("birth_date", "typo")))
_CORROBORATING = ((FIELDS.index("birth_place"), {_level("birth_place", "exact")}),
                  (FIELDS.index("address"), {_level("address", "exact"), _level("address", "partial")}),
                  (FIELDS.index("phone"), {_level("phone", "exact")}),
                  (FIELDS.index("ins"), {_level("ins", "exact")}))
_CONTRADICTING = ((FIELDS.index("address"), _level("address", "different")),
                  (FIELDS.index("phone"), _level("phone", "different")))

OUTRIGHT = (
    ("family-name-differs", "family", _level("family", "different")),
    ("birth-date-differs", "birth_date", _level("birth_date", "different")),
    ("sex-differs", "sex", _level("sex", "different")),
    ("birth-place-differs", "birth_place", _level("birth_place", "different")),
    ("ins-differs", "ins", _level("ins", "different")),
)
"""(reason, field, level) triples: a pair at that level is never linked automatically."""


def vetoes(vector: Vector) -> tuple[str, ...]:
    """The reasons why this comparison vector may not be linked automatically."""
    reasons = [reason for reason, name, level in OUTRIGHT if vector[_F[name]] == level]
    first = vector[_F["first"]]
    twins = vector[_F["birth_date"]] == _DATE_EXACT and vector[_F["family"]] in _FAMILY_AGREES
    if twins and first is not None and first not in _FIRST_SAME:
        reasons.append("possible-twin")
    elif first in _FIRST_WEAK:
        reasons.append("first-name-differs")
    approximate = sum(vector[i] == level for i, level in _APPROXIMATE)
    if approximate >= 2:
        reasons.append("several-approximate-traits")
    elif approximate == 1:
        if not any(vector[i] in levels for i, levels in _CORROBORATING):
            reasons.append("approximate-trait-uncorroborated")
        elif any(vector[i] == level for i, level in _CONTRADICTING):
            reasons.append("approximate-trait-contradicted")
    return tuple(reasons)


def ins_conflicts(vector: Vector) -> tuple[str, ...]:
    """Why a person holding the incoming qualified INS still is not surely the one.

    The INS agrees, so any disagreement of birth date (even a typo), sex or birth
    name is either a wrong INS or wrong traits: a human must look.
    """
    reasons = []
    if vector[_F["birth_date"]] not in (None, _DATE_EXACT):
        reasons.append("ins-birth-date-conflict")
    if vector[_F["sex"]] == _level("sex", "different"):
        reasons.append("ins-sex-conflict")
    if vector[_F["family"]] == _level("family", "different"):
        reasons.append("ins-family-name-conflict")
    return tuple(reasons)
