"""
HL7 v2 delimiters and escape sequences, so that mappings read and write plain text.

Why: a value such as ``Dupont & Fils`` or ``3|4`` cannot sit in a message as is; HL7 writes
the delimiter characters inside a value as escape sequences (``\\T\\``, ``\\F\\``...). A
mapping engineer must never see or type those: :func:`unescape` turns what the message holds
into the value, :func:`escape` turns a value into what the message must hold, both for the
delimiters a given message declares in MSH-1 and MSH-2.

The sequences converted (HL7 v2.5 section 2.7.4, v2.7 for ``\\P\\``):

==========  =====================================================
``\\F\\``    field separator (MSH-1, usually ``|``)
``\\S\\``    component separator (usually ``^``)
``\\T\\``    subcomponent separator (usually ``&``)
``\\R\\``    repetition separator (usually ``~``)
``\\E\\``    escape character (usually ``\\``)
``\\P\\``    truncation character, only when MSH-2 declares one (v2.7)
==========  =====================================================

Every other sequence — highlighting ``\\H\\`` ``\\N\\``, hexadecimal ``\\Xhh..\\``, character
set switches ``\\C..\\`` ``\\M..\\``, locally defined ``\\Z..\\`` and the formatted-text
commands ``\\.br\\`` ``\\.sp\\``... — is *left as it is* by :func:`unescape`: its meaning is
for the receiving application, and turning it into text would lose it. For the same reason
:func:`escape` keeps a well-formed sequence of those kinds (escape character, a body that
starts with ``H N X Z C M`` or ``.`` and holds no delimiter, escape character) instead of
escaping its escape characters, so ``escape(unescape(s)) == s`` for such values and copying
formatted text from one field to another keeps its formatting. The price: the literal text
``\\H\\`` cannot be written through :func:`escape` (it would be read as highlighting).

An escape character with no closing one (``a\\b``) is kept literally by :func:`unescape`.

test-case-name: tests.mappings.test_escaping
"""
from __future__ import annotations

from dataclasses import dataclass, field as dataclass_field

__all__ = ["Delimiters", "DelimiterError", "escape", "unescape"]

# First characters of the escape sequences that are passed through untouched.
_PASSED_THROUGH = frozenset("HNXZCM.")


class DelimiterError(ValueError):
    """MSH-1 or MSH-2 does not declare a usable set of delimiters."""


@dataclass(frozen=True)
class Delimiters:
    """The delimiters of one message: MSH-1 and the characters of MSH-2 in order.

    ``truncation`` is the optional fifth character of MSH-2 (HL7 v2.7), None when absent.
    """

    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"
    truncation: str | None = None
    # Lookup tables built once per set of delimiters, so escaping costs no setup per call.
    _to_sequence: dict = dataclass_field(init=False, repr=False, compare=False)
    _from_sequence: dict = dataclass_field(init=False, repr=False, compare=False)
    _specials: str = dataclass_field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        chars = [self.field, self.component, self.repetition, self.escape, self.subcomponent]
        if self.truncation is not None:
            chars.append(self.truncation)
        if any(len(c) != 1 for c in chars) or len(set(chars)) != len(chars):
            raise DelimiterError(f"delimiters must be distinct single characters: {chars!r}")
        unusable = [c for c in chars if not _punctuation(c)]
        if unusable:
            # A letter or digit would be read back as an escape sequence's name (\\R\\),
            # a space or control character as data: the mllp header reader refuses them too.
            raise DelimiterError(f"delimiters must be printable ASCII punctuation, not "
                                 f"{''.join(unusable)!r}")
        letters = {"F": self.field, "S": self.component, "T": self.subcomponent,
                   "R": self.repetition, "E": self.escape}
        if self.truncation is not None:
            letters["P"] = self.truncation
        to_sequence = {ord(c): f"{self.escape}{letter}{self.escape}"
                       for letter, c in letters.items()}
        object.__setattr__(self, "_to_sequence", to_sequence)
        object.__setattr__(self, "_from_sequence", letters)
        object.__setattr__(self, "_specials", "".join(chars))

    @classmethod
    def from_msh(cls, field_separator: str, encoding_characters: str) -> "Delimiters":
        """The delimiters declared by MSH-1 and MSH-2 (four characters, or five from v2.7)."""
        if len(encoding_characters) not in (4, 5):
            raise DelimiterError(
                f"MSH-2 must hold 4 or 5 encoding characters, not {encoding_characters!r}")
        component, repetition, escape_char, subcomponent = encoding_characters[:4]
        truncation = encoding_characters[4] if len(encoding_characters) == 5 else None
        return cls(field_separator, component, repetition, escape_char, subcomponent,
                   truncation)

    @property
    def encoding_characters(self) -> str:
        """MSH-2 as it is written for these delimiters."""
        return (self.component + self.repetition + self.escape + self.subcomponent
                + (self.truncation or ""))


