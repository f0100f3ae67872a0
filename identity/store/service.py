"""
The patient index service on the store: :class:`identity.service.IdentityService` for real.

Two faces over the same commands (:mod:`identity.store.commands`,
:mod:`identity.store.search`), each call one transaction of its own:

* :class:`StoreIdentityIndex`, synchronous: for a caller already in a worker
  thread (the engine's pipeline step ``identity:``, the CLI, the benchmarks).
  Its methods are the Protocol's with the same arguments and plain answers,
  plus a keyword ``cause`` for those that change the index.
* :class:`StoreIdentityService`, the Protocol itself (Deferreds): each call runs
  in the index's own thread (:class:`identity.store.deferred.DeferredIdentityIndex`,
  one thread, so that its writes are serialised), never on the reactor. The
  Protocol has no cause argument: a service is bound to the cause of its changes
  (:meth:`StoreIdentityService.for_cause`, :meth:`StoreIdentityService.for_message`),
  cheap views sharing one thread, one per message fed.

Both also keep the audit trail (``audit(record)``, :mod:`identity.store.audit`).
Both take the engine's :class:`engine.store.store.Store` (its SQLAlchemy engine is
used) or a SQLAlchemy engine, and the territory's
:class:`identity.matching.model.MatchModel` (the default model when None).

test-case-name: tests.identity.store.test_service_contract
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Callable

from twisted.internet.defer import Deferred

from identity.matching.model import MatchModel
from identity.model import LocalIdentifier, Traits
from identity.service import PersonRecord, Registration, SearchCriteria, SearchPage
from identity.store import commands
from identity.store.audit import AuditFacts, write_audit
from identity.store.deferred import DeferredIdentityIndex, in_transaction
from identity.store.history import message_cause
from identity.store.search import person_by_identifier, search


def sqlalchemy_engine(source: Any) -> Any:
    """The SQLAlchemy engine of the engine's Store, or ``source`` itself when it is one."""
    return getattr(source, "engine", source)


class StoreIdentityIndex:
    """The index service, synchronously: each method one transaction (blocking: a DB thread).

    ``source``: the engine's Store or a SQLAlchemy engine; ``model``: the match model.
    Methods that change the index take ``cause`` (``message:<id>`` or
    ``operator:<name>``, see :mod:`identity.store.history`); a missing one is refused.
    Refusals are :class:`identity.service.ServiceError` subclasses, as in the Protocol.
    It keeps no state between calls, so several worker threads may share one; two
    registrations racing for one new identifier are settled by the identifier's unique
    key and one retry (:func:`identity.store.deferred.in_transaction`).
    """

    def __init__(self, source: Any, model: MatchModel | None = None) -> None:
        self.engine = sqlalchemy_engine(source)
        self.model = model

    def _run(self, operation: Callable, *args: Any) -> Any:
        return in_transaction(self.engine, operation, *args)

    def register(self, identifiers: Sequence[LocalIdentifier], traits: Traits,
                 review_reasons: Sequence[str] = (), *, cause: str) -> Registration:
        """Create or update the person these identifiers name (see :mod:`identity.store.commands`)."""
        return self._run(commands.register, tuple(identifiers), traits, tuple(review_reasons),
                         cause, self.model)

    def merge(self, survivor: Sequence[LocalIdentifier], absorbed: LocalIdentifier, *,
              cause: str) -> str:
        """Merge the holder of ``absorbed`` into the holder of ``survivor``; the survivor's id."""
        return self._run(commands.merge, tuple(survivor), absorbed, cause)

    def unmerge(self, absorbed: LocalIdentifier, *, cause: str) -> str:
        """Undo the merge that absorbed ``absorbed``; the restored person's id."""
        return self._run(commands.unmerge, absorbed, cause)

    def link(self, first: LocalIdentifier, second: LocalIdentifier, *, cause: str) -> str:
        """The two are one person (``second``'s taken into ``first``'s); its id."""
        return self._run(commands.link, first, second, cause)

    def unlink(self, first: LocalIdentifier, second: LocalIdentifier, *, cause: str) -> None:
        """Undo the link of ``second`` into ``first``'s person."""
        return self._run(commands.unlink, first, second, cause)

    def change_identifier(self, old: LocalIdentifier, new: LocalIdentifier, *, cause: str) -> str:
        """Replace ``old`` by ``new`` on its person; that person's id."""
        return self._run(commands.change_identifier, old, new, cause)

    def person(self, identifier: LocalIdentifier) -> PersonRecord | None:
        """The person holding ``identifier``, or None."""
        return self._run(person_by_identifier, identifier)

    def search(self, criteria: SearchCriteria, offset: int, count: int) -> SearchPage:
        """Up to ``count`` persons matching ``criteria`` from ``offset``, in person id order."""
        return self._run(search, criteria, offset, count)

    def audit(self, record: AuditFacts) -> int:
        """Keep one :class:`identity.hl7.audit.AuditRecord` in the trail; its id."""
        return self._run(write_audit, record)


