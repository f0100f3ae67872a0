"""
A lazy, mutable view of one HL7 v2 message, for mappings to read and change.

Why lazy: a mapping usually reads or writes a handful of fields in two or three segments of
a message of ten to thirty. Only MSH is read when the message is parsed (it declares the
delimiters); every other segment stays the string it was until a step touches it, and a
segment that was only read is written back exactly as it came. A message no step changed is
therefore written back byte for byte, and a changed one differs only in the segments changed.

Structure and numbering
-----------------------
The text is split into segments on CR; LF and CRLF are accepted too, and each segment keeps
the terminator that followed it (``Segment.end``), so files edited on other systems, mixed
terminators and a missing final terminator all round-trip. Blank lines are kept as unnamed
segments that no lookup by name returns.

A segment's text splits on the field separator into ``parts``; ``parts[0]`` is the name. For
every segment but MSH, field *n* is ``parts[n]``. In MSH the field separator itself is MSH-1,
so the split consumes it: MSH-1 is the separator, MSH-2 (the encoding characters) is
``parts[1]`` and MSH-*n* is ``parts[n - 1]``. MSH-1 and MSH-2 are read as single values (never
split into components) and cannot be changed: the delimiters are fixed for the life of a
parsed message.

A field splits into repetitions, a repetition into components, a component into
subcomponents. All indices are 1-based, as HL7 numbers them. Reading past the end of what is
written gives ``""``; writing past the end pads with empty parts.

Values and encoded text
-----------------------
:meth:`Segment.get` and :meth:`Segment.set` deal in *values*: unescaped text of one
subcomponent (see :mod:`mappings.escaping`). :meth:`Segment.node` and :meth:`Segment.set_node`
deal in *encoded* text of a whole field, repetition or component, with the inner separators
and escape sequences as written, for copying structure from one place to another.

Writing
-------
A changed segment is re-joined from its parts. Trailing empty parts are trimmed, as HL7
writers do, at every level the change rebuilt (the segment's fields, and the repetitions,
components and subcomponents of the field changed); fields the change did not touch keep
their text exactly.

Null
----
HL7 writes an explicit null (“delete the value the receiver holds”) as two double quotes.
It is kept as the literal two-character value ``'""'`` (:data:`NULL`), distinct from an empty
or absent value (``""``, “not present”); :func:`is_null` tests for it.

test-case-name: tests.mappings.test_message
"""
from __future__ import annotations

from typing import Iterable

from mappings.escaping import Delimiters, escape, unescape

__all__ = ["HL7Message", "MessageError", "NULL", "Segment", "is_null"]

NULL = '""'
"""The HL7 explicit null, as :meth:`Segment.get` returns it and :meth:`Segment.set` takes it."""


def is_null(value: str | None) -> bool:
    """Whether ``value`` is the HL7 explicit null ``""`` (not merely empty)."""
    return value == NULL


class MessageError(ValueError):
    """The text is not an HL7 v2 message this view can hold, or a change is not allowed."""


