"""
A phonetic key for French names, for blocking candidates.

No well-kept library on PyPI has one (jellyfish and rapidfuzz have Soundex and
Metaphone, built for English; the French packages found are abandoned), so this
is a small key of our own, in the spirit of French Soundex variants:

1. spellings of one sound are merged: ``PH`` → F, ``CH`` → S (but ``CHR`` → KR),
   ``TH`` → T, ``QU``/``CK``/``Q`` → K, hard ``C`` → K and soft ``C`` → S,
   ``GU`` before E/I/Y → G, soft ``G`` → J, ``GN`` → N, ``Z`` → S, ``W`` → V,
   ``Y`` → I, ``EAU``/``AU`` → O, ``OU`` → U, ``AI``/``EI`` → E, ``H`` silent,
   ``M`` before a consonant → N, ``BV`` → V; doubled letters count once;
2. silent endings go: one final S (a final X is dropped earlier), final E's,
   then final T's and D's (DUPONT = DUPOND = DUPONTS, ARNAUD = ARNAU);
3. the key is the first letter followed by the consonants, at most 8 letters.

It is deliberately coarse: two names with one key are only *candidates*; the
scorer (Jaro-Winkler on the full forms) decides how alike they are.

test-case-name: tests.identity.test_phonetic
"""
from __future__ import annotations

import re

_RULES = [(re.compile(pattern), replacement) for pattern, replacement in (
    ("PH", "F"), ("CHR", "KR"), ("CH", "S"), ("SH", "S"), ("TH", "T"), ("CK", "K"),
    ("QU", "K"), ("Q", "K"),
    ("GU(?=[EIY])", "g"), ("GE(?=[AOU])", "J"), ("G(?=[EIY])", "J"), ("g", "G"), ("GN", "N"),
    ("SC(?=[EIY])", "S"), ("C(?=[EIY])", "S"), ("C", "K"),
    ("X$", ""), ("X", "KS"), ("Z", "S"), ("W", "V"), ("Y", "I"), ("BV", "V"),
    ("EAU", "O"), ("AU", "O"), ("OU", "U"), ("[AE]I", "E"), ("H", ""),
    ("M(?=[BCDFGJKLNPQRSTVXZ])", "N"),
)]
_DOUBLES = re.compile(r"(.)\1+")
_VOWELS = str.maketrans("", "", "AEIOU")
KEY_LENGTH = 8


def _trim_ending(word: str) -> str:
    """Drop the letters French writes but does not say at the end of a name."""
    if len(word) > 2 and word.endswith("S"):
        word = word[:-1]
    while len(word) > 2 and word.endswith("E"):
        word = word[:-1]
    while len(word) > 2 and word[-1] in "TD":
        word = word[:-1]
    return word


def french_phonetic(folded: str) -> str:
    """The phonetic key of a name already folded (:func:`normalise.fold`).

    Spaces and anything not A-Z are ignored, so ``LE GALL`` and ``LEGALL``
    have one key. An empty name has the empty key.
    """
    word = "".join(c for c in folded if "A" <= c <= "Z")
    if not word:
        return ""
    for pattern, replacement in _RULES:
        word = pattern.sub(replacement, word)
    word = _trim_ending(_DOUBLES.sub(r"\1", word))
    if not word:
        return ""
    key = word[0] + _DOUBLES.sub(r"\1", word[1:].translate(_VOWELS))
    return key[:KEY_LENGTH]
