"""
What a structural validation failure means in HL7's own terms: a table 0357 code and an
ERR-2 location, so that the ACK refusing the message tells the sender what to fix, where.

hl7apy (the validator) says what is wrong in its own words and exception types, never where
in the message: ``Missing required child PID.PID_3``, ``Cannot add <Segment PID>: max limit
(1) reached``, ``notadate is not an HL7 valid date value``. :func:`classify` maps them:

====================================================  ====  ===========================
hl7apy says                                           code  location
====================================================  ====  ===========================
a required segment is missing (``ADT_A01.PID``)        100  ``PID^1``
a segment occurs too often                             100  its first extra occurrence
a required field is missing (``PID.PID_3``)            101  the first PID with PID-3 empty
a field repeats too often                              102  the first segment repeating it
a value is not of its data type                        102  the first field holding it
a value is too long                                    104  the first field holding it
                                                            (102 before v2.7: no 104 there)
anything else                                          100  none
====================================================  ====  ===========================

Locations are found by looking in the message for what hl7apy names; when it cannot be
found the location is left empty rather than guessed.

test-case-name: tests.flow.test_structure
"""
from __future__ import annotations

from mappings.message import HL7Message, MessageError, Segment
from mllp.ack import version_tuple
from mllp.codes import DATA_TYPE, REQUIRED_FIELD_MISSING, SEGMENT_SEQUENCE, VALUE_TOO_LONG

__all__ = ["classify"]


def classify(error: Exception, text: str, version: str) -> tuple[int, str]:
    """The table 0357 code and ERR-2 location (``SEG^seq^field``) of hl7apy's ``error``.

    ``text`` is the message validated, ``version`` the version it was validated as.
    """
    kind, said = type(error).__name__, str(error)
    try:
        message = HL7Message.parse(text)
    except MessageError:
        message = None
    if said.startswith("Missing required child "):
        return _missing(said.rsplit(" ", 1)[-1], message)
    if kind == "MaxChildLimitReached":
        return _too_many(said, message)
    if kind == "MaxLengthReached":
        value = said.removeprefix("The value ").rsplit(" exceed the max length", 1)[0]
        code = VALUE_TOO_LONG if version_tuple(version) >= (2, 7) else DATA_TYPE
        return code, _holding(message, value)
    if kind == "ValueError" and " is not an HL7 valid " in said:
        return DATA_TYPE, _holding(message, said.split(" is not an HL7 valid ", 1)[0])
    return SEGMENT_SEQUENCE, ""


def _missing(name: str, message: HL7Message | None) -> tuple[int, str]:
    """``ADT_A01.PID`` (a segment) or ``PID.PID_3`` (a field) is required and absent."""
    parent, _, child = name.partition(".")
    segment, _, number = child.partition("_")
    if number.isascii() and number.isdigit() and segment == parent:
        field = int(number)
        for sequence, found in _numbered(message, segment):
            if not found.field(field):
                return REQUIRED_FIELD_MISSING, f"{segment}^{sequence}^{field}"
        return REQUIRED_FIELD_MISSING, f"{segment}^1^{field}"
    if _segment_name(child):
        return SEGMENT_SEQUENCE, f"{child}^1"
    return SEGMENT_SEQUENCE, ""  # a group (``ORU_R01_PATIENT_RESULT``): no segment to name


def _too_many(said: str, message: HL7Message | None) -> tuple[int, str]:
    """``Cannot add <Segment PID>: max limit (1) ...`` or ``<Field PID_1 (...) ...>``."""
    added = said.partition("<")[2].partition(">")[0].split(" ")
    limit = said.partition("max limit (")[2].partition(")")[0]
    if added[0] == "Segment" and len(added) > 1 and _segment_name(added[1]):
        extra = int(limit) + 1 if limit.isascii() and limit.isdigit() else 1
        return SEGMENT_SEQUENCE, f"{added[1]}^{extra}"
    segment, _, number = (added[1] if len(added) > 1 else "").partition("_")
    if added[0] == "Field" and number.isascii() and number.isdigit():
        field = int(number)
        for sequence, found in _numbered(message, segment):
            if len(found.repetitions(field)) > 1:
                return DATA_TYPE, f"{segment}^{sequence}^{field}"
        return DATA_TYPE, f"{segment}^1^{field}"
    return SEGMENT_SEQUENCE, ""


def _holding(message: HL7Message | None, value: str) -> str:
    """The location of the first field holding ``value`` as a whole part, else ``""``."""
    if message is None or not value:
        return ""
    d = message.delimiters
    counts: dict[str, int] = {}
    for segment in message.segments():
        counts[segment.name] = sequence = counts.get(segment.name, 0) + 1
        for field in range(1, segment.field_count() + 1):
            encoded = segment.field(field)
            if value not in encoded:
                continue
            for repetition in encoded.split(d.repetition):
                for component in repetition.split(d.component):
                    if value == component or value in component.split(d.subcomponent):
                        return f"{segment.name}^{sequence}^{field}"
    return ""


def _numbered(message: HL7Message | None, name: str) -> list[tuple[int, Segment]]:
    """(sequence, segment) of each segment called ``name``, 1-based."""
    return [] if message is None else list(enumerate(message.segments(name), start=1))


def _segment_name(name: str) -> bool:
    return len(name) == 3 and name.isascii() and name.isalnum() and name.isupper()
