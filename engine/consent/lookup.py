"""
Finding a patient's opposition in the store, whichever of their identifiers it was recorded
under.

An opposition is recorded under the identifier its source knew (an operator's INS, an ADT's
local number). A message for the same person may carry other identifiers; when the identity
index knows the person holding one of them (:func:`identity.store.persons.owner`), the lookup
covers every identifier of that person (:func:`identity.store.persons.identifiers_of`). An
identifier the index does not know is looked up as it is.

The lookup reads the database: it runs in the decider's worker threads (a channel with a
shared-record destination is a slow plan) and refuses to run on the reactor thread, so that
a plan wrongly made fast fails loudly (the message is stored in ERROR) instead of blocking
every channel.

test-case-name: tests.consent.test_lookup
"""
from __future__ import annotations

from typing import Any, Iterable, Sequence

from twisted.python import threadable

from engine.store.consent import Opposition, find_open, history


class OnReactorThread(RuntimeError):
    """A consent lookup was asked for on the reactor thread, where no DB call may block."""


def person_identifiers(conn: Any, identifiers: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """``identifiers`` and every identifier of the persons the identity index says hold them."""
    from identity.model import IdentifierDomain, LocalIdentifier
    from identity.store.persons import identifiers_of, owner

    found = set(identifiers)
    persons = set()
    for domain, value in list(found):
        try:
            local = LocalIdentifier(IdentifierDomain(domain), value)
        except ValueError:  # a namespace, not an OID: the index does not key by it
            continue
        person = owner(conn, local)
        if person is not None:
            persons.add(person)
    for person in persons:
        found.update(identifiers_of(conn, person))
    return found


def opposition_in(conn: Any, identifiers: Iterable[tuple[str, str]],
                  scope: str) -> Opposition | None:
    """The open opposition in ``scope`` of the person holding ``identifiers`` (DB thread)."""
    return find_open(conn, person_identifiers(conn, identifiers), scope)


def history_in(conn: Any, identifiers: Iterable[tuple[str, str]]) -> list[Opposition]:
    """Every opposition of the person holding ``identifiers``, oldest first (DB thread)."""
    return history(conn, person_identifiers(conn, identifiers))


class StoreConsentLookup:
    """:class:`engine.interfaces.ConsentLookup` on the store's SQLAlchemy engine; each call
    opens a connection of its own (SQLite's WAL lets it read while the writer commits)."""

    def __init__(self, engine: Any):
        self._engine = engine

    def opposition(self, identifiers: Sequence[tuple[str, str]], scope: str) -> Opposition | None:
        if threadable.isInIOThread():
            raise OnReactorThread("consent is looked up in the store: not on the reactor "
                                  "thread (the channel's plan should be slow)")
        if not identifiers:
            return None
        with self._engine.connect() as conn:
            return opposition_in(conn, identifiers, scope)
