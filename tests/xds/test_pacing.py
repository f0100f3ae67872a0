"""The paced writer takes no batch while paused, and nothing after stop."""
from __future__ import annotations

from twisted.internet import defer, reactor, task
from twisted.trial import unittest

from xds.pacing import PacedWriter, take


class Consumer:
    def __init__(self):
        self.written = []

    def write(self, data):
        self.written.append(data)


def counted(count: int, taken: list):
    for number in range(count):
        taken.append(number)
        yield b"%d;" % number


def test_take_batches_and_says_when_done():
    """If take lost a chunk or mis-reported the end, then the joined body would differ."""
    chunks = iter([b"a" * 3, b"b" * 3, b"c"])
    assert take(chunks, 5) == (b"aaabbb", False)
    assert take(chunks, 5) == (b"c", True)
    assert take(chunks, 5) == (b"", True)


class PacedWriterTests(unittest.TestCase):
    timeout = 10

    @defer.inlineCallbacks
    def test_writes_everything_in_order(self):
        """If a batch were dropped or reordered, then the bytes would differ."""
        consumer, taken = Consumer(), []
        yield PacedWriter(b"first;", counted(1000, taken)).write_to(consumer)
        expected = b"first;" + b"".join(b"%d;" % n for n in range(1000))
        self.assertEqual(b"".join(consumer.written), expected)

    @defer.inlineCallbacks
    def test_paused_writer_takes_nothing_until_resumed(self):
        """If pause were ignored, then the iterator would be drained while paused."""
        consumer, taken = Consumer(), []
        writer = PacedWriter(b"first;", counted(10, taken))
        writer.pauseProducing()
        finished = writer.write_to(consumer)
        yield task.deferLater(reactor, 0.05, lambda: None)
        self.assertEqual((consumer.written, taken), ([b"first;"], []))
        writer.resumeProducing()
        yield finished
        self.assertEqual(len(taken), 10)

    @defer.inlineCallbacks
    def test_stopped_writer_writes_nothing_more(self):
        """If stop were ignored, then a gone connection would still be written to."""
        consumer, taken = Consumer(), []
        writer = PacedWriter(b"first;", counted(10, taken))
        writer.pauseProducing()
        finished = writer.write_to(consumer)
        writer.stopProducing()
        yield finished
        self.assertEqual((consumer.written, taken), ([b"first;"], []))
