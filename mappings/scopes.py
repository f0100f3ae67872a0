"""
How a compiled path is read at run time: inside a ``for-each``, a path may name the current
segment, repetition or group instance rather than the whole message. :class:`Access` is a
path compiled once with that decision half made (at load: *bound* to a loop's segment or not);
:class:`Scope` is what a running loop binds. Used by :mod:`mappings.stepkinds`.

test-case-name: tests.mappings.test_steps
"""
from __future__ import annotations

from dataclasses import replace

from mappings.groups import Group
from mappings.message import HL7Message, Segment
from mappings.paths import Path, get, present

__all__ = ["Access", "Scope"]


class Scope:
    """The message as seen inside ``for-each``: bound segment names give the current one.

    Only paths compiled as *bound* are read through a scope, and they always ask for
    occurrence 1 of a bound name. Inside a loop over a group, ``group`` is the current group
    instance: a path whose first name belongs to it is read inside it. Everything else goes
    to the message itself.
    """

    __slots__ = ("message", "segs", "occs", "reps", "group", "label", "groups")

    def __init__(self, message: HL7Message, segs: dict, occs: dict, reps: dict,
                 group: Group | None = None, label: str = "", groups: tuple = ()):
        self.message = message
        self.segs = segs    # segment name -> the current Segment
        self.occs = occs    # segment name -> its occurrence number (for messages)
        self.reps = reps    # (segment name, field) -> the current repetition
        self.group = group  # the current group instance of the innermost group loop
        self.label = label  # its concrete path, ORDER_OBSERVATION[2], for messages
        self.groups = groups  # the group instances of the enclosing group loops, innermost last

    def segment(self, name: str, occurrence: int = 1) -> Segment | None:
        return self.segs[name]

    def segments(self, name: str | None = None) -> list[Segment]:
        return [self.segs[name]]

    def remove_segment(self, segment: Segment) -> None:
        self.message.remove_segment(segment)


class Access:
    """A path compiled once; ``bound`` paths name the current occurrence of a for-each."""

    __slots__ = ("path", "text", "bound", "rep_key", "_by_rep", "segment_only", "many",
                 "first", "relative")

    def __init__(self, path: Path, bound: bool = False, rep_key: tuple | None = None):
        self.path = path
        self.text = str(path)
        self.bound = bound
        self.rep_key = rep_key
        self._by_rep: dict[int, Path] = {}
        self.segment_only = path.is_segment
        self.many = path.many
        self.first = path.first
        self.relative = not path.absolute

    def in_group(self, scope: Scope | None) -> bool:
        """Whether this (unbound) path is read inside the current group of a group loop."""
        return (scope is not None and scope.group is not None and self.relative
                and scope.group.holds(self.first))

    def resolve(self, message: HL7Message, scope: Scope | None):
        """(the object to read or write through, the path to use) for this message."""
        if not self.bound:
            if scope is not None and scope.group is not None and self.in_group(scope):
                return scope.group, self.path
            return message, self.path
        if self.rep_key is None:
            return scope, self.path
        rep = scope.reps[self.rep_key]
        path = self._by_rep.get(rep)
        if path is None:
            path = self._by_rep[rep] = replace(self.path, repetition=rep)
        return scope, path

    def shown(self, scope: Scope | None, path: Path | None = None) -> str:
        """The concrete path for messages: ``OBX[2]-3.1`` rather than ``OBX-3.1``."""
        path = path or self.path
        if self.bound and scope is not None:
            path = replace(path, occurrence=scope.occs[path.segment])
            if self.rep_key is not None:
                path = replace(path, repetition=scope.reps[self.rep_key])
        elif self.in_group(scope):
            return f"{scope.label}/{path}"
        return str(path)

    def values(self, message: HL7Message, scope: Scope | None) -> list[str]:
        """What the expression resolver gives: values, or one text per segment present."""
        target, path = self.resolve(message, scope)
        if self.segment_only:
            return present(target, path)
        return get(target, path)