def unescape(text: str, delimiters: Delimiters) -> str:
    """The value ``text`` stands for: the delimiter escape sequences replaced by characters.

    Sequences other than ``\\F\\ \\S\\ \\T\\ \\R\\ \\E\\`` (and ``\\P\\`` when a truncation
    character is declared) are kept as they are, as is an escape character never closed.
    """
    esc = delimiters.escape
    if esc not in text:
        return text
    letters = delimiters._from_sequence
    out = []
    start = 0
    while True:
        opening = text.find(esc, start)
        if opening < 0:
            break
        closing = text.find(esc, opening + 1)
        if closing < 0:
            break
        out.append(text[start:opening])
        char = letters.get(text[opening + 1:closing])
        out.append(char if char is not None else text[opening:closing + 1])
        start = closing + 1
    out.append(text[start:])
    return "".join(out)


def escape(text: str, delimiters: Delimiters) -> str:
    """What a message must hold to carry the value ``text`` with these delimiters.

    Formatting and character-set sequences (see the module docstring) are kept as they are.
    """
    for char in delimiters._specials:
        if char in text:
            break
    else:
        return text
    table = delimiters._to_sequence
    esc = delimiters.escape
    if esc not in text:
        return text.translate(table)
    out = []
    start = 0
    while True:
        opening = text.find(esc, start)
        if opening < 0:
            break
        out.append(text[start:opening].translate(table))
        closing = text.find(esc, opening + 1)
        if closing > opening + 1 and _passed_through(text[opening + 1:closing], delimiters):
            out.append(text[opening:closing + 1])
            start = closing + 1
        else:
            out.append(table[ord(esc)])
            start = opening + 1
    out.append(text[start:].translate(table))
    return "".join(out)


def _punctuation(char: str) -> bool:
    """Whether ``char`` can be a delimiter: printable ASCII, not a letter, digit or space."""
    return char.isascii() and char.isprintable() and not char.isalnum() and char != " "


def _passed_through(body: str, delimiters: Delimiters) -> bool:
    """Whether ``\\body\\`` is a sequence that :func:`escape` keeps rather than escapes."""
    if body[0] not in _PASSED_THROUGH:
        return False
    return not any(char in body for char in delimiters._specials)


def text_runs(value: str, delimiters: Delimiters) -> list[tuple[str, bool]]:
    """``value`` cut into (piece, is_sequence): the formatting and character-set sequences
    that :func:`escape` keeps, and the text between them.

    Why: a transform of the letters (upper case, a name's case) must change the text and
    leave ``\\H\\``, ``\\X4D\\`` or ``\\.br\\`` as they are, or :func:`escape` would no longer
    recognise them and would write their escape characters as ``\\E\\``.
    """
    esc = delimiters.escape
    runs: list[tuple[str, bool]] = []
    start = scan = 0
    while True:
        opening = value.find(esc, scan)
        if opening < 0:
            break
        closing = value.find(esc, opening + 1)
        if closing > opening + 1 and _passed_through(value[opening + 1:closing], delimiters):
            if opening > start:
                runs.append((value[start:opening], False))
            runs.append((value[opening:closing + 1], True))
            start = scan = closing + 1
        else:
            scan = opening + 1
    if start < len(value):
        runs.append((value[start:], False))
    return runs
