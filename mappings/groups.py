"""
Segment groups: the ``ORDER_OBSERVATION`` / ``OBSERVATION`` structure an HL7 engineer sees in
an ORU^R01, as HAPI's Terser names it, for paths such as ``ORDER_OBSERVATION[2]/OBX[*]-5``.

Why: a message with two orders cannot be mapped per order from segment names alone (every
OBX would take the first OBR's code). The groups of a message come from its *structure*, the
abstract message definition of the HL7 standard; this module reads those definitions from
hl7apy (``hl7apy.v2_5.MESSAGES`` and ``GROUPS``, one module per HL7 version) rather than from
tables written here, once per version (cached), and only when a path names a group: a
mapping without group paths never loads them.

Group names are HAPI's: the structure's prefix is dropped (hl7apy's ``ORU_R01_ORDER_OBSERVATION``
is ``ORDER_OBSERVATION``).

Which structure
---------------
MSH-9.3 (the message structure, ``ORU_R01``) when the version knows it; else the structure the
standard assigns to MSH-9.1/MSH-9.2 (``ADT^A08`` is ``ADT_A01``, :data:`EVENT_STRUCTURES`); else
``TYPE_EVENT``. The version is MSH-12.1 when hl7apy has it, else 2.5. A message whose structure
is not known cannot be read through groups (:class:`GroupError`).

Placing segments in groups
--------------------------
Segments are read in order against the structure, as a lenient parser does. Each goes to
the nearest place at or after the current one, in the group being filled or an enclosing
one, where a segment of that name may stand: the same slot repeated, a later slot, or a new
instance of a group that can begin with it. Nearest means the fewest slots passed over
(ties: the innermost group), so that an ORC after an order starts the next order of an
OML^O21 rather than the optional prior-result group nested in the first one, and an ORC
after the patient of an ORU^R01 starts its first order rather than a new patient result. Required segments that are missing are not an error. A
segment with no place anywhere (a Z-segment, a segment this version's structure lacks)
stays in the group being filled at that point, after what came before it.

Naming inside a group
---------------------
:meth:`Group.find` gives the children of a group called NAME when the group's definition has
a child of that name (``ORDER_OBSERVATION/NTE`` is the order's notes, not the notes of its
observations); otherwise it looks inside its subgroups, in message order
(``ORDER_OBSERVATION/OBX`` is every OBX of the order; ``ORDER_OBSERVATION`` at the top of an
ORU is found inside ``PATIENT_RESULT``). Counting (``[2]``) is over what was found, in order.

A built tree is cached on the message and dropped when a segment is added or removed; a
:class:`Group` keeps the segments it was built with, less those removed since.

test-case-name: tests.mappings.test_groups
"""
from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable

from mappings.message import HL7Message, Segment

__all__ = ["DEFAULT_VERSION", "EVENT_STRUCTURES", "Group", "GroupError", "known_group_names",
           "root", "structure_of"]

DEFAULT_VERSION = "2.5"
_VERSIONS = ("2.1", "2.2", "2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.8",
             "2.8.1", "2.8.2")

# The structures events share (HL7 v2.5 chapters 3, 4, 9, 10 and table 0354). An event not
# listed here has a structure of its own name (ORU^R01 is ORU_R01), or MSH-9.3 names it.
_SHARED = {
    "ADT_A01": "A01 A04 A08 A13", "ADT_A05": "A05 A14 A28 A31", "ADT_A06": "A06 A07",
    "ADT_A09": "A09 A10 A11", "ADT_A12": "A12", "ADT_A15": "A15", "ADT_A16": "A16",
    "ADT_A21": "A21 A22 A23 A25 A26 A27 A29 A32 A33", "ADT_A30": "A30 A34 A35 A36 A46 A47 "
    "A48 A49", "ADT_A39": "A39 A40 A41 A42", "ADT_A43": "A43 A44", "ADT_A50": "A50 A51",
    "ADT_A52": "A52 A53", "ADT_A54": "A54 A55", "ADT_A61": "A61 A62", "ADT_A03": "A03",
    "ADT_A02": "A02", "ADT_A17": "A17", "ADT_A18": "A18", "ADT_A20": "A20", "ADT_A24": "A24",
    "ADT_A37": "A37", "ADT_A38": "A38", "ADT_A45": "A45", "ADT_A60": "A60",
    "MDM_T01": "T01 T03 T05 T07 T09 T11", "MDM_T02": "T02 T04 T06 T08 T10",
    "SIU_S12": "S12 S13 S14 S15 S16 S17 S18 S19 S20 S21 S22 S23 S24 S26",
    "ORU_R01": "R01", "ORM_O01": "O01", "OML_O21": "O21", "ORL_O22": "O22",
}
EVENT_STRUCTURES: dict[tuple[str, str], str] = {
    (structure[:3], event): structure
    for structure, events in _SHARED.items() for event in events.split()
}
"""(MSH-9.1, MSH-9.2) -> the message structure those events share."""


