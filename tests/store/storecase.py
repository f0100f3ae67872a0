"""
A trial test-case mixin running against a real, started :class:`~engine.store.store.Store`.

Each test class using it comes in two subclasses, one per backend (``backend = "sqlite"`` or
``"postgresql"``), so that the same tests run on both; see :mod:`tests.dbs`.
"""
from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

from twisted.internet import defer, reactor

from engine import status as st
from engine.store import queries
from engine.store.records import DecidedMessage, Decision, InboundRecord, NewDelivery
from engine.store.store import Store
from tests.dbs import open_database


def inbound(control_id: str | None = "1", *, channel: str = "adt-in",
            sender: str | None = "HIS|HOSP", received_at: float | None = None,
            status: str = st.RECEIVED, raw: bytes | None = None, error: str | None = None,
            dedupe: bool = True, message_type: str | None = "ADT^A01^ADT_A01") -> InboundRecord:
    """An inbound record with sensible defaults; ``raw`` is a small MSH naming ``control_id``."""
    if raw is None:
        raw = (f"MSH|^~\\&|HIS|HOSP|ENG|HOSP|20260101120000||{message_type or ''}|"
               f"{control_id or ''}|P|2.5\rPID|1||P{control_id}^^^HOSP\r").encode()
    return InboundRecord(
        channel=channel, received_at=time.time() if received_at is None else received_at,
        peer="127.0.0.1:40000", raw=raw, status=status, sender=sender, control_id=control_id,
        message_type=message_type, charset="UNICODE UTF-8", error=error, dedupe=dedupe)


def transformed(message_id: int, *destinations: str | tuple[str, int],
                channel: str = "adt-in") -> DecidedMessage:
    """A TRANSFORMED decision for a RECEIVED message: one delivery per destination (a name,
    or (name, lane))."""
    planned = tuple(NewDelivery(d, 0) if isinstance(d, str) else NewDelivery(*d)
                    for d in destinations)
    return DecidedMessage(message_id, channel, Decision(st.TRANSFORMED, deliveries=planned))


def decided(message_id: int, status: str, channel: str = "adt-in",
            **fields) -> DecidedMessage:
    """A decision of ``status`` (and Decision ``fields``) for a RECEIVED message."""
    return DecidedMessage(message_id, channel, Decision(status, **fields))


def calls_of(owner: Any, name: str) -> list:
    """A list that gets an entry each time ``owner.name`` is called (the call goes on)."""
    calls, method = [], getattr(owner, name)

    def counted(*args: Any) -> Any:
        calls.append(1)
        return method(*args)

    setattr(owner, name, counted)
    return calls


class StoreCase:
    """Mixin: ``self.store`` is a started Store on a fresh database of ``self.backend``."""

    backend = "sqlite"
    batch_max = 1000

    def setUp(self) -> None:
        self.url = open_database(self, self.backend)
        self.store = Store(self.url, reactor, node="node-1", batch_max=self.batch_max)
        self.store.start()
        self.addCleanup(self.store.stop)

    def queued_store(self, **kwargs: Any) -> Store:
        """A second Store on the same database, not started: what is submitted to it before
        :meth:`Store.start` is committed in one group commit (up to ``batch_max``)."""
        kwargs.setdefault("node", "node-2")
        store = Store(self.url, reactor, **kwargs)
        self.addCleanup(store.stop)
        return store

    @defer.inlineCallbacks
    def ingest_all(self, records: list[InboundRecord]) -> Any:
        """Ingest ``records`` together (one or few group commits); their IngestResults."""
        results = yield defer.gatherResults([self.store.ingest(r) for r in records],
                                            consumeErrors=True)
        return results

    @contextlib.contextmanager
    def writer_log(self):
        """The writer's log records at WARNING and above while the block runs."""
        records: list[logging.LogRecord] = []
        handler = logging.Handler(logging.WARNING)
        handler.emit = records.append
        logger = logging.getLogger("engine.store.writer")
        logger.addHandler(handler)
        try:
            yield records
        finally:
            logger.removeHandler(handler)

    def detail(self, message_id: int) -> defer.Deferred:
        """Deferred[message_detail(message_id)]."""
        return self.store.read(queries.message_detail, message_id)
