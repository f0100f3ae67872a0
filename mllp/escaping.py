"""
Escaping text for the few fields the wire layer writes and reads (MSA-3, ERR-8, MSH-10).

The ACK builder writes free text into a message whose delimiters the sender chose, and the
ACK reader gives back the text a peer wrote. Only the delimiter escapes (``\\F\\ \\S\\ \\T\\
\\R\\ \\E\\``, ``\\P\\`` when MSH-2 declares a v2.7 truncation character) and two-digit hex
escapes (``\\X0D\\``, for the CR and LF that would end a segment) are converted; every other
sequence is kept as written. What a peer wrote is never trusted to be well formed: a
malformed sequence (``\\XZZ\\``, ``\\X-1\\``) or an escape character never closed (``a\\b``)
is kept literally, so reading an ACK's text cannot fail.

:mod:`mappings.escaping` does the same job for mappings, with the formatting sequences a
mapping must keep; the layering keeps the two packages apart, and this one needs less.

test-case-name: tests.mllp.test_escaping
"""
from __future__ import annotations

_HEX_DIGITS = frozenset("0123456789ABCDEFabcdef")


def _letters(field_separator: str, encoding_characters: str) -> dict[str, str]:
    """Escape letter -> the delimiter it stands for, for these delimiters."""
    letters = dict(zip("SRET", encoding_characters))
    letters["F"] = field_separator
    if len(encoding_characters) > 4:
        letters["P"] = encoding_characters[4]  # v2.7 truncation character
    return letters


def escape(text: str, field_separator: str, encoding_characters: str) -> str:
    """Escape HL7 delimiters (and CR/LF, which would end the segment) in ``text``."""
    for char in field_separator + encoding_characters + "\r\n":
        if char in text:
            break
    else:
        return text  # the usual case (a control id, most texts): nothing to escape
    escape_char = encoding_characters[2]
    names = {char: letter for letter, char in _letters(field_separator,
                                                       encoding_characters).items()}
    out = []
    for char in text:
        name = names.get(char)
        if name is not None:
            out.append(f"{escape_char}{name}{escape_char}")
        elif char in "\r\n":
            out.append(f"{escape_char}X{ord(char):02X}{escape_char}")
        else:
            out.append(char)
    return "".join(out)


def unescape(text: str, field_separator: str, encoding_characters: str) -> str:
    """Undo :func:`escape`; keep any other sequence, and an unclosed escape, as written.

    Never raises, whatever ``text`` holds: it comes from a peer.
    """
    escape_char = encoding_characters[2]
    if escape_char not in text:
        return text
    letters = _letters(field_separator, encoding_characters)
    out = []
    start = 0
    while True:
        opening = text.find(escape_char, start)
        closing = text.find(escape_char, opening + 1) if opening >= 0 else -1
        if closing < 0:
            break
        out.append(text[start:opening])
        body = text[opening + 1:closing]
        out.append(letters.get(body) or _hex_char(body) or text[opening:closing + 1])
        start = closing + 1
    out.append(text[start:])
    return "".join(out)


def _hex_char(body: str) -> str | None:
    """The character of a two-digit hex escape body (``X0D``), None for anything else."""
    if len(body) == 3 and body[0] == "X" and body[1] in _HEX_DIGITS and body[2] in _HEX_DIGITS:
        return chr(int(body[1:], 16))
    return None
