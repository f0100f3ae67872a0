"""
Test doubles for what the connectors talk to, and loopback helpers for the channel tests.

:class:`FakeReceiver` stands for the engine's :class:`engine.interfaces.Receiver`; its
methods are checked against that protocol in ``test_fakes``, so a change to the interface
breaks the fake loudly instead of letting the tests pass against an outdated shape.

test-case-name: tests.channels.test_fakes
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from twisted.internet import defer, task
from twisted.internet.protocol import Protocol

from engine import status as st
from engine.store.records import IngestResult
from mllp.ack import ACCEPT, ack_code, ack_mode_for, build_ack
from mllp.framing import FrameDecoder
from mllp.header import read_header

TEMPLATE = (b"MSH|^~\\&|SENDER|HOSP|AIGUILLAGE|GHT|20240102030405||ADT^A01^ADT_A01|"
            b"%s|P|2.5\rPID|1||123456^^^HOSP^PI||DUPONT^JEAN\r")


def message(control_id: str) -> bytes:
    """A small ADT^A01 whose MSH-10 is ``control_id``."""
    return TEMPLATE % control_id.encode()


def accept(payload: bytes) -> bytes:
    """The AA (or CA) answering ``payload``, as the engine would build it."""
    header = read_header(payload)
    return build_ack(header, ack_code(ACCEPT, ack_mode_for(header)), control_id="ACK1",
                     timestamp="20240102030406")


@dataclass
class Received:
    channel: str
    payload: bytes
    peer: Any


@dataclass
class Rejected:
    channel: str
    payload: bytes
    peer: Any
    error: str


class FakeReceiver:
    """Records what a source hands over; acknowledges at once, or when the test says.

    With ``hold=True`` each receive returns a Deferred kept in :attr:`pending` for the test
    to fire (with :meth:`answer`), to reproduce a store that commits out of order or late.
    """

    def __init__(self, hold: bool = False):
        self.hold = hold
        self.received: list[Received] = []
        self.rejected: list[Rejected] = []
        self.pending: list[tuple[defer.Deferred, bytes]] = []

    def receive(self, channel: str, payload: bytes, peer: Any) -> Any:
        self.received.append(Received(channel, payload, peer))
        if not self.hold:
            return defer.succeed(accept(payload))
        answer: defer.Deferred = defer.Deferred()
        self.pending.append((answer, payload))
        return answer

    def receive_then(self, channel: str, payload: bytes, peer: Any, reply: Any) -> None:
        """:meth:`receive`, its answer passed to ``reply`` (a Failure as such)."""
        answer = self.receive(channel, payload, peer)
        if isinstance(answer, defer.Deferred):
            answer.addBoth(reply)
        else:
            reply(answer)

    def reject(self, channel: str, payload: bytes, peer: Any, error: str) -> Any:
        """Stored as the engine does: the record's id is 700 plus the number of rejects."""
        self.rejected.append(Rejected(channel, payload, peer, error))
        return defer.succeed(IngestResult(700 + len(self.rejected), st.ERROR))

    def answer(self, index: int) -> None:
        """Acknowledge the held message ``index`` (in arrival order)."""
        answer, payload = self.pending[index]
        answer.callback(accept(payload))


class FakeDocumentReceiver:
    """An :class:`engine.interfaces.DocumentReceiver` that commits nothing: it records each
    document and answers at once with an IngestResult, or fails with ``fail_with``."""

    def __init__(self):
        self.documents: list[tuple[str, Any, Any]] = []  # (channel, InboundDocument, peer)
        self.fail_with: Exception | None = None

    def receive_document(self, channel: str, document: Any, peer: Any) -> defer.Deferred:
        self.documents.append((channel, document, peer))
        if self.fail_with is not None:
            return defer.fail(self.fail_with)
        return defer.succeed(IngestResult(len(self.documents), "TRANSFORMED"))


class RawMLLPClient(Protocol):
    """A bare client: writes whatever the test gives it and collects the frames answered."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.closed: defer.Deferred = defer.Deferred()
        self._decoder = FrameDecoder(1024 * 1024)
        self._waiters: list[tuple[int, defer.Deferred]] = []

    def dataReceived(self, data: bytes) -> None:
        self.frames.extend(self._decoder.feed(data))
        ready = [(count, waiter) for count, waiter in self._waiters if len(self.frames) >= count]
        for entry in ready:
            self._waiters.remove(entry)
            entry[1].callback(list(self.frames))

    def connectionLost(self, reason: Any = None) -> None:
        self.closed.callback(None)

    def frames_after(self, count: int) -> defer.Deferred:
        """A Deferred firing with the frames once ``count`` of them have arrived."""
        if len(self.frames) >= count:
            return defer.succeed(list(self.frames))
        waiter: defer.Deferred = defer.Deferred()
        self._waiters.append((count, waiter))
        return waiter


@defer.inlineCallbacks
def wait_until(reactor: Any, predicate: Any, what: str, timeout: float = 5.0) -> Any:
    """Poll ``predicate`` every 10 ms; fail with ``what`` after ``timeout`` seconds."""
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        yield task.deferLater(reactor, 0.01, lambda: None)
    raise AssertionError(f"timed out waiting until {what}")
