"""
Properties of normalisation and comparison that hold for any input (hypothesis).
"""
from __future__ import annotations

import datetime

from hypothesis import example, given, settings
from hypothesis import strategies as st

from identity.matching import profile
from identity.matching.blocking import blocking_keys
from identity.matching.compare import FIELDS, compare
from identity.matching.normalise import fold
from identity.matching.phonetic import french_phonetic
from identity.model import Sex, Traits

LETTERS = "ABCDEÉÈFGHIJKLMNOPQRSTUVWXYZÇËÏ-' "
names = st.text(alphabet=LETTERS, min_size=1, max_size=14).filter(lambda n: fold(n))
dates = st.dates(min_value=datetime.date(1900, 1, 1)).map(lambda d: d.strftime("%Y%m%d"))
traits = st.builds(
    Traits,
    birth_name=names,
    first_names=st.lists(names, max_size=3).map(tuple),
    birth_date=st.one_of(st.none(), dates),
    sex=st.sampled_from(list(Sex)),
    used_name=st.one_of(st.none(), names),
    birth_place=st.one_of(st.none(), st.sampled_from(["75056", "2A004", "29019"])),
    postcode=st.one_of(st.none(), st.sampled_from(["35000", "29200"])),
)


@given(st.text())
def test_fold_is_idempotent_and_plain(text):
    """If a text is folded twice, then the second fold changes nothing, and only A-Z, 0-9
    and single spaces remain."""
    once = fold(text)
    assert fold(once) == once
    assert all(c.isascii() and (c.isalnum() or c == " ") for c in once)
    assert "  " not in once and once == once.strip()


@given(names)
def test_phonetic_key_is_stable_under_spelling_habits(name):
    """If a name is written in capitals or small letters, with or without hyphens, then
    its key does not change."""
    key = french_phonetic(fold(name))
    assert french_phonetic(fold(name.lower())) == key
    assert french_phonetic(fold(name.replace("-", " "))) == key


@settings(max_examples=300)
@given(traits, traits)
def test_comparison_is_symmetric(a, b):
    """If two identities are compared either way round, then the levels are the same: who
    was indexed first cannot change the decision."""
    assert compare(profile(a), profile(b)) == compare(profile(b), profile(a))


@given(traits)
@example(Traits(birth_name="H", first_names=("A",), sex=Sex.MALE))
@example(Traits(birth_name="A", first_names=("H",), sex=Sex.MALE))
def test_an_identity_meets_itself(a):
    """If an identity with a birth date or a first name is keyed, then it has a key, and it
    compares exact on every field it has (a postcode without a street is only partial)."""
    p = profile(a)
    if a.birth_date or p.first_forms:
        assert blocking_keys(p)
    levels = dict(zip(FIELDS, compare(p, p)))
    assert levels.pop("address") == (None if p.postcode is None else 1)
    assert all(level in (None, 0) for level in levels.values())
