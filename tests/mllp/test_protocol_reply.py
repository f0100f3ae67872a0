"""Tests for mllp.protocol with a sink that answers through ``receive_then``'s reply function
(the engine's MLLP source) instead of a Deferred: same order, same rejects."""
from __future__ import annotations

from typing import Any, Callable

from twisted.python.failure import Failure

from mllp.ack import parse_ack
from mllp.framing import encode_frame
from mllp.protocol import Peer
from tests.mllp.test_protocol import connect, message, written


class ReplyingSink:
    """A sink with ``receive_then``: the test calls each reply by hand, in any order."""

    def __init__(self) -> None:
        self.replies: list[Callable[[Any], None]] = []
        self.received: list[tuple[bytes, Peer]] = []

    def receive(self, payload: bytes, peer: Peer) -> Any:
        raise AssertionError("a sink with receive_then is not called through receive")

    def receive_then(self, payload: bytes, peer: Peer, reply: Callable[[Any], None]) -> None:
        self.received.append((payload, peer))
        self.replies.append(reply)

    def frame_error(self, peer: Peer, error: Exception, prefix: bytes) -> None:
        return None


def test_replies_in_any_order_leave_in_arrival_order():
    """If the sink replies in reverse order, then the ACKs still leave in arrival order."""
    sink = ReplyingSink()
    _, proto, transport, _ = connect(sink)
    proto.dataReceived(b"".join(encode_frame(message(str(i))) for i in range(3)))
    assert [payload for payload, _ in sink.received] == [message(str(i)) for i in range(3)]
    sink.replies[2](b"ack2")
    sink.replies[1](b"ack1")
    assert transport.value() == b""
    sink.replies[0](b"ack0")
    assert written(transport) == [b"ack0", b"ack1", b"ack2"]


def test_reply_at_once_is_written_behind_an_ack_still_owed():
    """If the sink replies to the second frame inside receive_then, then its ACK waits for
    the first frame's."""
    sink = ReplyingSink()
    _, proto, transport, _ = connect(sink)
    proto.dataReceived(encode_frame(message("1")))
    sink.receive_then = lambda payload, peer, reply: reply(b"ack2")
    proto.dataReceived(encode_frame(message("2")))
    assert transport.value() == b""
    sink.replies[0](b"ack1")
    assert written(transport) == [b"ack1", b"ack2"]


def test_failure_replied_answers_reject():
    """If the sink replies with a Failure, then an AR/207 echoing MSH-10 is written."""
    sink = ReplyingSink()
    _, proto, transport, _ = connect(sink)
    proto.dataReceived(encode_frame(message("42")))
    sink.replies[0](Failure(RuntimeError("database is down")))
    result = parse_ack(written(transport)[0])
    assert (result.code, result.control_id_echoed, result.error_codes) == ("AR", "42", (207,))
    assert not transport.disconnecting


def test_receive_then_raising_answers_reject():
    """If receive_then raises, then a reject is written for the frame and the next frame is
    served."""
    sink = ReplyingSink()

    def broken(payload: bytes, peer: Peer, reply: Callable[[Any], None]) -> None:
        raise ValueError("bad sink")

    real, sink.receive_then = sink.receive_then, broken
    _, proto, transport, _ = connect(sink)
    proto.dataReceived(encode_frame(message("3")))
    sink.receive_then = real
    proto.dataReceived(encode_frame(message("4")))
    sink.replies[0](b"ack4")
    first, second = written(transport)
    assert parse_ack(first).code == "AR"
    assert second == b"ack4"