class GroupError(ValueError):
    """A group path cannot be used on this message (unknown structure, unknown group)."""


@dataclass(frozen=True)
class _Slot:
    name: str
    is_group: bool
    low: int
    high: int | None  # None: unbounded


class _Definition:
    """One group (or a whole message) of a structure: its slots and what they can hold."""

    __slots__ = ("name", "slots", "first", "direct", "below", "entry", "places", "nearest")

    def __init__(self, name: str, slots: tuple):
        self.name = name
        self.slots: tuple[tuple[_Slot, _Definition | None], ...] = slots
        self.direct = frozenset(slot.name for slot, _ in slots)
        below = set(self.direct)
        first: set[str] = set()
        open_start = True
        for slot, definition in slots:
            if definition is not None:
                below |= definition.below
            if open_start:
                first |= definition.first if definition is not None else {slot.name}
                open_start = slot.low == 0
        self.below = frozenset(below)
        #: Segment names that can begin an instance of this group.
        self.first = frozenset(first)
        #: For each of them, how many optional slots come before it (the fewest).
        self.entry: dict[str, int] = {}
        skipped = 0
        for slot, definition in slots:
            starts = {slot.name: 0} if definition is None else definition.entry
            for name, cost in starts.items():
                if cost + skipped < self.entry.get(name, cost + skipped + 1):
                    self.entry[name] = cost + skipped
            if slot.low > 0:
                break
            skipped += 1
        #: For each segment name, the slots that can take it: (index, cost inside the slot).
        places: dict[str, list[tuple[int, int]]] = {}
        for index, (slot, definition) in enumerate(slots):
            starts = {slot.name: 0} if definition is None else definition.entry
            for name, cost in starts.items():
                places.setdefault(name, []).append((index, cost))
        self.places = {name: tuple(found) for name, found in places.items()}
        self.nearest: dict[tuple, tuple[int, int] | None] = {}  # filled by _nearest


@lru_cache(maxsize=None)
def _module(version: str):
    return importlib.import_module("hl7apy.v" + version.replace(".", "_"))


def _short(full: str, structure: str) -> str:
    """HAPI's name of hl7apy's group ``full`` of ``structure`` (its prefix dropped)."""
    prefix = structure + "_"
    return full[len(prefix):] if full.startswith(prefix) else full


@lru_cache(maxsize=None)
def _definition(version: str, structure: str) -> _Definition | None:
    """The definition of ``structure`` in ``version``, built once; None when unknown."""
    module = _module(version)
    entry = module.MESSAGES.get(structure)
    if entry is None:
        return None
    return _build(module.GROUPS, structure, structure, entry[0], entry[1])


def _build(groups: dict, structure: str, name: str, kind: str, children) -> _Definition:
    slots = []
    for child in children:
        child_name, _, (low, high), child_kind = child[0], child[1], child[2], child[3]
        if kind == "choice":
            low = 0  # one of the alternatives: none of them is required
        if child_kind == "GRP":
            group_kind, group_children = groups[child_name]
            definition = _build(groups, structure, _short(child_name, structure), group_kind,
                                group_children)
            slots.append((_Slot(definition.name, True, low, None if high < 0 else high),
                          definition))
        else:
            slots.append((_Slot(child_name, False, low, None if high < 0 else high), None))
    return _Definition(name, tuple(slots))


