"""
What the HL7 side of the index asks of the patient index service.

The ADT feed, the PIX Manager and the PDQ Supplier (``identity.hl7``) decide
purely what a message asks for; carrying it out is the index service's job
(store-backed, ``identity/store``). :class:`IdentityService` is the whole of
what they call, so that the store implements exactly this and the HL7 code is
tested against an in-memory fake checked against the same Protocol.

Every method returns a Deferred (the store works in its DB thread) and fails
with a :class:`ServiceError` subclass when the index cannot do what is asked;
the HL7 side turns that failure into an ERR at the place the command came from.

test-case-name: tests.identity.hl7.test_service
"""
from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from twisted.internet.defer import Deferred

from identity.model import IdentifierDomain, LocalIdentifier, Traits


class ServiceError(Exception):
    """The index refused a command; the text names what and why."""


class UnknownIdentifier(ServiceError):
    """No person holds this identifier (a merge, link or change about nobody)."""

    def __init__(self, identifier: LocalIdentifier):
        super().__init__(f"no person holds {identifier.value} in {identifier.domain.oid}")
        self.identifier = identifier


class ConflictingIdentifier(ServiceError):
    """The identifier already belongs to another person (a change onto a taken number)."""

    def __init__(self, identifier: LocalIdentifier):
        super().__init__(f"{identifier.value} in {identifier.domain.oid} belongs to another person")
        self.identifier = identifier


class Registered(enum.Enum):
    """What a registration did to the index."""

    CREATED = "created"  # a new person
    UPDATED = "updated"  # a person already holding one of the identifiers
    LINKED = "linked"  # a new identifier the matcher linked to a known person
    REVIEW = "review"  # kept aside for a human: new person for now, a review item open


@dataclass(frozen=True, slots=True)
class Registration:
    """The answer to :meth:`IdentityService.register`."""

    person_id: str
    outcome: Registered
    review_reasons: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PersonRecord:
    """One person of the index: its identifiers in every domain and its current traits."""

    person_id: str
    identifiers: tuple[LocalIdentifier, ...]
    traits: Traits


@dataclass(frozen=True, slots=True)
class SearchCriteria:
    """A demographic query (PDQ): every given field must agree; ``None`` is not asked.

    Names match on their start, case and accents folded (``DUP`` finds ``DUPRÉ``);
    ``birth_date`` is a full ``YYYYMMDD`` or a prefix of it (a year); the others
    match exactly. ``identifier`` restricts to the holder of one identifier,
    ``in_domains`` to persons holding an identifier in one of those domains
    (ITI-21 QPD-8: a person the consumer could not name is not returned).
    """

    family_name: str | None = None
    given_name: str | None = None
    birth_date: str | None = None
    sex: str | None = None
    postcode: str | None = None
    city: str | None = None
    birth_place: str | None = None
    identifier: LocalIdentifier | None = None
    in_domains: tuple[IdentifierDomain, ...] = ()

    def empty(self) -> bool:
        """Whether nothing is asked (a query that would disclose the whole index)."""
        return all(getattr(self, name) is None for name in self.__slots__ if name != "in_domains")


@dataclass(frozen=True, slots=True)
class SearchPage:
    """One page of a search: ``total`` matches, ``records`` those from the offset asked."""

    total: int
    records: tuple[PersonRecord, ...]


class IdentityService(Protocol):
    """The operations the ADT feed, PIX and PDQ call; each returns a Deferred."""

    def register(self, identifiers: Sequence[LocalIdentifier], traits: Traits,
                 review_reasons: Sequence[str] = ()) -> Deferred[Registration]:
        """Create or update the person these identifiers name (resolving a new one).

        A local identifier already held names its person; an INS among the
        identifiers does not by itself (a non-qualified INS may be wrong): it
        goes to the matcher, where only a qualified INS links.

        A non-empty ``review_reasons`` forbids an automatic link: the identity is
        kept and a review item opened with those reasons.
        """

    def merge(self, survivor: Sequence[LocalIdentifier],
              absorbed: LocalIdentifier) -> Deferred[str]:
        """Merge the person holding ``absorbed`` into the one holding ``survivor``
        (any of them); the survivor's person id. Undone by :meth:`unmerge`."""

    def unmerge(self, absorbed: LocalIdentifier) -> Deferred[str]:
        """Undo the merge that absorbed ``absorbed``; the restored person's id."""

    def link(self, first: LocalIdentifier, second: LocalIdentifier) -> Deferred[str]:
        """Declare the two identifiers the same person; that person's id."""

    def unlink(self, first: LocalIdentifier, second: LocalIdentifier) -> Deferred[None]:
        """Declare them different persons again (undoes a link, not a merge)."""

    def change_identifier(self, old: LocalIdentifier, new: LocalIdentifier) -> Deferred[str]:
        """Replace ``old`` by ``new`` on the person holding it; that person's id."""

    def person(self, identifier: LocalIdentifier) -> Deferred[PersonRecord | None]:
        """The person holding ``identifier``, or None."""

    def search(self, criteria: SearchCriteria, offset: int,
               count: int) -> Deferred[SearchPage]:
        """Up to ``count`` persons matching ``criteria`` from ``offset`` in a stable order."""
