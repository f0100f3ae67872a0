"""
The patient index ``test-channel`` runs a channel's ``identity:`` step against: empty, in
memory, fed only by the messages of this one run.

Why not skip the step: an integration engineer testing a PIX/PDQ or feed channel wants to see
what the engine would answer (the ``RSP^K22`` of a ``QBP^Q22``, the AE of an A40 that merges
nobody, PID-3 rewritten into the target domain), and a run that silently leaves the step out
shows a channel that does not exist. Why not the engine's store: ``test-channel`` writes
nothing anywhere, so a file of ADT followed by queries is its own little world, the same on
every machine. The index is the engine's own (:class:`engine.identity.hook.IdentityHooks`
over the store's schema, migrated into a SQLite database in memory), so its answers are the
engine's, not a look-alike's.

test-case-name: tests.cli.test_channeltest_identity
"""
from __future__ import annotations

from typing import Any

NOTE = ("identity: run against an empty patient index in memory, fed by this run's "
        "messages only (not the store's)")


class ScratchIdentity:
    """The ``identity:`` hooks of one ``test-channel`` run (``config``: engine.yaml's
    ``identity:``); the database is opened at the first channel that needs it."""

    def __init__(self, config: Any) -> None:
        self._config = config
        self._hooks: Any = None

    def hook_for(self, channel: Any) -> Any:
        """The hook of ``channel``'s ``identity:`` step, None when it has none."""
        if channel.identity is None:
            return None
        if self._hooks is None:
            self._hooks = self._open()
        return self._hooks.for_channel(channel)

    def _open(self) -> Any:
        from sqlalchemy import create_engine
        from sqlalchemy.pool import StaticPool

        from engine.identity.hook import IdentityHooks
        from engine.store.migrate import upgrade

        # One connection shared by every call: an in-memory SQLite database lives as long
        # as its connection.
        database = create_engine("sqlite://", poolclass=StaticPool,
                                 connect_args={"check_same_thread": False})
        upgrade(database)
        return IdentityHooks(self._config, database)
