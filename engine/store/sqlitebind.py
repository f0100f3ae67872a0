"""
How Python values are bound to SQLite statements: NULL and BLOB without a detour.

Why: Python 3.11's sqlite3 binds ``int``, ``float``, ``str`` and ``bytearray`` directly, but
sends every other value (``None`` and ``bytes`` among them: a message's raw bytes, its empty
error, a delivery's empty payload) through its adaptation protocol first. With no adapter
registered for the type, that asks the protocol type for ``__adapt__``, and a type answers a
missing attribute by building an ``AttributeError`` with its formatted message, which the
module then discards: several of them per message row in every group commit, for nothing.
An adapter registered for the exact type is found in the module's table first and called
instead; the ones here are C functions that hand back the value itself, so what is stored
does not change (NULL stays NULL, a BLOB stays a BLOB).

The registration is the sqlite3 module's, for the whole process (the writer thread, the read
threads, the CLI): :func:`register` is called when an SQLite engine is made, and is
idempotent.

test-case-name: tests.store.test_sqlitebind
"""
from __future__ import annotations

import sqlite3

# C callables that return their argument unchanged for these exact types: ``bytes(b)`` is
# ``b`` itself, and ``{}.get(None)`` is None. A Python function would work too, at the cost
# of a frame per bound value.
ADAPTERS = ((bytes, bytes), (type(None), {}.get))


def register() -> None:
    """Register the pass-through adapters of :data:`ADAPTERS` with the sqlite3 module."""
    for kind, adapter in ADAPTERS:
        sqlite3.register_adapter(kind, adapter)
