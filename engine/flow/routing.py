"""
Routing decisions as pure functions: which destinations get a message, on which lane.

A lane is a FIFO: messages on one lane are sent one after the other, in the order they were
received. Ordering by destination puts everything on lane 0; ordering by patient hashes the
patient's identifier onto one of N lanes, so that one patient's A08 never overtakes its A01
while different patients' messages travel in parallel.

test-case-name: tests.flow.test_routing
"""
from __future__ import annotations

import re
import zlib

from engine.store.records import NewDelivery

ORDER_BY_DESTINATION = "destination"
ORDER_BY_PATIENT = "patient"


def patient_key(text: str, field_separator: str = "|", component_separator: str = "^",
                repetition_separator: str = "~") -> str:
    """PID-3, first repetition, first component (the sender's patient identifier), or "".

    Reads only the first PID segment; a message without PID has no patient key and goes to
    lane 0. A message of CR segments with its PID after MSH (nearly all) is read by one
    regular expression search, which finds the segment and cuts PID-3 in one call where
    ``find`` and ``split`` take five; anything else (an LF before that PID, PID first, no
    CR-led PID) by :func:`scanned_patient_key`, which the search agrees with
    (tests.flow.test_routing)."""
    pattern = _PID3.get((field_separator, component_separator, repetition_separator))
    if pattern is None:
        pattern = _pid3_pattern(field_separator, component_separator, repetition_separator)
    found = pattern.search(text)
    if (found is None or text.find("\n", 0, found.start()) >= 0
            or text.startswith("PID" + field_separator)):
        return scanned_patient_key(text, field_separator, component_separator,
                                   repetition_separator)
    return found.group(1) or ""


def scanned_patient_key(text: str, field_separator: str = "|", component_separator: str = "^",
                        repetition_separator: str = "~") -> str:
    """:func:`patient_key` for any message: the PID segment found by a search for a CR or
    LF before it (or at the start), then cut with ``split``."""
    start = _segment_start(text, "PID" + field_separator)
    if start < 0:
        return ""
    end = text.find("\r", start)
    if end < 0:
        end = len(text)
    found = text.find("\n", start, end)  # LF ends it if it comes first (searched up to CR)
    if found >= 0:
        end = found
    fields = text[start:end].split(field_separator, 4)
    if len(fields) <= 3:
        return ""
    first = fields[3].split(repetition_separator, 1)[0]
    return first.split(component_separator, 1)[0]


def _pid3_pattern(field: str, component: str, repetition: str) -> re.Pattern[str]:
    """The search of :func:`patient_key` for these separators: a CR, ``PID``, two fields,
    then PID-3 up to its first repetition or component (the group; None when the segment
    ends first, so that a later PID is never read), never past the segment's end."""
    within = re.escape(field) + "\r\n"
    value = "[^" + within + re.escape(component) + re.escape(repetition) + "]*"
    pattern = re.compile("\rPID" + re.escape(field)
                         + "(?:(?:[^" + within + "]*" + re.escape(field) + "){2}(" + value + "))?")
    if len(_PID3) < 64:
        _PID3[(field, component, repetition)] = pattern
    return pattern


# (field, component, repetition separators) -> patient_key's search; senders use few
_PID3: dict[tuple[str, str, str], re.Pattern[str]] = {}


def _segment_start(text: str, head: str) -> int:
    """Where the first segment starting with ``head`` begins in ``text``, or -1.

    Segments end with CR, or LF: the LF form is searched only before the first CR form, so
    that a message of CR segments (nearly all) is not searched to its end twice."""
    if text.startswith(head):
        return 0
    found = text.find("\r" + head)
    before = text.find("\n" + head, 0, len(text) if found < 0 else found)
    if before >= 0:
        found = before
    return found + 1 if found >= 0 else -1


def lane_for(key: str, lanes: int) -> int:
    """A stable lane number in ``range(lanes)`` for ``key`` (same key, same lane, every run)."""
    if lanes <= 1 or not key:
        return 0
    return zlib.crc32(key.encode("utf-8")) % lanes


def lanes_for(destinations: list[tuple[str, str, int]], patient: str) -> tuple[int, ...]:
    """The lane of each destination (name, ordering key, lanes) for a message of
    ``patient``: :func:`lane_for`'s for those ordered by patient, 0 for the others; the
    key's checksum taken once for all of them."""
    checksum = zlib.crc32(patient.encode("utf-8")) if patient else 0
    return tuple([checksum % lanes if lanes > 1 and order_by == ORDER_BY_PATIENT else 0
                  for _, order_by, lanes in destinations])


def plan_deliveries(destinations: list[tuple[str, str, int]], patient: str) -> tuple[NewDelivery, ...]:
    """One delivery per destination; ``destinations`` is (name, ordering key, lanes)."""
    return tuple(NewDelivery(name, lane) for (name, _, _), lane
                 in zip(destinations, lanes_for(destinations, patient)))