@lru_cache(maxsize=None)
def known_group_names() -> frozenset[str]:
    """Every group name of every structure of every version hl7apy has (for load checks)."""
    names = set()
    for version in _VERSIONS:
        module = _module(version)
        for full in module.GROUPS:
            structure = next((s for s in module.MESSAGES if full.startswith(s + "_")), "")
            names.add(_short(full, structure) if structure else full)
    return frozenset(names)


def check_group_name(name: str) -> str | None:
    """Why ``name`` cannot be a group name (with a did-you-mean), or None when it can."""
    known = known_group_names()
    if name in known:
        return None
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"{name} is not a group of any HL7 v2 message structure{hint}"


def structure_of(message: HL7Message) -> tuple[str, str]:
    """(version, structure name) of ``message``, as the module docstring says."""
    msh = message.msh
    version = msh.get(12) or DEFAULT_VERSION
    if version not in _VERSIONS:
        version = DEFAULT_VERSION
    kind, event, named = msh.get(9, 1, 1), msh.get(9, 1, 2), msh.get(9, 1, 3)
    known = _module(version).MESSAGES
    for candidate in (named, EVENT_STRUCTURES.get((kind, event)), f"{kind}_{event}", kind):
        if candidate and candidate in known:
            return version, candidate
    shown = "^".join(part for part in (kind, event, named) if part) or "(empty)"
    raise GroupError(f"HL7 v{version} has no message structure for MSH-9 {shown}, so its "
                     "segment groups are not known")


class Group:
    """One instance of a group in one message; the whole message is a Group too (the root).

    It answers :meth:`segment`, :meth:`segments` and :meth:`remove_segment` as
    :class:`~mappings.message.HL7Message` does, for the segments inside it, so that the
    functions of :mod:`mappings.paths` work on it unchanged.
    """

    __slots__ = ("name", "definition", "children", "message", "_extra", "_extra_below")

    def __init__(self, definition: _Definition, message: HL7Message):
        self.name = definition.name
        self.definition = definition
        self.children: list[Segment | Group] = []
        self.message = message
        self._extra: frozenset[str] = frozenset()  # names of segments with no place
        self._extra_below: frozenset[str] = frozenset()  # the same, here and in subgroups

    def __repr__(self) -> str:
        return f"<Group {self.name} {[c.name for c in self.children]}>"

    def holds(self, name: str) -> bool:
        """Whether a path starting with ``name`` is read inside this group."""
        return name in self.definition.below or name in self._extra_below

    def find(self, name: str) -> list["Segment | Group"]:
        """The segments or groups called ``name`` in this group (see the module docstring)."""
        if name in self.definition.direct or name in self._extra:
            return [child for child in self.children
                    if child.name == name and not getattr(child, "detached", False)]
        found: list[Segment | Group] = []
        for child in self.children:
            if type(child) is Group and child.holds(name):
                found.extend(child.find(name))
        return found

    def groups(self, name: str) -> list["Group"]:
        return [child for child in self.find(name) if type(child) is Group]

    def instances(self, name: str, index) -> list[tuple[int, "Group"]]:
        """The instances of group ``name`` a path's ``[index]`` picks, with their numbers
        (from 1): all of them for ``"*"``, the first for None."""
        found = self.groups(name)
        if index == "*":
            return list(enumerate(found, 1))
        number = index or 1
        return [(number, found[number - 1])] if number <= len(found) else []

    def segments(self, name: str | None = None) -> list[Segment]:
        if name is None:
            return list(self._all_segments())
        return [child for child in self.find(name) if type(child) is not Group]

    def segment(self, name: str, occurrence: int = 1) -> Segment | None:
        found = self.segments(name)
        return found[occurrence - 1] if occurrence <= len(found) else None

    def _all_segments(self) -> Iterable[Segment]:
        for child in self.children:
            if type(child) is Group:
                yield from child._all_segments()
            elif not child.detached:
                yield child

    def text(self) -> str:
        """The segments of the group, one per line (a group is present when this is not "")."""
        return "\r".join(segment.text() for segment in self._all_segments())

    def remove_segment(self, segment: Segment) -> None:
        self.message.remove_segment(segment)
        self._forget(segment)

    def _forget(self, segment: Segment) -> bool:
        for index, child in enumerate(self.children):
            if child is segment:
                del self.children[index]
                return True
            if type(child) is Group and child._forget(segment):
                return True
        return False

    def attach(self, after: Segment, segment: Segment) -> bool:
        """Put ``segment`` (just added to the message) after ``after`` in whichever instance
        of this tree holds ``after``; False when none does."""
        for index, child in enumerate(self.children):
            if child is after:
                self.children.insert(index + 1, segment)
                if segment.name not in self.definition.direct:
                    self._extra = self._extra | {segment.name}
                    self._extra_below = self._extra_below | {segment.name}
                return True
            if type(child) is Group and child.attach(after, segment):
                if not segment.name in self.definition.below:
                    self._extra_below = self._extra_below | {segment.name}
                return True
        return False


