"""Tests for mllp.escaping: the faults fuzzing found, and the round trip as a property."""
from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mllp.escaping import escape, unescape

EXAMPLES = int(os.environ.get("AIGUILLAGE_FUZZ_EXAMPLES", "300"))  # bench/fuzz_wire.py: more
DELIMITERS = [("|", "^~\\&"), ("|", "^~\\&#"), ("#", "$%!*"), ("!", "@;/+=")]


def test_truncation_character_comes_back():
    """If a v2.7 truncation character is escaped as \\P\\, then unescape gives it back."""
    assert escape("1#2", "|", "^~\\&#") == "1\\P\\2"
    assert unescape("1\\P\\2", "|", "^~\\&#") == "1#2"


def test_p_is_kept_without_truncation_character():
    """If MSH-2 declares no truncation character, then \\P\\ is some other sequence, kept."""
    assert unescape("1\\P\\2", "|", "^~\\&") == "1\\P\\2"


@pytest.mark.parametrize("text", ["a\\b", "\\", "a\\F\\b\\", "\\X0D"])
def test_unclosed_escape_is_kept_as_written(text):
    """If an escape character is never closed, then it and what follows are kept literally."""
    assert unescape(text, "|", "^~\\&") == text.replace("\\F\\", "|")


@pytest.mark.parametrize("body", ["XZZ", "X-1", "X 1", "X+1", "X_1", "X1", "X123", "X", "Z01"])
def test_malformed_or_unknown_sequence_is_kept(body):
    """If a sequence is not a delimiter or two hex digits, then it is kept, never an error."""
    assert unescape(f"a\\{body}\\b", "|", "^~\\&") == f"a\\{body}\\b"


def test_hex_escapes_of_two_digits_are_decoded():
    """If a sequence is X and two hex digits, then it is that character (CR, LF, any case)."""
    assert unescape("a\\X0D\\b\\X0a\\c", "|", "^~\\&") == "a\rb\nc"


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.sampled_from(DELIMITERS), st.text())
def test_round_trip(delimiters, text):
    """If any text is escaped, then it holds no delimiter nor line end, and comes back."""
    separator, encoding = delimiters
    escaped = escape(text, separator, encoding)
    assert not set(escaped) & (set(separator + encoding) - {encoding[2]} | {"\r", "\n"})
    assert unescape(escaped, separator, encoding) == text


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.sampled_from(DELIMITERS),
       st.text(alphabet=st.sampled_from("\\XFSRTEP0aZz-#|^~&$% \r"), max_size=30))
def test_unescape_never_fails(delimiters, text):
    """If a peer writes any text, then unescape returns a string and never raises."""
    assert isinstance(unescape(text, *delimiters), str)
