"""
Resolving an incoming identity against the stored index, and recording the outcome.

One call, one transaction (the caller's): find who the identity is, then act.

* Its identifier is already held: that person (``known``). Changed traits are
  stored, and the person is matched against the others; a likely duplicate
  opens a review item, never a merge, and a rejected pair is never opened.
* Otherwise the matcher decides (:func:`identity.store.index.match`): ``linked`` gives the identifier to the
  person found; ``review`` makes a new person and queues the pair; ``new``
  makes a new person.

test-case-name: tests.identity.store.test_service
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from identity.matching.model import MatchModel
from identity.matching.resolver import Outcome, Resolution
from identity.model import LocalIdentifier, Traits
from identity.store.codec import traits_dict
from identity.store.history import check_cause
from identity.store.index import match
from identity.store.persons import create_person, link, owner, update_traits
from identity.store.review import open_item


@dataclass(frozen=True)
class Resolved:
    """What became of an incoming identity: its person and, if queued, the review item."""

    outcome: str  # known | linked | review | new
    person_id: int
    review_id: int | None
    resolution: Resolution | None


def resolve(conn: Any, traits: Traits, cause: str, identifier: LocalIdentifier | None = None,
            model: MatchModel | None = None, review_reasons: tuple[str, ...] = ()) -> Resolved:
    """Resolve and record (see the module docstring).

    ``review_reasons`` (the sender's own doubts) forbid a link: a new identity is kept
    as a new person and queued with those reasons, against the matcher's best candidate
    if there is one.
    """
    holder = owner(conn, identifier) if identifier is not None else None
    return resolve_held(conn, traits, cause, identifier, holder, model, review_reasons)


def resolve_held(conn: Any, traits: Traits, cause: str, identifier: LocalIdentifier | None,
                 known: int | None, model: MatchModel | None = None,
                 review_reasons: tuple[str, ...] = ()) -> Resolved:
    """:func:`resolve` when the caller has looked up ``identifier``'s holder (``known``, in
    this transaction): one statement fewer."""
    check_cause(cause)
    if known is not None:
        return _known(conn, known, traits, cause, model)
    resolution = match(conn, traits, model)
    if resolution.outcome is Outcome.LINKED and not review_reasons:
        person_id = int(resolution.person_id)
        if identifier is not None:
            link(conn, identifier, person_id, cause, detail=_why(resolution, traits), take=False)
        return Resolved("linked", person_id, None, resolution)
    person_id = create_person(conn, traits, cause, identifier)
    if resolution.outcome is Outcome.NEW and not review_reasons:
        return Resolved("new", person_id, None, resolution)
    candidate = int(resolution.person_id) if resolution.person_id is not None else None
    item = open_item(conn, person_id, candidate, resolution.score,
                     tuple(review_reasons) or resolution.reasons, cause)
    return Resolved("review", person_id, item, resolution)


def _known(conn: Any, person_id: int, traits: Traits, cause: str, model: MatchModel | None) -> Resolved:
    if not update_traits(conn, person_id, traits, cause):
        return Resolved("known", person_id, None, None)
    resolution = match(conn, traits, model, exclude=person_id)
    item = None
    if resolution.outcome is not Outcome.NEW:
        reasons = resolution.reasons if resolution.outcome is Outcome.REVIEW else ("possible-duplicate",)
        item = open_item(conn, person_id, int(resolution.person_id), resolution.score, reasons, cause)
    return Resolved("known", person_id, item, resolution)


def _why(resolution: Resolution, traits: Traits) -> dict:
    """The link event's detail: the score, the reasons and the traits as received."""
    return {"score": resolution.score, "reasons": list(resolution.reasons),
            "traits": traits_dict(traits)}
