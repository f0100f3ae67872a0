"""
The master patient index in the engine's store: tables, candidate index, operations.

Every operation is a function taking an open SQLAlchemy connection inside the
caller's transaction (``with engine.begin() as conn``), so that the CLI and the
tests call them directly; :class:`identity.store.deferred.DeferredIdentityIndex`
runs them in a thread for the reactor. This package imports the engine's store
(its MetaData) and nothing else of engine/.
"""
from identity.store.decisions import accept, link_to, reject
from identity.store.history import IdentityError, history, message_cause, operator_cause
from identity.store.index import StoreCandidateIndex, match
from identity.store.merges import merge, unmerge
from identity.store.persons import create_person, link, unlink, update_traits
from identity.store.resolve import Resolved, resolve

__all__ = [
    "IdentityError", "Resolved", "StoreCandidateIndex", "accept", "create_person", "history",
    "link", "link_to", "match", "merge", "message_cause", "operator_cause", "reject", "resolve", "unlink",
    "unmerge", "update_traits",
]
