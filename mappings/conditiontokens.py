"""
The tokens of the condition language (:mod:`mappings.expressions`): strings, numbers, words,
operators, punctuation and paths, each checked for shape with the column of a mistake.

Why a module of its own: the scanning rules (what a path, a group path or a number looks
like, which operator mistakes get a hint) are one job, and the parser only reads tokens.

test-case-name: tests.mappings.test_expressions
"""
from __future__ import annotations

import operator
import re
from decimal import Decimal

__all__ = ["COMPARISONS", "FUNCTIONS", "KEYWORDS", "ExpressionError", "Token", "tokenize"]

FUNCTIONS = ("empty", "exists", "length", "matches", "startswith")
KEYWORDS = ("and", "in", "not", "or")
COMPARISONS = {"==": operator.eq, "!=": operator.eq, "<": operator.lt, "<=": operator.le,
               ">": operator.gt, ">=": operator.ge}
_SEGMENT_NAME = re.compile(r"[A-Z][A-Z0-9]{2}")
_GROUP_NAME = re.compile(r"[A-Z][A-Z0-9_]*")
_NUMBER_LITERAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_WORD = re.compile(r"[A-Za-z0-9_]*")
_MISTAKES = {"=": "==", "<>": "!=", "=<": "<=", "=>": ">=", "&&": "and", "&": "and",
             "||": "or", "|": "or", "!": "not"}


class ExpressionError(ValueError):
    """A condition that cannot be compiled: what is wrong, and where (column from 1)."""

    def __init__(self, message: str, column: int, text: str | None = None):
        super().__init__(message, column)
        self.message = message
        self.column = column
        self.text = text

    def __str__(self) -> str:
        where = f"{self.message} at column {self.column}"
        if self.text is None:
            return where
        # One line, one column per character, so that the caret stands under the mistake.
        shown = "".join(char if char.isprintable() else " " for char in self.text)
        return f"{where}\n  {shown}\n  {' ' * (self.column - 1)}^"


