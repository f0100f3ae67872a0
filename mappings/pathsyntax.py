"""
The grammar of HL7 v2 paths: :func:`parse_path` turns ``PID-3[*].1`` or
``ORDER_OBSERVATION[2]/OBX-5`` into a :class:`Path`, with no message in sight.

Reading and writing a message at a path is :mod:`mappings.paths`' job; the grammar itself is
described in that module's docstring, where users of the API look for it.

test-case-name: tests.mappings.test_paths
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal, Union

MAX_NUMBER_DIGITS = 9
"""The most digits a field, component, subcomponent or index number may have."""

EVERY: Literal["*"] = "*"
"""The ``[*]`` index: every occurrence."""

Index = Union[int, Literal["*"], None]


class PathError(ValueError):
    """A path that cannot be parsed, or cannot be used as asked on a message.

    ``text`` is the path; ``column`` (1-based) is where parsing failed, None for an error
    found while using a parsed path.
    """

    def __init__(self, text: str, reason: str, column: int | None = None):
        where = f" at column {column}" if column is not None else ""
        super().__init__(f"{reason}{where} in path {text!r}")
        self.text = text
        self.reason = reason
        self.column = column


class MissingSegmentError(PathError):
    """:func:`set_value` or :func:`set_encoded` named a segment the message does not have."""


@dataclass(frozen=True)
class Path:
    """A parsed path; ``str(path)`` gives its text back. None means "not given"."""

    segment: str
    occurrence: Index = None
    field: int | None = None
    repetition: Index = None
    component: int | None = None
    subcomponent: int | None = None
    #: The groups before the segment, outermost first: ``(("ORDER_OBSERVATION", 2),)``.
    groups: tuple[tuple[str, Index], ...] = ()
    #: True when ``segment`` is the name of a group (``ORDER_OBSERVATION[*]``), not a segment.
    names_group: bool = False
    #: True for a path written with a leading ``/``: read from the message, even in a group.
    absolute: bool = False

    def __str__(self) -> str:
        text = ("/" if self.absolute else "") + "".join(
            name + _index_text(index) + "/" for name, index in self.groups)
        text += self.segment + _index_text(self.occurrence)
        if self.field is not None:
            text += f"-{self.field}{_index_text(self.repetition)}"
            for number in (self.component, self.subcomponent):
                if number is not None:
                    text += f".{number}"
        return text

    @property
    def is_segment(self) -> bool:
        """Whether the path names segments rather than something inside them."""
        return self.field is None

    @property
    def many(self) -> bool:
        """Whether the path may name several things (a ``[*]`` anywhere in it)."""
        return (self.occurrence is EVERY or self.repetition is EVERY
                or any(index is EVERY for _, index in self.groups))

    @property
    def first(self) -> str:
        """The first name of the path: its outermost group, or its segment."""
        return self.groups[0][0] if self.groups else self.segment

    @property
    def within(self) -> "Path":
        """The path without its groups (read inside the group instance the groups name)."""
        return replace(self, groups=(), absolute=False)


def _index_text(index: Index) -> str:
    return "" if index is None else f"[{index}]"


class _Reader:
    """A cursor over the path text that reports errors with their column."""

    def __init__(self, text: str):
        self.text = text
        self.position = 0

    def fail(self, reason: str) -> PathError:
        return PathError(self.text, reason, self.position + 1)

    def peek(self) -> str:
        return self.text[self.position:self.position + 1]

    def accept(self, char: str) -> bool:
        if self.peek() == char:
            self.position += 1
            return True
        return False

    def name(self) -> str:
        name = self.text[self.position:self.position + 3]
        valid = (len(name) == 3 and name[0].isascii() and name[0].isupper()
                 and all(c.isascii() and (c.isupper() or c.isdigit()) for c in name[1:]))
        if not valid:
            raise self.fail("expected a segment name such as PID or ZBE")
        self.position += 3
        return name

    def number(self, what: str) -> int:
        start = self.position
        while self.peek().isascii() and self.peek().isdigit():
            self.position += 1
        digits = self.text[start:self.position]
        if not digits or digits[0] == "0":
            self.position = start
            raise self.fail(f"expected a {what} number (1, 2, ...)")
        if len(digits) > MAX_NUMBER_DIGITS:
            # No message has that many of anything; and int() refuses past 4300 digits.
            self.position = start
            raise self.fail(f"{what} number of {len(digits)} digits is too large "
                            f"(at most {MAX_NUMBER_DIGITS})")
        return int(digits)

    def index(self) -> Index:
        if not self.accept("["):
            return None
        if self.accept("*"):
            value: Index = EVERY
        elif self.peek().isascii() and self.peek()[:1].isdigit() and self.peek() != "0":
            value = self.number("index")
        else:
            raise self.fail("expected a number (1, 2, ...) or '*'")
        if not self.accept("]"):
            raise self.fail("expected ']'")
        return value


def parse_path(text: str) -> Path:
    """Parse ``text`` by the grammar of the module docstring; raise :class:`PathError`."""
    reader = _Reader(text)
    absolute = reader.accept("/")
    groups, group = _groups(reader)
    if group is not None:
        return Path(group[0], group[1], groups=groups, names_group=True, absolute=absolute)
    name = reader.name()
    occurrence = reader.index()
    if reader.position == len(text):
        return Path(name, occurrence, groups=groups, absolute=absolute)
    if not reader.accept("-"):
        raise reader.fail("expected '-' and a field number, or '[' and an index")
    field = reader.number("field")
    repetition = reader.index()
    component = subcomponent = None
    if reader.accept("."):
        component = reader.number("component")
        if reader.accept("."):
            subcomponent = reader.number("subcomponent")
    if reader.position < len(text):
        hint = " (components are separated by '.', as in PID-5.1)" if reader.peek() == "-" \
            else ""
        raise reader.fail(f"unexpected {reader.peek()!r}{hint}")
    if name == "MSH" and field <= 2 and (repetition, component, subcomponent) != (None,) * 3:
        raise PathError(text, f"MSH-{field} holds delimiters and has no repetitions or "
                              "components", 5)
    return Path(name, occurrence, field, repetition, component, subcomponent, groups,
                absolute=absolute)


_GROUP_LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ_")


def _is_segment_name(name: str) -> bool:
    return len(name) == 3 and name[0].isalpha() and name.isalnum()


def _groups(reader: _Reader) -> tuple[tuple[tuple[str, Index], ...], tuple | None]:
    """The ``GROUP[i]/`` prefixes at the reader, and the final group of a group path.

    Leaves the reader on the segment name otherwise, for the segment grammar to go on.
    """
    groups: list[tuple[str, Index]] = []
    text = reader.text
    while True:
        start = end = reader.position
        while end < len(text) and (text[end] in _GROUP_LETTERS or (end > start and text[end]
                                                                  in "0123456789")):
            end += 1
        name, reader.position = text[start:end], end
        index = reader.index() if name else None
        if name and reader.accept("/"):
            if _is_segment_name(name):
                raise PathError(text, f"{name} is a segment: only groups stand before '/' "
                                      "(ORDER_OBSERVATION[2]/OBX-5)", start + 1)
            groups.append((name, index))
            continue
        if name and not _is_segment_name(name) and reader.position == len(text):
            return tuple(groups), (name, index)
        reader.position = start
        return tuple(groups), None
