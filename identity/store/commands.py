"""
The index service's commands on one connection: what :class:`identity.service.IdentityService` asks, in SQL.

Each function runs in the caller's transaction (``with engine.begin() as
conn``), names local identifiers rather than person ids, and answers as the
Protocol says; :mod:`identity.store.service` opens the transaction (synchronously
or in the index's thread). Refusals are :class:`identity.service.ServiceError`:
:class:`UnknownIdentifier` for a command about nobody,
:class:`ConflictingIdentifier` for a change onto a taken number, and the
store's own :class:`identity.store.history.IdentityError` (a survivor merged
since, no cause…) as a plain ServiceError naming it. Every change goes through
the store's primitives, which write the history event with ``cause``.

Registration (:func:`register`):

* a local identifier already held names its person: its traits are updated
  (a likely duplicate of another person opens a review item, never a merge);
* an INS among the identifiers does not name anybody by itself (a non-qualified
  INS may be wrong): the traits, INS included, go to the matcher, where only a
  qualified INS links;
* the sender's ``review_reasons`` forbid a link: a new person, a review item;
* identifiers nobody holds go to the person found or made; one held by
  another person is never taken from it: the two are queued for review.

test-case-name: tests.identity.store.test_service_contract
"""
from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from identity.matching.model import MatchModel
from identity.model import INS_DOMAINS, LocalIdentifier, Traits
from identity.service import (
    ConflictingIdentifier,
    Registered,
    Registration,
    ServiceError,
    UnknownIdentifier,
)
from identity.store import merges
from identity.store import persons as person_ops
from identity.store.history import IdentityError, check_cause
from identity.store.merges import merge_detail
from identity.store.persons import owner, person_row
from identity.store.resolve import resolve_held
from identity.store.review import open_item
from identity.store.schema import MERGED, id_events

T = TypeVar("T")

LINK_BY, MERGE_BY = "link", "merge"
_OUTCOMES = {"known": Registered.UPDATED, "linked": Registered.LINKED, "new": Registered.CREATED,
             "review": Registered.REVIEW}


def refusing(command: Callable[..., T]) -> Callable[..., T]:
    """Turn the store's IdentityError into the Protocol's ServiceError (same text)."""
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return command(*args, **kwargs)
        except IdentityError as error:
            raise ServiceError(str(error)) from error
    return wrapper


def caused(cause: str | None) -> str:
    """The cause of a change, refused when missing (nothing changes without one)."""
    if cause is None:
        raise ServiceError("no cause given: a change needs message:<id> or operator:<name>")
    return check_cause(cause)


def _holder(conn: Any, identifier: LocalIdentifier) -> int:
    person_id = owner(conn, identifier)
    if person_id is None:
        raise UnknownIdentifier(identifier)
    return person_id


@refusing
def register(conn: Any, identifiers: Sequence[LocalIdentifier], traits: Traits,
             review_reasons: Sequence[str], cause: str | None,
             model: MatchModel | None = None) -> Registration:
    """Create or update the person ``identifiers`` name (see the module docstring)."""
    cause = caused(cause)
    identifiers = tuple(dict.fromkeys(identifiers))
    holders = {i: owner(conn, i) for i in identifiers}
    local = [i for i in identifiers if i.domain not in INS_DOMAINS]
    named = next((i for i in local if holders[i] is not None), None)
    first_free = next((i for i in local if holders[i] is None), None)
    given = named or first_free
    resolved = resolve_held(conn, traits, cause, given, holders[given] if given else None, model,
                            tuple(review_reasons))
    if named is None and first_free is not None:
        holders[first_free] = resolved.person_id  # resolve gave it (linked) or created it with it
    shared = _attach(conn, resolved.person_id, identifiers, holders, cause)
    outcome = _OUTCOMES[resolved.outcome]
    reasons: tuple[str, ...] = ()
    if outcome is Registered.REVIEW:
        reasons = tuple(review_reasons) or resolved.resolution.reasons
    elif shared and outcome is Registered.CREATED:
        outcome, reasons = Registered.REVIEW, shared
    return Registration(str(resolved.person_id), outcome, reasons)