class Segment:
    """One segment of an :class:`HL7Message`, split into fields only once touched.

    ``name`` is the segment id (``"PID"``, ``"ZBE"``; ``""`` for a blank line) and ``end`` the
    terminator written after it (``""`` for a last segment with none).
    """

    __slots__ = ("name", "end", "detached", "_raw", "_parts", "_changed", "_delimiters",
                 "_offset")

    def __init__(self, raw: str, end: str, delimiters: Delimiters):
        cut = raw.find(delimiters.field)
        self.name = raw if cut < 0 else raw[:cut]
        self.end = end
        #: True once removed from its message (a group holding it then skips it).
        self.detached = False
        self._raw = raw
        self._parts: list[str] | None = None
        self._changed = False
        self._delimiters = delimiters
        # MSH-n is parts[n - 1]; field n of any other segment is parts[n].
        self._offset = 1 if self.name == "MSH" else 0

    def __repr__(self) -> str:
        return f"<Segment {self.text()!r}>"

    @property
    def delimiters(self) -> Delimiters:
        return self._delimiters

    @property
    def changed(self) -> bool:
        """Whether a change was made since parsing (the text is then re-joined)."""
        return self._changed

    def text(self) -> str:
        """The segment as written, without its terminator."""
        if not self._changed:
            return self._raw
        parts = _trimmed(self._parts)
        return self._delimiters.field.join(parts)

    def _split(self) -> list[str]:
        if self._parts is None:
            self._parts = self._raw.split(self._delimiters.field)
        return self._parts

    def field_count(self) -> int:
        """The number of the last field written (0 for a segment with none)."""
        return len(self._split()) - 1 + self._offset

    def field(self, number: int) -> str:
        """Field ``number`` as encoded text, ``""`` when the segment stops before it."""
        if number < 1:
            raise IndexError(f"field numbers start at 1, not {number}")
        if self._offset and number == 1:
            return self._delimiters.field
        parts = self._split()
        index = number - self._offset
        return parts[index] if index < len(parts) else ""

    def set_field(self, number: int, text: str) -> None:
        """Replace field ``number`` with encoded ``text``, padding with empty fields."""
        if number < 1:
            raise IndexError(f"field numbers start at 1, not {number}")
        if self._offset and number <= 2:
            raise MessageError(f"MSH-{number} holds the delimiters and cannot be changed")
        parts = self._split()
        index = number - self._offset
        if index >= len(parts):
            parts.extend([""] * (index + 1 - len(parts)))
        parts[index] = text
        self._changed = True

    def repetitions(self, number: int) -> list[str]:
        """The repetitions of field ``number`` as encoded text; none for an empty field."""
        text = self.field(number)
        if not text:
            return []
        if self._offset and number <= 2:
            return [text]
        return text.split(self._delimiters.repetition)

    def node(self, number: int, repetition: int | None = None, component: int | None = None,
             subcomponent: int | None = None) -> str:
        """Encoded text of a field, repetition, component or subcomponent.

        With neither ``repetition`` nor ``component`` the whole field (every repetition) is
        returned; otherwise a missing ``repetition`` is the first. The text is ``""`` past
        the end of what is written.
        """
        text = self.field(number)
        if (repetition is None and component is None) or (self._offset and number <= 2):
            return text
        d = self._delimiters
        text = _nth(text, d.repetition, repetition or 1)
        if component is None:
            return text
        text = _nth(text, d.component, component)
        if subcomponent is None:
            return text
        return _nth(text, d.subcomponent, subcomponent)

    def set_node(self, number: int, text: str, repetition: int | None = None,
                 component: int | None = None, subcomponent: int | None = None) -> None:
        """Replace the node :meth:`node` names with encoded ``text``, padding as needed."""
        if repetition is None and component is None:
            self.set_field(number, text)
            return
        d = self._delimiters
        field = self.field(number)
        if ((repetition or 1) == component == (subcomponent or 1) == 1
                and d.repetition not in field and d.component not in field
                and d.subcomponent not in field and not (
                    d.repetition in text or d.component in text or d.subcomponent in text)):
            # The most common write, a value into a field that holds one value: the split
            # and join below would give ``text`` itself.
            self.set_field(number, text)
            return
        reps = field.split(d.repetition)
        index = (repetition or 1) - 1
        if component is None:
            _put(reps, index, text)
        else:
            comps = _at(reps, index).split(d.component)
            if subcomponent is None:
                _put(comps, component - 1, text)
            else:
                subs = _at(comps, component - 1).split(d.subcomponent)
                _put(subs, subcomponent - 1, text)
                _put(comps, component - 1, d.subcomponent.join(_trimmed(subs)))
            _put(reps, index, d.component.join(_trimmed(comps)))
        self.set_field(number, d.repetition.join(_trimmed(reps)))

    def get(self, number: int, repetition: int = 1, component: int = 1,
            subcomponent: int = 1) -> str:
        """The value (unescaped) of one subcomponent; ``""`` when not present."""
        if self._offset and number <= 2:
            return self.field(number) if repetition == component == subcomponent == 1 else ""
        text = self.node(number, repetition, component, subcomponent)
        return unescape(text, self._delimiters)

    def set(self, number: int, value: str, repetition: int = 1, component: int = 1,
            subcomponent: int = 1) -> None:
        """Write ``value`` (escaped here) into one subcomponent, padding as needed."""
        self.set_node(number, escape(value, self._delimiters), repetition, component,
                      subcomponent)

    def remove_repetition(self, number: int, repetition: int) -> None:
        """Remove one repetition of field ``number``; the later ones move up."""
        reps = self.repetitions(number)
        if repetition <= len(reps):
            del reps[repetition - 1]
            self.set_field(number, self._delimiters.repetition.join(reps))


def _nth(text: str, separator: str, number: int) -> str:
    """Part ``number`` (1-based) of ``text`` split on ``separator``; ``""`` past the end."""
    if number == 1:
        cut = text.find(separator)
        return text if cut < 0 else text[:cut]
    parts = text.split(separator, number)
    return parts[number - 1] if number <= len(parts) else ""


def _at(parts: list[str], index: int) -> str:
    return parts[index] if index < len(parts) else ""


def _put(parts: list[str], index: int, text: str) -> None:
    if index >= len(parts):
        parts.extend([""] * (index + 1 - len(parts)))
    parts[index] = text


def _trimmed(parts: list[str]) -> list[str]:
    """``parts`` without its trailing empty strings (the first part is always kept)."""
    end = len(parts)
    while end > 1 and not parts[end - 1]:
        end -= 1
    return parts[:end]