class StoreIdentityService:
    """:class:`identity.service.IdentityService` on the store: Deferreds, work in the index's thread.

    ``StoreIdentityService(store_or_engine, reactor, model)`` makes its own
    :class:`DeferredIdentityIndex` thread: call :meth:`start` before use and
    :meth:`stop` at shutdown. ``runner=`` shares one already made. Bind the cause of
    changes with :meth:`for_message` / :meth:`for_cause` (an unbound service refuses
    changes with a ServiceError and still answers :meth:`person` and :meth:`search`).
    """

    def __init__(self, source: Any, reactor: Any, model: MatchModel | None = None, *,
                 cause: str | None = None, runner: DeferredIdentityIndex | None = None) -> None:
        self.engine = sqlalchemy_engine(source)
        self.model = model
        self.cause = cause
        self.runner = runner or DeferredIdentityIndex(self.engine, reactor)
        self._reactor = reactor

    def start(self) -> None:
        """Start the index's thread."""
        self.runner.start()

    def stop(self) -> None:
        """Wait for the running call and stop the thread (blocking: call at shutdown)."""
        self.runner.stop()

    def for_cause(self, cause: str) -> "StoreIdentityService":
        """The same service, its changes caused by ``cause`` (sharing this one's thread)."""
        return StoreIdentityService(self.engine, self._reactor, self.model, cause=cause,
                                    runner=self.runner)

    def for_message(self, message_id: int | str) -> "StoreIdentityService":
        """The same service, its changes caused by the stored message ``message_id``."""
        return self.for_cause(message_cause(message_id))

    def register(self, identifiers: Sequence[LocalIdentifier], traits: Traits,
                 review_reasons: Sequence[str] = ()) -> Deferred:
        """Deferred[Registration] (see :meth:`StoreIdentityIndex.register`)."""
        return self.runner.run(commands.register, tuple(identifiers), traits,
                               tuple(review_reasons), self.cause, self.model)

    def merge(self, survivor: Sequence[LocalIdentifier], absorbed: LocalIdentifier) -> Deferred:
        """Deferred[str]: the survivor's person id."""
        return self.runner.run(commands.merge, tuple(survivor), absorbed, self.cause)

    def unmerge(self, absorbed: LocalIdentifier) -> Deferred:
        """Deferred[str]: the restored person's id."""
        return self.runner.run(commands.unmerge, absorbed, self.cause)

    def link(self, first: LocalIdentifier, second: LocalIdentifier) -> Deferred:
        """Deferred[str]: the linked person's id."""
        return self.runner.run(commands.link, first, second, self.cause)

    def unlink(self, first: LocalIdentifier, second: LocalIdentifier) -> Deferred:
        """Deferred[None]."""
        return self.runner.run(commands.unlink, first, second, self.cause)

    def change_identifier(self, old: LocalIdentifier, new: LocalIdentifier) -> Deferred:
        """Deferred[str]: the person's id."""
        return self.runner.run(commands.change_identifier, old, new, self.cause)

    def person(self, identifier: LocalIdentifier) -> Deferred:
        """Deferred[PersonRecord | None]."""
        return self.runner.run(person_by_identifier, identifier)

    def search(self, criteria: SearchCriteria, offset: int, count: int) -> Deferred:
        """Deferred[SearchPage]."""
        return self.runner.run(search, criteria, offset, count)

    def audit(self, record: AuditFacts) -> Deferred:
        """Deferred[int]: keep one :class:`identity.hl7.audit.AuditRecord` (not in the Protocol:
        the wiring calls it after each query and feed)."""
        return self.runner.run(write_audit, record)
