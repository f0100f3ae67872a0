"""
Writing a chunk iterator to a Twisted consumer at the pace the peer reads.

A body is a lazy iterator of chunks (``write_message``); taking the next
batch may read a file, so it happens in a thread. The writer is a push
producer: when the transport's buffer fills, Twisted pauses it and it stops
taking batches until resumed, so a large document crosses the process in
small pieces instead of piling up in the send buffer. The HTTP client uses
it as a request body (:class:`PacedBody`), the server for answers.

test-case-name: tests.xds.test_pacing
"""
from __future__ import annotations

from typing import Any, Iterator

from twisted.internet import defer
from twisted.internet.interfaces import IPushProducer
from twisted.internet.threads import deferToThread
from twisted.web.iweb import UNKNOWN_LENGTH, IBodyProducer
from zope.interface import implementer

BATCH = 256 * 1024


def take(chunks: Iterator[bytes], max_bytes: int = BATCH) -> tuple[bytes, bool]:
    """Up to about *max_bytes* from *chunks* joined, and whether they are exhausted."""
    batch, size = [], 0
    for chunk in chunks:
        batch.append(chunk)
        size += len(chunk)
        if size >= max_bytes:
            return b"".join(batch), False
    return b"".join(batch), True


@implementer(IPushProducer)
class PacedWriter:
    """Writes *first*, then batches taken from *chunks* in a thread, while not paused."""

    def __init__(self, first: bytes, chunks: Iterator[bytes], done: bool = False):
        self._first = first
        self._chunks = chunks
        self._done = done
        self._stopped = False
        self._resumed: defer.Deferred | None = None

    @defer.inlineCallbacks
    def write_to(self, consumer: Any):
        """Write everything to *consumer* (a Deferred firing when all is written)."""
        data, done = self._first, self._done
        while not self._stopped:
            consumer.write(data)
            if done:
                return
            if self._resumed is not None:
                yield self._resumed
            if self._stopped:
                return
            data, done = yield deferToThread(take, self._chunks)

    def pauseProducing(self) -> None:
        """The peer is slow: take no more batches until resumed."""
        if self._resumed is None:
            self._resumed = defer.Deferred()

    def resumeProducing(self) -> None:
        """The peer reads again."""
        resumed, self._resumed = self._resumed, None
        if resumed is not None:
            resumed.callback(None)

    def stopProducing(self) -> None:
        """The connection is gone: write nothing more."""
        self._stopped = True
        self.resumeProducing()


@implementer(IBodyProducer)
class PacedBody(PacedWriter):
    """A request body of unknown length (sent chunked) for Agent, paced like PacedWriter."""

    length = UNKNOWN_LENGTH

    def startProducing(self, consumer: Any) -> defer.Deferred:
        """Agent's entry point: write the body, firing when it is all written."""
        return self.write_to(consumer)