_DIGITS = frozenset("0123456789")
_PATH_TAIL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-[")
_PATH_HINTS = {"-": ' (components follow ".", as in PID-5.1)',
               ".": " (a path ends at the sub-component)",
               "[": " (a repetition follows the field number, as in PID-3[2].1)"}


class Token:
    __slots__ = ("kind", "text", "column", "value")

    def __init__(self, kind: str, text: str, column: int, value=None):
        self.kind, self.text, self.column, self.value = kind, text, column, value

    def is_(self, kind: str, text: str) -> bool:
        return self.kind == kind and self.text == text

    def describe(self) -> str:
        if self.kind == "end":
            return "the end"
        return self.text if self.kind == "string" else f'"{self.text}"'


def tokenize(text: str) -> list[Token]:
    """The tokens of ``text``, ending with an "end" token one column past the text."""
    tokens, i = [], 0
    while i < len(text):
        if text[i] in " \t\r\n":
            i += 1
            continue
        token, i = _scanner(text, i)(text, i)
        tokens.append(token)
    tokens.append(Token("end", "", len(text) + 1))
    return tokens


def _scanner(text: str, i: int):
    char = text[i]
    if char == '"':
        return _scan_string
    if char in _DIGITS or (char == "-" and text[i + 1:i + 2] in _DIGITS):
        return _scan_number
    if "A" <= char <= "Z" or (char == "/" and "A" <= text[i + 1:i + 2] <= "Z"):
        return _scan_path
    if char == "_" or "a" <= char <= "z":
        return _scan_word
    if char in "()[],":
        return lambda text, i: (Token("punct", char, i + 1), i + 1)
    return _scan_operator


def _scan_string(text: str, start: int):
    chars, i = [], start + 1
    while i < len(text):
        char = text[i]
        if char == '"':
            return Token("string", text[start:i + 1], start + 1, "".join(chars)), i + 1
        if char == "\\":
            escaped = text[i + 1:i + 2]
            if escaped not in ('"', "\\"):
                raise ExpressionError(
                    f'unknown escape "\\{escaped}" in a string: only \\" and \\\\ exist '
                    '(values are compared unescaped: write "|", not "\\F\\")', i + 1)
            char, i = escaped, i + 1
        chars.append(char)
        i += 1
    raise ExpressionError('unterminated string: no closing "', start + 1)


def _scan_number(text: str, start: int):
    end = _NUMBER_LITERAL.match(text, start).end()
    if end < len(text) and text[end] in _PATH_TAIL:
        raise ExpressionError(f'bad number "{text[start:end + 1]}"', end + 1)
    spelling = text[start:end]
    return Token("number", spelling, start + 1, Decimal(spelling)), end


def _scan_word(text: str, start: int):
    end = _WORD.match(text, start).end()
    word = text[start:end]
    if (len(word) == 3 and _SEGMENT_NAME.fullmatch(word.upper())
            and text[end:end + 1] in ("-", "[")):
        raise ExpressionError(f'bad path: segment names are upper case ("{word.upper()}")',
                              start + 1)
    return Token("word", word, start + 1), end


def _scan_operator(text: str, start: int):
    for size in (2, 1):
        symbol = text[start:start + size]
        if symbol in COMPARISONS:
            return Token("operator", symbol, start + 1), start + size
        if symbol in _MISTAKES:
            raise ExpressionError(
                f'unknown operator "{symbol}"; did you mean "{_MISTAKES[symbol]}"?', start + 1)
    char = text[start]
    shown = char if char.isprintable() else f"U+{ord(char):04X}"
    raise ExpressionError(f'unexpected character "{shown}"', start + 1)


def _scan_path(text: str, start: int):
    """A path (``PID-3[*].1``, ``ORDER_OBSERVATION[2]/OBX-5``) or a bare segment or group
    (``ZBE``, ``OBX[2]``, ``ORDER_OBSERVATION[2]``), checked for shape."""
    at = start + 1 if text[start] == "/" else start
    while True:
        end = _WORD.match(text, at).end()
        name = text[at:end]
        i = _scan_index(text, end, "an occurrence")
        if text[i:i + 1] != "/":
            break
        if _SEGMENT_NAME.fullmatch(name) or not _GROUP_NAME.fullmatch(name):
            raise ExpressionError(
                f'bad path: "{name}" is not a group name (only groups stand before "/", as '
                'in ORDER_OBSERVATION[2]/OBX-5)', at + 1)
        at = i + 1
    if at == start and name.lower() in KEYWORDS + FUNCTIONS:
        raise ExpressionError(f'"{name}": keywords and function names are lower case',
                              start + 1)
    grouped = at != start
    if (grouped or len(name) > 3) and text[i:i + 1] != "-" and _GROUP_NAME.fullmatch(name) \
            and not _SEGMENT_NAME.fullmatch(name):
        return Token("segment", text[start:i], start + 1), i  # a group, for exists()
    if not _SEGMENT_NAME.fullmatch(name):
        raise ExpressionError(
            f'bad path: "{name}" is not a segment name (an upper-case letter, then two '
            'upper-case letters or digits)', at + 1)
    kind = "segment"
    if text[i:i + 1] == "-":
        kind = "path"
        i = _scan_index(text, _scan_digits(text, i + 1, 'a field number after "-"'),
                        "a repetition")
        for what in ("component", "sub-component"):
            if text[i:i + 1] != ".":
                break
            i = _scan_digits(text, i + 1, f'a {what} number after "."')
    if i < len(text) and text[i] in _PATH_TAIL:
        hint = _PATH_HINTS.get(text[i], "") if kind == "path" else ""
        raise ExpressionError(f'bad path "{text[start:i + 1]}": unexpected "{text[i]}"{hint}',
                              i + 1)
    return Token(kind, text[start:i], start + 1), i


def _scan_digits(text: str, start: int, what: str) -> int:
    end = start
    while end < len(text) and text[end] in _DIGITS:
        end += 1
    if end == start:
        raise ExpressionError(f"bad path: expected {what}", start + 1)
    if text[start] == "0":
        raise ExpressionError("bad path: numbers in a path start at 1, without a leading 0",
                              start + 1)
    return end


def _scan_index(text: str, start: int, what: str) -> int:
    """The position after ``[n]`` or ``[*]`` at ``start``, or ``start`` if there is none."""
    if text[start:start + 1] != "[":
        return start
    if text[start + 1:start + 3] == "*]":
        return start + 3
    end = _scan_digits(text, start + 1, f'{what} number or "*" after "["')
    if text[end:end + 1] != "]":
        raise ExpressionError('bad path: expected "]"', end + 1)
    return end + 1
