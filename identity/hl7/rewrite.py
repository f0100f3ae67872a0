"""
The pure part of the ``identity:`` pipeline step: PID-3 rewritten for the destination.

Once the message's patient is resolved to a person of the index, the step
writes PID-3 as the destination wants it: the person's **qualified** INS first
(when the step asks for it and the person has one), then its identifiers in
the target domains, in the order the step lists them. An INS that is not
qualified is never written (only a qualified identity may be shared under the
INS rules), and identifiers of other domains are dropped unless the step keeps
them. When the person has nothing the destination can use, PID-3 is left as
it was and the step gets the reason, to put the message in error or review.

test-case-name: tests.identity.hl7.test_rewrite
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from twisted.internet import defer

from identity.hl7.pidwriter import write_identifiers
from identity.model import INS_DOMAINS, IdentifierDomain, LocalIdentifier
from identity.service import IdentityService, PersonRecord
from mappings.message import HL7Message


@dataclass(frozen=True, slots=True)
class TargetDomains:
    """What a destination wants in PID-3 (the ``identity:`` step's settings)."""

    domains: tuple[IdentifierDomain, ...]
    ins_first: bool = True
    keep_others: bool = False


@dataclass(frozen=True, slots=True)
class Rewrite:
    """What was written in PID-3, or why nothing was."""

    written: tuple[LocalIdentifier, ...]
    problem: str | None = None


def target_identifiers(person: PersonRecord, target: TargetDomains) -> list[LocalIdentifier]:
    """The identifiers PID-3 should hold for ``person``, in order (see the module docstring)."""
    ordered: list[LocalIdentifier] = []
    ins = person.traits.ins
    if target.ins_first and ins is not None and ins.qualified:
        ordered.append(LocalIdentifier(ins.domain, ins.matricule))
    local = [i for i in person.identifiers if i.domain not in INS_DOMAINS]
    for domain in target.domains:
        ordered += [i for i in local if i.domain == domain and i not in ordered]
    if target.keep_others:
        ordered += [i for i in local if i not in ordered]
    return ordered


def rewrite_pid3(message: HL7Message, person: PersonRecord, target: TargetDomains) -> Rewrite:
    """Rewrite the first PID-3 of ``message`` (its patient; in place) for ``target``."""
    pids = message.segments("PID")
    if not pids:
        return Rewrite((), "no PID segment to rewrite")
    identifiers = target_identifiers(person, target)
    if not identifiers:
        wanted = ", ".join(d.oid for d in target.domains) or "no domain"
        return Rewrite((), f"person {person.person_id} has no qualified INS and no identifier "
                           f"in {wanted}")
    write_identifiers(pids[0], 3, identifiers)
    return Rewrite(tuple(identifiers))


@defer.inlineCallbacks
def person_of(service: IdentityService, identifiers: Sequence[LocalIdentifier]):
    """The person the message's own identifiers name (a Deferred of it, or of None).

    Local identifiers are asked in PID-3 order; an INS alone never names a person here
    (the feed's matcher decides that), so a message known only by its INS is unresolved.
    """
    for identifier in identifiers:
        if identifier.domain in INS_DOMAINS:
            continue
        person = yield service.person(identifier)
        if person is not None:
            return person
    return None
