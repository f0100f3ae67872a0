"""Tests for engine.flow.dedupe: the decoded sender and control id of a message."""
from __future__ import annotations

import dataclasses

from engine.flow.dedupe import identity
from mllp.header import read_header


def _identity(msh: str):
    return identity(read_header(msh.encode("latin-1") + b"\r"))


def test_escapes_are_resolved():
    """If a component separator is escaped in MSH-3, then the identity holds the character,
    so a copy spelling it another way (here with a custom escape character) is the same."""
    escaped = _identity("MSH|^~\\&|A\\S\\B|HOSP|E|F|2026||ADT^A01|X\\F\\1|P|2.5")
    other_escape = _identity("MSH|^~#&|A#S#B|HOSP|E|F|2026||ADT^A01|X#F#1|P|2.5")
    assert escaped == (("A^B",), ("HOSP",), ("X|1",)) == other_escape


def test_components_compared_trailing_empties_dropped():
    """If MSH-4 is an HD with components, then they are kept apart; ``HIS`` and ``HIS^^``
    are one application."""
    assert _identity("MSH|^~\\&|HIS^^|H^1.2^ISO|E|F|2026||ADT^A01|9|P|2.5") == (
        ("HIS",), ("H", "1.2", "ISO"), ("9",))


def test_other_field_separator():
    """If the field separator is '#', then a '|' in MSH-10 is an ordinary character."""
    assert _identity("MSH#^~\\&#X#Y|Z#E#F#2026##ADT^A01#W|1#P#2.5") == (
        ("X",), ("Y|Z",), ("W|1",))


def test_the_sender_part_is_kept_on_the_header_shape():
    """If messages of one header shape are read, then their sender part is resolved once,
    kept on the shape, and each keeps its own control id; a header without a shape (made
    by hand) has the same identity."""
    first = read_header(b"MSH|^~\\&|A\\S\\B|H^1^ISO|E|F|2026||ADT^A01|X1|P|2.5\r")
    second = read_header(b"MSH|^~\\&|A\\S\\B|H^1^ISO|E|F|2027||ADT^A01|X\\F\\2|P|2.5\r")
    assert second.shape is first.shape
    assert identity(first) == (("A^B",), ("H", "1", "ISO"), ("X1",))
    assert identity(second) == (("A^B",), ("H", "1", "ISO"), ("X|2",))
    assert identity(dataclasses.replace(second, shape=None)) == identity(second)
    assert first.shape.derived[identity][:2] == (("A^B",), ("H", "1", "ISO"))