def root(message: HL7Message) -> Group:
    """The message as a tree of groups, built on first use and cached on the message."""
    tree = message.structure_cache
    if tree is None:
        version, structure = structure_of(message)
        tree = _place(_definition(version, structure), message)
        message.structure_cache = tree
    return tree


class _Frame:
    """A group being filled: which slot was filled last, how many times."""

    __slots__ = ("group", "slot", "count")

    def __init__(self, group: Group):
        self.group, self.slot, self.count = group, -1, 0


def _place(definition: _Definition, message: HL7Message) -> Group:
    """Every segment of ``message`` put in its group, as the module docstring says."""
    top = Group(definition, message)
    stack = [_Frame(top)]
    for segment in message.segments():
        best = None
        for depth in range(len(stack) - 1, -1, -1):
            found = _nearest(stack[depth], segment.name)
            if found is not None and (best is None or found[0] < best[0]):
                best = (found[0], depth, found[1])
                if not found[0]:
                    break  # nothing is nearer, and on a tie the innermost group wins
        if best is not None:
            _enter(stack, best[1], best[2], segment)
            continue
        for frame in stack:
            frame.group._extra_below = frame.group._extra_below | {segment.name}
        group = stack[-1].group
        group.children.append(segment)
        group._extra = group._extra | {segment.name}
    return top


def _nearest(frame: _Frame, name: str) -> tuple[int, int] | None:
    """(cost, slot index) of the cheapest place for a segment ``name`` at or after the current
    slot of ``frame``; the cost counts the slots passed over, in this group and inside the
    new group instance the segment would begin. None when there is no place.

    The answer depends only on the definition, the current slot, whether that slot is full
    and the name: it is worked out once and remembered on the definition."""
    definition = frame.group.definition
    slot = frame.slot
    high = definition.slots[slot][0].high if slot >= 0 else None
    key = (name, slot, high is not None and frame.count >= high)
    try:
        return definition.nearest[key]
    except KeyError:
        found = definition.nearest[key] = _work_out(definition, frame, name)
        return found


def _work_out(definition: _Definition, frame: _Frame, name: str) -> tuple[int, int] | None:
    best = None
    for index, entry in definition.places.get(name, ()):
        if index < frame.slot:
            continue
        if index == frame.slot:
            high = definition.slots[index][0].high
            if high is not None and frame.count >= high:
                continue
            cost = entry
        else:
            cost = index - frame.slot - 1 + entry
        if best is None or cost < best[0]:
            best = (cost, index)
    return best


def _enter(stack: list[_Frame], depth: int, index: int, segment: Segment) -> None:
    """Put ``segment`` in slot ``index`` of ``stack[depth]`` (in a new group instance when
    the slot is a group), closing the deeper groups."""
    del stack[depth + 1:]
    frame = stack[depth]
    frame.count = frame.count + 1 if index == frame.slot else 1
    frame.slot = index
    definition = frame.group.definition.slots[index][1]
    if definition is None:
        frame.group.children.append(segment)
        return
    group = Group(definition, frame.group.message)
    frame.group.children.append(group)
    stack.append(_Frame(group))
    _enter(stack, depth + 1, _nearest(stack[-1], segment.name)[1], segment)
