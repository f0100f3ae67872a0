"""
Paths into an HL7 v2 message, in the Terser style HL7 engineers know from HAPI.

Why a parsed object: a mapping names the same paths for every message it runs on, so the
text is parsed once, when the mapping is loaded (where a mistake is reported with its
column), and each message then pays only for the lookup.

Grammar
-------
::

    path          = segment [ "-" field [ index ] [ "." component [ "." subcomponent ] ] ]
    segment       = NAME [ index ]
    index         = "[" ( number | "*" ) "]"
    field, component, subcomponent = number
    NAME          = an upper-case letter then two upper-case letters or digits
    number        = a positive integer without leading zeros (1, 2, 10...)

No spaces; components are separated by ``.`` only (HAPI's ``PID-5-1`` is refused, with a
hint). Indices are 1-based. Examples:

=================  ==========================================================
``PID-5``          PID-5, first repetition, component 1 (see *Values* below)
``PID-5.1``        first component of PID-5
``PID-3[2].4.1``   repetition 2 of PID-3, component 4, subcomponent 1
``PID-3[*].1``     component 1 of every repetition of PID-3
``OBX[*]-5``       OBX-5 of every OBX segment
``OBX[2]-5``       OBX-5 of the second OBX segment
``MSH-9.2``        the trigger event; MSH-1 is the field separator, MSH-2 the
                   encoding characters, both read whole and never written
``ZBE``            the first ZBE segment (a *segment path*); ``OBX[*]``: every OBX
=================  ==========================================================

Groups (as HAPI's Terser names them) may come first: ``[ "/" ] { GROUP [ index ] "/" }``
before a path (``ORDER_OBSERVATION[2]/OBX[*]-5``), or alone (``ORDER_OBSERVATION[*]``, a
*group path*); :mod:`mappings.groups` says what a group holds. Each function resolves the
groups, then applies ``path.within`` inside each instance; a group instance is accepted
wherever a message is.

A segment with no index is the first of its name; a field with no index is its first
repetition, except where a whole field is meant (:func:`delete`, :func:`get_encoded`,
:func:`set_encoded` with no repetition and no component).

Values
------
:func:`get`, :func:`get_one` and :func:`set_value` deal in *values*: the unescaped text of
one subcomponent (see :mod:`mappings.escaping`). As in HAPI's Terser, a path that stops above
the subcomponent names the first component/subcomponent below it: ``PID-5`` reads and writes
what ``PID-5.1.1`` does, so ``MSH-9`` is ``"ADT"``. To copy a whole field or component with
its structure, use :func:`get_encoded` and :func:`set_encoded`, which deal in the encoded
text of the node a path names.

HL7 makes no difference between an empty field and one the segment stops before: both are
*not present*. :func:`get` returns the values present, so it never returns ``""``; a missing
segment, field, repetition or component gives ``[]`` and :func:`get_one` gives None. The
explicit null is a value: it reads as ``'""'`` (:data:`mappings.message.NULL`).

Writing and deleting
--------------------
:func:`set_value` creates missing fields, repetitions, components and subcomponents. With
``[*]`` it writes every *existing* occurrence (an empty field has no repetitions, so nothing
is written). On a missing segment it raises :class:`MissingSegmentError`: a mapping that
writes into a segment the message lacks is wrong for that message, and the message should be
stopped with the path named rather than passed on unchanged; create the segment first or
guard the step with a condition. :func:`delete` of something absent does nothing.

:func:`delete` empties what the path names: a whole field (``PID-5``), one repetition
(``PID-3[2]``: later repetitions move up), a component or subcomponent; a segment path
removes the segment(s) (``ZBE``, ``OBX[2]``, ``OBX[*]``).

:func:`expand` turns the ``[*]`` of a path into the concrete paths that exist in a message,
for steps that loop over repetitions or segments.

test-case-name: tests.mappings.test_paths
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal, Union

from mappings.groups import Group, GroupError, root
from mappings.message import HL7Message, MessageError, Segment

__all__ = [
    "EVERY", "MAX_NUMBER_DIGITS", "MissingSegmentError", "Path", "PathError", "delete", "expand",
    "get", "get_encoded", "get_one", "groups_at", "locate", "parse_path", "present",
    "segments_at", "set_encoded", "set_value",
]

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


def _segments(message: HL7Message, path: Path) -> list[Segment]:
    """The segments ``path`` names, in message order."""
    if path.occurrence is EVERY:
        return message.segments(path.segment)
    found = message.segment(path.segment, path.occurrence or 1)
    return [] if found is None else [found]


def _repetitions(segment: Segment, path: Path) -> range | tuple[int, ...]:
    """The repetition numbers ``path`` names in ``segment``."""
    if path.repetition is EVERY:
        return range(1, len(segment.repetitions(path.field)) + 1)
    return (path.repetition or 1,)


def _value_path(path: Path) -> None:
    if path.field is None:
        raise PathError(str(path), "a segment path names no value")


def get(message: HL7Message, path: Path) -> list[str]:
    """Every value present at ``path``, unescaped, in message order; ``[]`` when none."""
    if path.groups:
        return [value for group, _ in _places(message, path) for value in get(group, path.within)]
    _value_path(path)
    values = []
    component, subcomponent = path.component or 1, path.subcomponent or 1
    for segment in _segments(message, path):
        for repetition in _repetitions(segment, path):
            value = segment.get(path.field, repetition, component, subcomponent)
            if value:
                values.append(value)
    return values


def get_one(message: HL7Message, path: Path) -> str | None:
    """The first value present at ``path``, or None."""
    if path.groups:
        values = get(message, path)
        return values[0] if values else None
    if path.occurrence is EVERY or path.repetition is EVERY:
        values = get(message, path)
        return values[0] if values else None
    _value_path(path)
    segment = message.segment(path.segment, path.occurrence or 1)
    if segment is None:
        return None
    value = segment.get(path.field, path.repetition or 1, path.component or 1,
                        path.subcomponent or 1)
    return value or None


def _check_writable(path: Path) -> None:
    _value_path(path)
    if path.segment == "MSH" and path.field <= 2:
        raise PathError(str(path), f"MSH-{path.field} holds the delimiters and is never written")


def _writable(message: HL7Message, path: Path) -> list[Segment]:
    """The segments a write through ``path`` goes to; raise if it cannot be done."""
    _check_writable(path)
    segments = _segments(message, path)
    if not segments and path.occurrence is not EVERY:
        raise MissingSegmentError(str(path), f"the message has no {path.segment} segment"
                                  + (f" number {path.occurrence}" if path.occurrence else ""))
    return segments


def set_value(message: HL7Message, path: Path, value: str) -> None:
    """Write ``value`` (escaped here) at ``path``; see the module docstring."""
    if path.groups:
        for group in _write_places(message, path):
            set_value(group, path.within, value)
        return
    component, subcomponent = path.component or 1, path.subcomponent or 1
    for segment in _writable(message, path):
        for repetition in _repetitions(segment, path):
            segment.set(path.field, value, repetition, component, subcomponent)


def get_encoded(message: HL7Message, path: Path) -> list[str]:
    """The encoded text of each node ``path`` names in the segments present (``""`` too)."""
    if path.groups:
        return [text for group, _ in _places(message, path)
                for text in get_encoded(group, path.within)]
    _value_path(path)
    texts = []
    for segment in _segments(message, path):
        if path.repetition is EVERY:
            for repetition in _repetitions(segment, path):
                texts.append(segment.node(path.field, repetition, path.component,
                                          path.subcomponent))
        else:
            texts.append(segment.node(path.field, path.repetition, path.component,
                                      path.subcomponent))
    return texts


def set_encoded(message: HL7Message, path: Path, text: str) -> None:
    """Replace each node ``path`` names with the encoded ``text`` (no escaping)."""
    if path.groups:
        for group in _write_places(message, path):
            set_encoded(group, path.within, text)
        return
    for segment in _writable(message, path):
        if path.repetition is EVERY:
            for repetition in _repetitions(segment, path):
                segment.set_node(path.field, text, repetition, path.component,
                                 path.subcomponent)
        else:
            segment.set_node(path.field, text, path.repetition, path.component,
                             path.subcomponent)


def delete(message: HL7Message, path: Path) -> None:
    """Empty what ``path`` names, or remove the segments a segment path names."""
    if path.names_group:
        for group, _ in groups_at(message, path):
            for segment in group.segments():
                group.remove_segment(segment)
        return
    if path.groups:
        for group, _ in _places(message, path):
            delete(group, path.within)
        return
    if path.is_segment:
        for segment in _segments(message, path):
            try:
                message.remove_segment(segment)
            except MessageError as error:
                raise PathError(str(path), str(error)) from None
        return
    _check_writable(path)
    for segment in _segments(message, path):
        if path.component is None and isinstance(path.repetition, int):
            segment.remove_repetition(path.field, path.repetition)
        elif path.component is None:
            if segment.field(path.field):
                segment.set_field(path.field, "")
        else:
            for repetition in _repetitions(segment, path):
                if segment.node(path.field, repetition, path.component, path.subcomponent):
                    segment.set_node(path.field, "", repetition, path.component,
                                     path.subcomponent)


def _has(message: HL7Message, path: Path) -> bool:
    return bool(_segments(message, path))


def expand(message: HL7Message, path: Path) -> list[Path]:
    """``path`` once for each occurrence its ``[*]`` indices name in ``message``.

    Segment ``[*]`` becomes 1..n over the segments of that name; repetition ``[*]`` becomes
    1..n over the repetitions written in each (an empty field has none). A path without
    ``[*]`` expands to itself when its segment exists.
    """
    if path.groups:
        return [replace(concrete, groups=groups, absolute=path.absolute)
                for group, groups in _places(message, path)
                for concrete in expand(group, path.within)]
    if path.occurrence is EVERY:
        occurrences = range(1, len(message.segments(path.segment)) + 1)
    else:
        occurrences = (path.occurrence,) if _has(message, path) else ()
    paths = []
    for occurrence in occurrences:
        concrete = replace(path, occurrence=occurrence)
        if path.repetition is not EVERY:
            paths.append(concrete)
            continue
        segment = message.segment(path.segment, occurrence or 1)
        for repetition in _repetitions(segment, path):
            paths.append(replace(concrete, repetition=repetition))
    return paths


# --- groups ---------------------------------------------------------------------------------

def _places(message, path: Path, levels: tuple | None = None) -> list[tuple[Group, tuple]]:
    """The group instances the groups of ``path`` name, each with its concrete groups.

    ``message`` is the message, or a group instance that relative paths start from. Raise
    :class:`PathError` when the message's structure is unknown or has no such group.
    """
    try:
        start = message if type(message) is Group else root(message)
    except GroupError as error:
        raise PathError(str(path), str(error)) from None
    current: list[tuple[Group, tuple]] = [(start, ())]
    for name, index in path.groups if levels is None else levels:
        if not any(group.holds(name) for group, _ in current):
            raise PathError(str(path), f"{current[0][0].name} has no group {name} in its "
                                       "message structure")
        current = [(instance, concrete + ((name, number),)) for group, concrete in current
                   for number, instance in group.instances(name, index)]
    return current


def _write_places(message, path: Path) -> list[Group]:
    """The group instances a write goes to; a missing one is an error, as a segment is."""
    places = _places(message, path)
    if not places and all(index is not EVERY for _, index in path.groups):
        shown = "/".join(name + _index_text(index) for name, index in path.groups)
        raise MissingSegmentError(str(path), f"the message has no group {shown}")
    return [group for group, _ in places]


def groups_at(message, path: Path) -> list[tuple[Group, str]]:
    """The instances of the group a group path (``ORDER_OBSERVATION[*]``) names, in order,
    each with its concrete path text (``ORDER_OBSERVATION[2]``) for messages."""
    levels = path.groups + ((path.segment, path.occurrence),)
    return [(group, "/".join(f"{name}[{number}]" for name, number in concrete))
            for group, concrete in _places(message, path, levels)]


def segments_at(message, path: Path) -> list[Segment]:
    """The segments a segment path names, in its groups when it has some."""
    if path.groups:
        return [segment for group, _ in _places(message, path)
                for segment in _segments(group, path.within)]
    return _segments(message, path)


def present(message, path: Path) -> list[str]:
    """The text of each segment (or group) a segment path (or group path) names."""
    if path.names_group:
        return [group.text() for group, _ in groups_at(message, path)]
    return [segment.text() for segment in segments_at(message, path)]


def locate(message, path: Path) -> tuple[Group | None, Path]:
    """The one group instance a path without ``[*]`` in its groups names (None when absent),
    and the path to use inside it."""
    places = _places(message, path)
    return (places[0][0] if places else None), path.within
