"""
What an ADT event asks of the patient index (IHE ITI-8 and PAM France), purely.

:func:`plan_adt` reads the message once and answers a :class:`FeedPlan`: the
commands to run on :class:`identity.service.IdentityService` in order, or the
errors (HL7 table 0357 code and ERR-2 location) that stop the message. It is
all or nothing: a plan with errors has no commands, so a half-read message
never half-changes the index.

====================  =================================================
A01 A04 A05 A08       create the person or update it (:class:`Register`)
A28 A31
A40 (ADT_A39)         each PID/MRG pair: merge MRG-1's person into PID-3's
A24 / A37 (ADT_A24)   link / unlink the first identifier of the two PIDs
A47 (ADT_A30)         MRG-1 becomes the PID-3 identifier of the same domain
====================  =================================================

test-case-name: tests.identity.hl7.test_adt
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from identity.hl7.domains import DomainTable
from identity.hl7.pid import read_identifiers, read_pid
from identity.model import LocalIdentifier, Traits
from mappings.message import HL7Message, Segment
from mllp.ack import HL7Error
from mllp.codes import (
    REQUIRED_FIELD_MISSING,
    SEGMENT_SEQUENCE,
    UNSUPPORTED_EVENT,
    UNSUPPORTED_MESSAGE_TYPE,
)

REGISTER_EVENTS = frozenset({"A01", "A04", "A05", "A08", "A28", "A31"})
MERGE, LINK, UNLINK, CHANGE_IDENTIFIER = "A40", "A24", "A37", "A47"
EVENTS = REGISTER_EVENTS | {MERGE, LINK, UNLINK, CHANGE_IDENTIFIER}


@dataclass(frozen=True, slots=True)
class Register:
    """Create or update the person these identifiers name."""

    identifiers: tuple[LocalIdentifier, ...]
    traits: Traits
    review_reasons: tuple[str, ...] = ()
    location: str = "PID^1^3"


@dataclass(frozen=True, slots=True)
class Merge:
    """Merge the person holding ``absorbed`` into the one holding any of ``survivor``."""

    survivor: tuple[LocalIdentifier, ...]
    absorbed: LocalIdentifier
    location: str = "MRG^1^1"


@dataclass(frozen=True, slots=True)
class Link:
    first: LocalIdentifier
    second: LocalIdentifier
    location: str = "PID^2^3"


@dataclass(frozen=True, slots=True)
class Unlink:
    first: LocalIdentifier
    second: LocalIdentifier
    location: str = "PID^2^3"


@dataclass(frozen=True, slots=True)
class ChangeIdentifier:
    """Replace ``old`` (MRG-1) by ``new`` (PID-3, same domain) on the person holding it."""

    old: LocalIdentifier
    new: LocalIdentifier
    location: str = "MRG^1^1"


Command = Union[Register, Merge, Link, Unlink, ChangeIdentifier]


@dataclass(frozen=True, slots=True)
class FeedPlan:
    """The commands an ADT message asks for, or why none can run."""

    event: str
    commands: tuple[Command, ...] = ()
    errors: tuple[HL7Error, ...] = ()
    notes: tuple[str, ...] = field(default=())


def plan_adt(message: HL7Message, domains: DomainTable) -> FeedPlan:
    """The plan for one ADT message (see the module docstring)."""
    code, event = message.msh.get(9, 1, 1), message.msh.get(9, 1, 2)
    if code != "ADT":
        return FeedPlan(event, errors=(HL7Error(UNSUPPORTED_MESSAGE_TYPE,
                                                f"MSH-9: {code!r} is not ADT", "MSH^1^9^1^1"),))
    if event not in EVENTS:
        return FeedPlan(event, errors=(HL7Error(UNSUPPORTED_EVENT, f"MSH-9: ADT^{event} does not "
                                                "maintain the patient index", "MSH^1^9^1^2"),))
    pids = message.segments("PID")
    if not pids:
        return FeedPlan(event, errors=(HL7Error(SEGMENT_SEQUENCE, "no PID segment", "PID"),))
    if event in REGISTER_EVENTS:
        return _register(event, pids[0], domains)
    if event in (LINK, UNLINK):
        return _link(event, pids, domains)
    return _merge_or_change(event, pids, message.segments("MRG"), domains)


def _register(event: str, pid: Segment, domains: DomainTable) -> FeedPlan:
    identity = read_pid(pid, domains)
    notes = identity.review_reasons + identity.notes
    if not identity.ok:
        return FeedPlan(event, errors=identity.errors, notes=notes)
    command = Register(identity.identifiers, identity.traits, identity.review_reasons)
    return FeedPlan(event, (command,), notes=notes)


def _link(event: str, pids: list[Segment], domains: DomainTable) -> FeedPlan:
    """A24/A37: the first identifier of each of the two PIDs."""
    if len(pids) < 2:
        return FeedPlan(event, errors=(HL7Error(SEGMENT_SEQUENCE, f"ADT^{event} needs two PID "
                                                "segments", "PID^2"),))
    firsts, errors = [], []
    for sequence, pid in enumerate(pids[:2], start=1):
        found, problems, _ = read_identifiers(pid, 3, domains, f"PID^{sequence}")
        errors += problems
        if not found and not problems:
            where = f"PID^{sequence}^3"
            errors.append(HL7Error(REQUIRED_FIELD_MISSING, f"{where}: no patient identifier",
                                   where))
        firsts += found[:1]
    if errors:
        return FeedPlan(event, errors=tuple(errors))
    kind = Link if event == LINK else Unlink
    return FeedPlan(event, (kind(firsts[0], firsts[1]),))


def _merge_or_change(event: str, pids: list[Segment], mrgs: list[Segment],
                     domains: DomainTable) -> FeedPlan:
    """A40: each PID with the MRG after it; A47: the one PID and MRG."""
    if len(mrgs) < (len(pids) if event == MERGE else 1):
        return FeedPlan(event, errors=(HL7Error(SEGMENT_SEQUENCE, f"ADT^{event}: each PID needs "
                                                "its MRG segment", "MRG"),))
    commands, errors = [], []
    for sequence, (pid, mrg) in enumerate(zip(pids, mrgs), start=1):
        survivor, problems, _ = read_identifiers(pid, 3, domains, f"PID^{sequence}")
        absorbed, merge_problems, _ = read_identifiers(mrg, 1, domains, f"MRG^{sequence}")
        errors += problems + merge_problems
        for segment, number in ((pid, 3), (mrg, 1)):
            if not segment.field(number):
                where = f"{segment.name}^{sequence}^{number}"
                errors.append(HL7Error(REQUIRED_FIELD_MISSING, f"{where}: no patient identifier",
                                       where))
        if event == MERGE:
            commands += [Merge(tuple(survivor), old, f"MRG^{sequence}^1") for old in absorbed]
        else:
            commands += _changes(survivor, absorbed, sequence, errors)
    if errors:
        return FeedPlan(event, errors=tuple(errors))
    return FeedPlan(event, tuple(commands))


def _changes(new: list[LocalIdentifier], old: list[LocalIdentifier], sequence: int,
             errors: list[HL7Error]) -> list[ChangeIdentifier]:
    """A47: each MRG-1 identifier paired with the PID-3 identifier of its domain."""
    changes = []
    for previous in old:
        replacement = next((i for i in new if i.domain == previous.domain), None)
        if replacement is None:
            errors.append(HL7Error(REQUIRED_FIELD_MISSING, f"PID^{sequence}^3: no identifier in "
                                   f"{previous.domain.oid} to replace {previous.value}",
                                   f"PID^{sequence}^3"))
        else:
            changes.append(ChangeIdentifier(previous, replacement, f"MRG^{sequence}^1"))
    return changes