def _attach(conn: Any, person_id: int, identifiers: Sequence[LocalIdentifier],
            holders: dict[LocalIdentifier, int | None], cause: str) -> tuple[str, ...]:
    """Give the person the identifiers nobody holds; queue it against the holders of the
    others. The reasons of those review items."""
    reasons = []
    for identifier in identifiers:
        holder = holders[identifier]
        if holder is None:
            person_ops.link(conn, identifier, person_id, cause, take=False)
        elif holder != person_id:
            why = f"identifier {identifier.value} in {identifier.domain.oid} held by person {holder}"
            open_item(conn, person_id, holder, None, (why,), cause)
            reasons.append(why)
    return tuple(reasons)


@refusing
def merge(conn: Any, survivor: Sequence[LocalIdentifier], absorbed: LocalIdentifier,
          cause: str | None, by: str = MERGE_BY) -> str:
    """Merge the person holding ``absorbed`` into the first holder of ``survivor``; its id."""
    cause = caused(cause)
    if not survivor:
        raise ServiceError("merge: no surviving identifier")
    keep = next((p for p in (owner(conn, i) for i in survivor) if p is not None), None)
    if keep is None:
        raise UnknownIdentifier(survivor[0])
    gone = _holder(conn, absorbed)
    if gone != keep:
        merges.merge(conn, keep, gone, cause, by=by)
    return str(keep)


@refusing
def unmerge(conn: Any, absorbed: LocalIdentifier, cause: str | None) -> str:
    """Undo the merge that took ``absorbed`` into its holder; the restored person's id."""
    cause = caused(cause)
    restored = _absorbed_person(conn, absorbed, _holder(conn, absorbed))
    merges.unmerge(conn, restored, cause)
    return str(restored)


def _absorbed_person(conn: Any, absorbed: LocalIdentifier, survivor: int) -> int:
    """The merged person whose merge into ``survivor`` moved ``absorbed``, still merged there."""
    key = [absorbed.domain.oid, absorbed.value]
    rows = conn.execute(id_events.select().where(
        id_events.c.kind == "merge", id_events.c.person_id == survivor).order_by(id_events.c.id.desc()))
    for event in rows.all():
        if key not in json.loads(event.detail or "{}").get("identifiers", []):
            continue
        row = person_row(conn, event.other_person_id)
        if row.status == MERGED and row.merged_into == survivor:
            return event.other_person_id
    raise UnknownIdentifier(absorbed)


@refusing
def link(conn: Any, first: LocalIdentifier, second: LocalIdentifier, cause: str | None) -> str:
    """The holders of ``first`` and ``second`` are one person: the second's is taken into the
    first's (a merge that :func:`unlink` undoes); that person's id."""
    return merge(conn, (first,), second, cause, by=LINK_BY)


@refusing
def unlink(conn: Any, first: LocalIdentifier, second: LocalIdentifier, cause: str | None) -> None:
    """Undo the link that took ``second``'s person into ``first``'s (not a merge)."""
    cause = caused(cause)
    survivor = _holder(conn, first)
    if _holder(conn, second) != survivor:
        raise UnknownIdentifier(second)
    restored = _absorbed_person(conn, second, survivor)
    if merge_detail(conn, survivor, restored).get("by") != LINK_BY:
        raise ServiceError(f"{second.value} in {second.domain.oid} came by a merge, not a link: "
                           "unmerge it instead")
    merges.unmerge(conn, restored, cause)


@refusing
def change_identifier(conn: Any, old: LocalIdentifier, new: LocalIdentifier,
                      cause: str | None) -> str:
    """Replace ``old`` by ``new`` on the person holding it; that person's id."""
    cause = caused(cause)
    person_id = _holder(conn, old)
    if owner(conn, new) not in (None, person_id):
        raise ConflictingIdentifier(new)
    person_ops.change_identifier(conn, old, new, cause)
    return str(person_id)
