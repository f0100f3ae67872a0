"""
Routing decisions as pure functions: which destinations get a message, on which lane.

A lane is a FIFO: messages on one lane are sent one after the other, in the order they were
received. Ordering by destination puts everything on lane 0; ordering by patient hashes the
patient's identifier onto one of N lanes, so that one patient's A08 never overtakes its A01
while different patients' messages travel in parallel.

test-case-name: tests.flow.test_routing
"""
from __future__ import annotations

import zlib

from engine.store.records import NewDelivery

ORDER_BY_DESTINATION = "destination"
ORDER_BY_PATIENT = "patient"


def patient_key(text: str, field_separator: str = "|", component_separator: str = "^",
                repetition_separator: str = "~") -> str:
    """PID-3, first repetition, first component (the sender's patient identifier), or "".

    Reads only the PID segment (found by a search, not by splitting the message); a message
    without PID has no patient key and goes to lane 0.
    """
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


def plan_deliveries(destinations: list[tuple[str, str, int]], patient: str) -> tuple[NewDelivery, ...]:
    """One delivery per destination; ``destinations`` is (name, ordering key, lanes)."""
    planned = []
    for name, order_by, lanes in destinations:
        lane = lane_for(patient, lanes) if order_by == ORDER_BY_PATIENT else 0
        planned.append(NewDelivery(name, lane))
    return tuple(planned)
