"""
Normalisation of French identity traits before they are compared.

Senders write the same name in many ways: with or without accents, in capitals
or not, ``Le Gall`` or ``LEGALL``, ``de La Fontaine`` or ``Lafontaine``,
``Jean-Pierre`` or ``JEAN PIERRE``, ``d'Artagnan`` or ``DARTAGNAN``. Every
function here maps such variants to one comparable form and keeps nothing of
the original: the traits as received stay in :class:`identity.model.Traits`.

test-case-name: tests.identity.test_normalise
"""
from __future__ import annotations

import unicodedata

PARTICLES = frozenset({"DE", "D", "DU", "DES", "LE", "LA", "L", "LES", "DEL", "DELLA", "DI", "DA",
                       "DOS", "VAN", "VON"})
"""Words that some senders write apart, some glue, and some drop."""

LEADING_DROPPED = frozenset({"DE", "D"})
"""Particles that French usage itself drops (``La Fontaine`` for ``de La Fontaine``)."""

_LIGATURES = str.maketrans({"Œ": "OE", "œ": "oe", "Æ": "AE", "æ": "ae", "ß": "ss"})


def fold(text: str) -> str:
    """Upper-case ASCII letters and digits separated by single spaces.

    Accents are removed (``É`` → ``E``, ``Ç`` → ``C``), ligatures spelled out
    (``Œ`` → ``OE``); hyphens, apostrophes and every other mark become spaces.
    """
    decomposed = unicodedata.normalize("NFKD", text.translate(_LIGATURES))
    letters = [c if c.isalnum() and c.isascii() else " "
               for c in decomposed if not unicodedata.combining(c)]
    return " ".join("".join(letters).upper().split())


def family_forms(name: str | None) -> tuple[str, ...]:
    """The spellings of a family name that should all count as the same name.

    The first form glues every word (``LE GALL`` → ``LEGALL``, ``DU PONT`` →
    ``DUPONT``); the next drops a leading ``de``/``d'`` (``DE LA FONTAINE`` →
    ``LAFONTAINE``); the last drops every particle (``FONTAINE``). Two names
    agree when they share a form. An empty name has no form.
    """
    words = fold(name or "").split()
    if not words:
        return ()
    forms = ["".join(words)]
    if len(words) > 1 and words[0] in LEADING_DROPPED:
        forms.append("".join(words[1:]))
    core = "".join(w for w in words if w not in PARTICLES)
    if core:
        forms.append(core)
    return tuple(dict.fromkeys(forms))


def first_name_forms(first_names: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Each first name folded and glued (``Jean-Pierre`` → ``JEANPIERRE``), in order.

    A compound first name is one first name, whatever its separator: senders
    that have no hyphen write ``JEAN PIERRE`` in the first-name field.
    """
    forms = ("".join(fold(name).split()) for name in first_names)
    return tuple(form for form in forms if form)


def first_name_parts(first_names: tuple[str, ...] | list[str]) -> frozenset[str]:
    """Every word of every first name: ``Jean-Pierre Marie`` → JEAN, PIERRE, MARIE."""
    return frozenset(word for name in first_names for word in fold(name).split())


def phone_digits(phone: str | None) -> str | None:
    """A French phone number as its 9 national digits, or None if it has none.

    ``+33 6 12 34 56 78``, ``0033612345678`` and ``06.12.34.56.78`` all give
    ``612345678``: the trunk 0 and the country code are how it was dialled,
    not who answers.
    """
    digits = "".join(c for c in phone or "" if c.isdigit())
    for prefix in ("0033", "33", "0"):
        if digits.startswith(prefix) and len(digits) - len(prefix) == 9:
            return digits[len(prefix):]
    return digits or None


def place_code(code: str | None) -> str | None:
    """An INSEE commune code upper-cased (``2a004`` → ``2A004``), or None if blank."""
    value = (code or "").strip().upper()
    return value or None


def street(address: str | None) -> str | None:
    """A street line folded, or None if blank."""
    value = fold(address or "")
    return value or None
