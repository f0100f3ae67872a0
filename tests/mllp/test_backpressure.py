"""Backpressure over a real loopback socket: a sender that never waits for its ACKs cannot
make the server buffer more than its byte budget plus about one frame."""
from __future__ import annotations

import socket

from twisted.internet import defer, reactor, task, threads
from twisted.trial import unittest

from mllp.framing import FrameDecoder, encode_frame
from mllp.protocol import MLLPServerFactory

FRAME_SIZE = 100 * 1024
FRAMES = 40
BUDGET = 512 * 1024


def big(n: int) -> bytes:
    head = f"MSH|^~\\&|S|F|R|F|20240101||ORU^R01|C{n}|P|2.5\rOBX|1|ED|X||".encode()
    return head + b"A" * (FRAME_SIZE - len(head))


class HoldingSink:
    """Answers nothing until released; remembers how many bytes it was handed."""

    def __init__(self):
        self.held: list[tuple[defer.Deferred, bytes]] = []
        self.release_all = False

    def receive(self, payload, peer):
        answer = defer.Deferred()
        if self.release_all:
            answer.callback(b"ACK " + payload.split(b"|")[9])
        else:
            self.held.append((answer, payload))
        return answer

    def frame_error(self, peer, error, prefix):
        return None

    def release(self):
        self.release_all = True
        held, self.held = self.held, []
        for answer, payload in held:
            answer.callback(b"ACK " + payload.split(b"|")[9])


def send_all_then_read(port: int) -> list[bytes]:
    """Blocking, in a thread: write every frame without waiting, then read every ACK."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(b"".join(encode_frame(big(n)) for n in range(FRAMES)))
        decoder, acks = FrameDecoder(), []
        while len(acks) < FRAMES:
            chunk = connection.recv(65536)
            if not chunk:
                break
            acks.extend(decoder.feed(chunk))
        return acks


class ByteBudgetTests(unittest.TestCase):
    timeout = 30

    @defer.inlineCallbacks
    def test_reading_pauses_at_the_byte_budget_and_resumes_as_acks_drain(self):
        """If a peer writes 4 MB of frames without waiting while nothing is answered, then
        the server stops reading near its 512 KiB budget; once answers flow, every frame is
        read and acknowledged in order."""
        sink = HoldingSink()
        factory = MLLPServerFactory(sink, clock=reactor, idle_timeout=None,
                                    max_pending_bytes=BUDGET)
        listening = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(listening.stopListening)
        sent = threads.deferToThread(send_all_then_read, listening.getHost().port)
        for _ in range(20):  # let the sender fill what the server accepts to read
            yield task.deferLater(reactor, 0.05, lambda: None)
        held_bytes = sum(len(payload) for _, payload in sink.held)
        self.assertGreater(held_bytes, 0)
        self.assertLessEqual(held_bytes, BUDGET + FRAME_SIZE)
        sink.release()
        acks = yield sent
        self.assertEqual(acks, [f"ACK C{n}".encode() for n in range(FRAMES)])