class HL7Message:
    """One message as segments; build it with :meth:`parse`, write it with :meth:`to_text`."""

    __slots__ = ("delimiters", "separator", "structure_cache", "_segments")

    def __init__(self, segments: list[Segment], delimiters: Delimiters, separator: str):
        self.delimiters = delimiters
        #: The message's tree of segment groups (:func:`mappings.groups.root`), built when a
        #: path first names a group; None until then and after a segment is added or removed.
        self.structure_cache = None
        # The terminator given to segments added at the end of a message that had none.
        self.separator = separator
        self._segments = segments

    @classmethod
    def parse(cls, text: str) -> "HL7Message":
        """The message ``text`` holds (already decoded); raise :class:`MessageError`."""
        lines = _split_lines(text)
        first = next((raw for raw, _ in lines if raw), "")
        if not first.startswith("MSH") or len(first) < 4:
            raise MessageError(f"the first segment is not MSH: {first[:20]!r}")
        field_separator = first[3]
        encoding = first[4:].split(field_separator, 1)[0]
        try:
            delimiters = Delimiters.from_msh(field_separator, encoding)
        except ValueError as error:
            raise MessageError(str(error)) from None
        separator = next((end for _, end in lines if end), "\r")
        return cls([Segment(raw, end, delimiters) for raw, end in lines], delimiters, separator)

    def to_text(self) -> str:
        """The message as text: unchanged segments verbatim, changed ones re-joined."""
        return "".join([s.text() + s.end for s in self._segments])

    @property
    def msh(self) -> Segment:
        return next(s for s in self._segments if s.name == "MSH")

    def segments(self, name: str | None = None) -> list[Segment]:
        """The segments called ``name`` in message order; every named one without a name."""
        if name is None:
            return [s for s in self._segments if s.name]
        return [s for s in self._segments if s.name == name]

    def segment(self, name: str, occurrence: int = 1) -> Segment | None:
        """The ``occurrence``-th (1-based) segment called ``name``, or None."""
        for s in self._segments:
            if s.name == name:
                occurrence -= 1
                if occurrence == 0:
                    return s
        return None

    def add_segment(self, after: Segment | None, name: str,
                    fields: Iterable[str] = ()) -> Segment:
        """Insert a segment after ``after`` (at the end when None) and return it.

        ``fields`` are encoded texts: ``fields[0]`` is field 1.
        """
        if len(name) != 3 or not name.isalnum() or not name.isupper() or name == "MSH":
            raise MessageError(f"not a segment name that can be added: {name!r}")
        index = len(self._segments) - 1 if after is None else self._index(after)
        previous = self._segments[index]
        raw = self.delimiters.field.join([name, *fields])
        segment = Segment(raw, previous.end, self.delimiters)
        if not previous.end:
            previous.end = self.separator
        self._segments.insert(index + 1, segment)
        self.structure_cache = None
        return segment

    def remove_segment(self, segment: Segment) -> None:
        """Remove ``segment``; MSH cannot be removed."""
        if segment.name == "MSH":
            raise MessageError("MSH cannot be removed")
        index = self._index(segment)
        del self._segments[index]
        segment.detached = True
        self.structure_cache = None
        if index == len(self._segments) and index > 0:
            # The new last segment takes the old last one's terminator (or lack of one).
            self._segments[index - 1].end = segment.end

    def _index(self, segment: Segment) -> int:
        for index, candidate in enumerate(self._segments):
            if candidate is segment:
                return index
        raise MessageError(f"{segment!r} is not a segment of this message")


def _split_lines(text: str) -> list[tuple[str, str]]:
    """(segment text, terminator) pairs; CR, LF and CRLF are terminators."""
    if "\n" not in text:
        separator = "\r"
    elif "\r" not in text:
        separator = "\n"
    elif text.count("\r\n") == text.count("\r") == text.count("\n"):
        separator = "\r\n"
    else:
        return _split_mixed(text)
    parts = text.split(separator)
    lines = [(raw, separator) for raw in parts[:-1]]
    if parts[-1]:
        lines.append((parts[-1], ""))
    return lines


def _split_mixed(text: str) -> list[tuple[str, str]]:
    """Like :func:`_split_lines` for text whose segments end in different ways."""
    lines = []
    start = 0
    for index, char in enumerate(text):
        if char == "\n" and index > 0 and text[index - 1] == "\r":
            continue
        if char == "\r" and text[index + 1:index + 2] == "\n":
            lines.append((text[start:index], "\r\n"))
            start = index + 2
        elif char in "\r\n":
            lines.append((text[start:index], char))
            start = index + 1
    if start < len(text):
        lines.append((text[start:], ""))
    return lines

