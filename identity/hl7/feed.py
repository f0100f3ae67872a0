"""
Running a :class:`identity.hl7.adt.FeedPlan` on the index service, and what to acknowledge.

The plan's commands run one after the other (each waits for the previous
Deferred); the first refusal of the service stops the rest and becomes an ERR
at the command's own location (MRG-1 for a merge about nobody, ``204``; a
change onto a number another person holds, ``205``). The message itself is the
engine's to keep: this only says AA or AE and why.

test-case-name: tests.identity.hl7.test_feed
"""
from __future__ import annotations

from dataclasses import dataclass

from twisted.internet import defer

from identity.hl7.adt import ChangeIdentifier, Command, FeedPlan, Link, Merge, Register, Unlink
from identity.service import (
    ConflictingIdentifier,
    IdentityService,
    ServiceError,
    UnknownIdentifier,
)
from mllp.ack import HL7Error
from mllp.codes import (
    APPLICATION_ACCEPT,
    APPLICATION_ERROR,
    APPLICATION_INTERNAL_ERROR,
    DUPLICATE_KEY,
    UNKNOWN_KEY,
)


@dataclass(frozen=True, slots=True)
class FeedOutcome:
    """What the ADT message did: the answers of the commands run, and the errors."""

    event: str
    results: tuple[object, ...]
    errors: tuple[HL7Error, ...]
    notes: tuple[str, ...] = ()

    @property
    def ack_code(self) -> str:
        """MSA-1 of the application ACK: AA, or AE when anything was refused."""
        return APPLICATION_ERROR if self.errors else APPLICATION_ACCEPT

    @property
    def ack_errors(self) -> tuple[HL7Error, ...]:
        """The ERR segments: the errors, then each review note as a warning."""
        warnings = tuple(HL7Error(0, note, severity="W") for note in self.notes)
        return self.errors + warnings


def run_command(service: IdentityService, command: Command) -> defer.Deferred:
    """The service call one command stands for (a Deferred of its answer)."""
    if isinstance(command, Register):
        return service.register(command.identifiers, command.traits, command.review_reasons)
    if isinstance(command, Merge):
        return service.merge(command.survivor, command.absorbed)
    if isinstance(command, Link):
        return service.link(command.first, command.second)
    if isinstance(command, Unlink):
        return service.unlink(command.first, command.second)
    if isinstance(command, ChangeIdentifier):
        return service.change_identifier(command.old, command.new)
    raise TypeError(f"not a feed command: {command!r}")


def refusal(error: ServiceError, command: Command) -> HL7Error:
    """The ERR entry for a command the service refused, at the command's location."""
    if isinstance(error, UnknownIdentifier):
        return HL7Error(UNKNOWN_KEY, str(error), command.location)
    if isinstance(error, ConflictingIdentifier):
        return HL7Error(DUPLICATE_KEY, str(error), command.location)
    return HL7Error(APPLICATION_INTERNAL_ERROR, str(error), command.location)


@defer.inlineCallbacks
def apply_plan(service: IdentityService, plan: FeedPlan):
    """Run ``plan`` on ``service``; a Deferred of the :class:`FeedOutcome`.

    A :class:`ServiceError` is an answer (AE), any other failure is not and propagates.
    """
    if plan.errors:
        return FeedOutcome(plan.event, (), plan.errors, plan.notes)
    results = []
    for command in plan.commands:
        try:
            results.append((yield run_command(service, command)))
        except ServiceError as error:
            return FeedOutcome(plan.event, tuple(results), (refusal(error, command),), plan.notes)
    return FeedOutcome(plan.event, tuple(results), (), plan.notes)
