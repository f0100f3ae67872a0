"""Tests for mappings.escaping: delimiters from MSH and the HL7 escape sequences."""
from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from mappings.escaping import Delimiters, DelimiterError, escape, unescape

STANDARD = Delimiters()
# Unusual but legal delimiters, so that no test passes by assuming the usual ones.
ODD = Delimiters.from_msh("#", "$*!@")
WITH_TRUNCATION = Delimiters.from_msh("|", "^~\\&#")


def test_from_msh_standard():
    """If MSH declares |^~\\&, then the delimiters are the usual ones and no truncation."""
    delimiters = Delimiters.from_msh("|", "^~\\&")
    assert delimiters == STANDARD
    assert (delimiters.field, delimiters.component, delimiters.repetition,
            delimiters.escape, delimiters.subcomponent, delimiters.truncation) == \
        ("|", "^", "~", "\\", "&", None)
    assert delimiters.encoding_characters == "^~\\&"


def test_from_msh_truncation():
    """If MSH-2 holds a fifth character (v2.7), then it is the truncation character."""
    assert WITH_TRUNCATION.truncation == "#"
    assert WITH_TRUNCATION.encoding_characters == "^~\\&#"


@pytest.mark.parametrize("encoding", ["^~\\", "^~\\&#!", "^^\\&", "^~|&"])
def test_from_msh_refuses(encoding):
    """If MSH-2 is too short, too long, or repeats a delimiter, then DelimiterError."""
    with pytest.raises(DelimiterError):
        Delimiters.from_msh("|", encoding)


@pytest.mark.parametrize("field, encoding", [
    ("|", "^~\\R"), ("|", "^~1&"), ("A", "^~\\&"), ("|", "^ \\&"), ("|", "^~\\\t"),
    ("|", "^~\\&\u00e9")])
def test_from_msh_refuses_letters_digits_spaces(field, encoding):
    """If a delimiter is a letter, digit, space or not ASCII, then DelimiterError: \\R\\
    could not be told from an escape sequence (as mllp.header refuses it too)."""
    with pytest.raises(DelimiterError, match="punctuation"):
        Delimiters.from_msh(field, encoding)


@pytest.mark.parametrize("sequence, char", [
    ("\\F\\", "|"), ("\\S\\", "^"), ("\\T\\", "&"), ("\\R\\", "~"), ("\\E\\", "\\"),
])
def test_unescape_each_delimiter(sequence, char):
    """If a value holds a delimiter escape sequence, then unescape gives the delimiter."""
    assert unescape(f"a{sequence}b", STANDARD) == f"a{char}b"


def test_unescape_with_other_delimiters():
    """If the message declares other delimiters, then the sequences stand for those."""
    assert unescape("1!F!2!S!3!T!4!R!5!E!6", ODD) == "1#2$3@4*5!6"
    assert unescape("a\\F\\b", ODD) == "a\\F\\b"


@pytest.mark.parametrize("text", [
    "\\H\\bold\\N\\", "\\X0D0A\\", "line\\.br\\next", "\\Cxxyy\\", "\\Zlocal\\", "\\\\",
])
def test_unescape_leaves_other_sequences(text):
    """If a value holds a formatting or character-set sequence, then unescape keeps it."""
    assert unescape(text, STANDARD) == text


def test_unescape_unclosed_escape_kept():
    """If an escape character is never closed, then it is kept literally."""
    assert unescape("C:\\temp", STANDARD) == "C:\\temp"
    assert unescape("a\\T\\b\\c", STANDARD) == "a&b\\c"


def test_truncation_sequence_only_when_declared():
    """If MSH-2 declares a truncation character, then \\P\\ stands for it; else it is kept."""
    assert unescape("a\\P\\b", WITH_TRUNCATION) == "a#b"
    assert unescape("a\\P\\b", STANDARD) == "a\\P\\b"
    assert escape("a#b", WITH_TRUNCATION) == "a\\P\\b"
    assert escape("a#b", STANDARD) == "a#b"


def test_escape_each_delimiter():
    """If a value holds delimiters, then escape writes each as its sequence."""
    assert escape("a|b^c&d~e\\f", STANDARD) == "a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f"
    assert escape("1#2$3@4*5!6", ODD) == "1!F!2!S!3!T!4!R!5!E!6"


def test_escape_plain_text_unchanged():
    """If a value holds no delimiter, then escape returns it as it is."""
    assert escape("Hélène Marie", STANDARD) == "Hélène Marie"


def test_escape_keeps_formatting_sequences():
    """If a value holds a well-formed formatting sequence, then escape keeps it."""
    assert escape("\\H\\bold\\N\\ & \\.br\\", STANDARD) == "\\H\\bold\\N\\ \\T\\ \\.br\\"
    assert escape("\\Xa^b\\", STANDARD) == "\\E\\Xa\\S\\b\\E\\"


_PLAIN = st.text(alphabet="ab |^~\\&#FSTREP", max_size=30)


@given(_PLAIN)
def test_unescape_inverts_escape(text):
    """If any text is escaped then unescaped, then it comes back unchanged."""
    for delimiters in (STANDARD, WITH_TRUNCATION):
        assert unescape(escape(text, delimiters), delimiters) == text


_TOKENS = st.lists(st.one_of(
    st.text(alphabet="abc 12", min_size=1, max_size=5),
    st.sampled_from(["\\F\\", "\\S\\", "\\T\\", "\\R\\", "\\E\\", "\\H\\", "\\N\\",
                     "\\.br\\", "\\X0D\\"]),
), max_size=12)


@given(_TOKENS)
def test_escape_inverts_unescape(tokens):
    """If well-formed escaped text is unescaped then escaped, then it comes back unchanged."""
    text = "".join(tokens)
    assert escape(unescape(text, STANDARD), STANDARD) == text
