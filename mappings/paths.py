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

from dataclasses import replace

from mappings.groups import Group, GroupError, root
from mappings.message import HL7Message, MessageError, Segment
from mappings.pathsyntax import (  # noqa: F401 (the grammar is part of this API)
    EVERY, MAX_NUMBER_DIGITS, MissingSegmentError, Path, PathError, _index_text, parse_path)

__all__ = [
    "EVERY", "MAX_NUMBER_DIGITS", "MissingSegmentError", "Path", "PathError", "delete", "expand",
    "get", "get_encoded", "get_one", "groups_at", "locate", "parse_path", "present",
    "segments_at", "set_encoded", "set_value",
]

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
