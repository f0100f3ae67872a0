"""
The recovery scan: messages RECEIVED in the store that nobody is deciding.

A message is left RECEIVED by a crash between its commit and its decision's (a slow plan), or
set back to RECEIVED by ``aiguillage messages replay --reprocess``. A periodic scan reads
them, decodes each as the intake does (in the character set it was accepted in) and hands it
to the :class:`~engine.flow.decider.Decider`, behind what its channel has queued: the same
:func:`~engine.flow.decision.decide` and the same store write as every other decision. The
store records a decision only for a message still RECEIVED, so a message seen both here and
in the decider's queue is committed once.

Deciding is not only committing, though: the ``identity:`` step changes the index and audits
a query when it runs. A message the intake has just committed RECEIVED is handed to the
decider by the commit's callback, and a scan whose read ran after that commit may come back
to the reactor first (the writer thread can be descheduled between the two), so the scan
would find a message nobody holds yet and have it decided twice. So a scan hands over only
what the previous pass found unheld too (a message orphaned by a crash or a replay waits
one interval more); the first page read at start, before any source listens, is handed over
at once.

test-case-name: tests.flow.test_recovery
"""
from __future__ import annotations

import logging
from typing import Any

from twisted.internet import defer

from engine import status as st
from engine.flow.decider import Decider, DeciderStopped
from engine.flow.documents import is_document
from engine.flow.plan import ChannelPlan, InboundMessage
from engine.flow.appack import answerable
from engine.store import queries
from engine.store.records import DecidedMessage, Decision
from mllp.header import HeaderError, decode_payload, read_header

log = logging.getLogger(__name__)

SCAN_INTERVAL = 1.0
SCAN_BATCH = 500


class Recovery:
    """Scans the store for RECEIVED messages every ``scan_interval`` seconds."""

    def __init__(self, store: Any, clock: Any, decider: Decider,
                 channels: dict[str, ChannelPlan], *, scan_interval: float = SCAN_INTERVAL):
        self._store = store
        self._clock = clock
        self._decider = decider
        self.channels = channels
        self._scan_interval = scan_interval
        self._scan_call: Any = None
        self._cursor = 0
        self._running = False
        self._at_start = False  # the next page read is the one before any source listens
        self._unheld: set[int] = set()  # found unheld by the pass under way
        self._unheld_before: set[int] = set()  # ... by the previous pass
        self.found = 0

    def start(self) -> defer.Deferred:
        """Start scanning; Deferred firing once the first page is queued for deciding, so
        that a source started after it queues its new messages behind the old ones."""
        self._running = True
        self._at_start = True
        return self._scan()

    def stop(self) -> None:
        self._running = False
        if self._scan_call is not None and self._scan_call.active():
            self._scan_call.cancel()
        self._scan_call = None

    def _scan(self) -> defer.Deferred:
        self._scan_call = None
        if not self._running:
            return defer.succeed(None)
        self._decider.scan_started()
        d = self._store.read(queries.received_messages, self._cursor, SCAN_BATCH)
        d.addCallbacks(self._scanned, self._scan_failed)
        return d

    def _scanned(self, rows: list) -> None:
        at_start, self._at_start = self._at_start, False
        for row in rows:
            if self._decider.knows(row.id) or self._decider.settled_in_scan(row.id):
                continue
            if at_start or row.id in self._unheld_before:
                self.found += 1
                self._requeue(row)
            else:  # perhaps one the intake is handing over: handed over if still unheld
                self._unheld.add(row.id)
        if len(rows) == SCAN_BATCH:
            self._cursor = rows[-1].id
            self._scan_call = self._clock.callLater(0, self._scan)
            return
        self._cursor = 0
        self._unheld_before, self._unheld = self._unheld, set()
        self._schedule()

    def _scan_failed(self, failure: Any) -> None:
        log.error("scanning for undecided messages failed: %s", failure.getErrorMessage())
        self._at_start = False
        self._schedule()

    def _schedule(self) -> None:
        if self._running:
            self._scan_call = self._clock.callLater(self._scan_interval, self._scan)

    def _requeue(self, row: Any) -> None:
        plan = self.channels.get(row.channel)
        # The character set the message was accepted in when its MSH-18 is empty (a message
        # handed over by another channel keeps that channel's); for one stored in ERROR
        # without MSH-18, none was settled and the channel's encoding, perhaps fixed since,
        # is tried.
        encoding = row.charset or (plan.encoding if plan else "UNICODE UTF-8")
        if is_document(row.raw):  # an XDS submission (engine.flow.documents): no MSH
            message = InboundMessage(row.id, "", raw=row.raw, control_id=row.control_id,
                                     message_type=row.message_type, charset=row.charset,
                                     answerable=False)
            self._decider.submit(row.channel, message).addErrback(self._log_failure, row.id)
            return
        try:
            header = read_header(row.raw)
            text = decode_payload(row.raw, header, encoding)
        except Exception as error:  # HeaderError, or e.g. a channel encoding gone bad
            reason = (str(error) if isinstance(error, HeaderError)
                      else f"{type(error).__name__}: {error}")
            d = self._store.record_decision(
                DecidedMessage(row.id, row.channel, Decision(st.ERROR, error=reason)))
            d.addErrback(self._log_failure, row.id)
            return
        message = InboundMessage(row.id, text, header.field_separator,
                                 header.encoding_characters, row.raw, row.control_id,
                                 row.message_type, row.charset, header,
                                 answerable=answerable(getattr(row, "peer", None)),
                                 peer=getattr(row, "peer", None) or "")
        self._decider.submit(row.channel, message).addErrback(self._log_failure, row.id)

    def _log_failure(self, failure: Any, message_id: int) -> None:
        if failure.check(DeciderStopped):  # left RECEIVED: found again after the next start
            return
        log.error("deciding message %d found RECEIVED failed: %s", message_id,
                  failure.getErrorMessage())
