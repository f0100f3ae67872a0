"""Tests for mllp.protocol with StringTransport and task.Clock (no sockets)."""
from __future__ import annotations

from twisted.internet import defer, task
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport

from mllp.ack import parse_ack
from mllp.framing import FrameDecoder, encode_frame
from mllp.header import read_header
from mllp.protocol import MLLPServerFactory, Peer, hl7_timestamp

MSG = "MSH|^~\\&|SND|SF|RCV|RF|20240101||ADT^A01|{cid}|P|2.5\rPID|1\r"


def message(cid: str, version: str = "2.5") -> bytes:
    return MSG.format(cid=cid).replace("|2.5\r", f"|{version}\r").encode()


class RecordingSink:
    """A sink whose answers the test fires by hand, in any order."""

    def __init__(self, auto: bool = False):
        self.auto = auto
        self.received: list[tuple[bytes, Peer]] = []
        self.pending: list[defer.Deferred] = []
        self.frame_errors: list[tuple[Peer, Exception, bytes]] = []

    def receive(self, payload: bytes, peer: Peer) -> defer.Deferred:
        self.received.append((payload, peer))
        if self.auto:
            return defer.succeed(b"ACK for " + payload.split(b"|")[9])
        d: defer.Deferred = defer.Deferred()
        self.pending.append(d)
        return d

    def frame_error(self, peer: Peer, error: Exception, prefix: bytes) -> defer.Deferred | None:
        self.frame_errors.append((peer, error, prefix))
        if self.auto:
            return None
        recorded: defer.Deferred = defer.Deferred()
        self.pending.append(recorded)
        return recorded


def connect(sink, **options):
    clock = task.Clock()
    clock.advance(1_700_000_000)
    options.setdefault("idle_timeout", 60)
    factory = MLLPServerFactory(sink, clock=clock, **options)
    proto = factory.buildProtocol(IPv4Address("TCP", "10.1.2.3", 4567))
    transport = StringTransport(peerAddress=IPv4Address("TCP", "10.1.2.3", 4567))
    proto.makeConnection(transport)
    return factory, proto, transport, clock


def written(transport: StringTransport) -> list[bytes]:
    return FrameDecoder().feed(transport.value())


def test_ack_written_back_framed():
    """If the sink answers, then the ACK goes back framed and counters move."""
    sink = RecordingSink(auto=True)
    factory, proto, transport, _ = connect(sink)
    proto.dataReceived(encode_frame(message("1")))
    assert transport.value() == encode_frame(b"ACK for 1")
    assert sink.received[0] == (message("1"), Peer("mllp", "10.1.2.3:4567", None))
    assert (factory.connections_open, factory.frames_received) == (1, 1)


def test_acks_keep_arrival_order():
    """If the sink's Deferreds fire in reverse order, then ACKs still leave in arrival order."""
    sink = RecordingSink()
    _, proto, transport, _ = connect(sink)
    proto.dataReceived(b"".join(encode_frame(message(str(i))) for i in range(3)))
    sink.pending[2].callback(b"ack2")
    sink.pending[1].callback(b"ack1")
    assert transport.value() == b""
    sink.pending[0].callback(b"ack0")
    assert written(transport) == [b"ack0", b"ack1", b"ack2"]


def test_partial_frames():
    """If a frame arrives one byte at a time with garbage around it, then it is handled once."""
    sink = RecordingSink(auto=True)
    factory, proto, transport, _ = connect(sink)
    for byte in b"junk" + encode_frame(message("7")):
        proto.dataReceived(bytes([byte]))
    assert [payload for payload, _ in sink.received] == [message("7")]
    assert written(transport) == [b"ACK for 7"]
    assert factory.bytes_discarded == 4


def test_empty_answer_writes_nothing():
    """If the sink answers b'' (e.g. MSH-15 NE), then nothing is written and order holds."""
    sink = RecordingSink()
    _, proto, transport, _ = connect(sink)
    proto.dataReceived(encode_frame(message("1")) + encode_frame(message("2")))
    sink.pending[0].callback(b"")
    sink.pending[1].callback(b"ack2")
    assert written(transport) == [b"ack2"]


def test_sink_failure_answers_reject():
    """If the sink's Deferred fails, then an AR/207 echoing MSH-10 is written, not dropped."""
    sink = RecordingSink()
    _, proto, transport, _ = connect(sink)
    proto.dataReceived(encode_frame(message("42")))
    sink.pending[0].errback(RuntimeError("database is down"))
    [nak] = written(transport)
    result = parse_ack(nak)
    assert (result.code, result.control_id_echoed, result.error_codes) == ("AR", "42", (207,))
    assert b"MSH|^~\\&|RCV|RF|SND|SF|" in nak
    assert not transport.disconnecting


def test_sink_failure_on_unreadable_msh():
    """If the sink fails on a frame without MSH, then a header-less AR is written."""
    sink = RecordingSink()
    _, proto, transport, _ = connect(sink)
    proto.dataReceived(encode_frame(b"garbage"))
    sink.pending[0].errback(RuntimeError("boom"))
    result = parse_ack(written(transport)[0])
    assert (result.code, result.control_id_echoed, result.error_codes) == ("AR", "", (207,))


def test_sink_raising_synchronously():
    """If sink.receive raises instead of returning a Deferred, then a reject is written."""
    class Broken(RecordingSink):
        def receive(self, payload, peer):
            raise ValueError("bad sink")

    _, proto, transport, _ = connect(Broken())
    proto.dataReceived(encode_frame(message("3")))
    assert parse_ack(written(transport)[0]).code == "AR"


def test_sink_answering_bytes_at_once():
    """If sink.receive returns the ACK itself rather than a Deferred, then it is written,
    in its place behind an ACK still owed."""
    class Mixed(RecordingSink):
        def receive(self, payload, peer):
            if b"|NOW|" in payload:
                self.received.append((payload, peer))
                return b"ack-now"
            return super().receive(payload, peer)

    sink = Mixed()
    _, proto, transport, _ = connect(sink)
    proto.dataReceived(encode_frame(message("1")) + encode_frame(message("NOW")))
    assert written(transport) == []  # behind the first, still held
    sink.pending[0].callback(b"ack1")
    assert written(transport) == [b"ack1", b"ack-now"]


def test_unframeable_answer_is_replaced():
    """If the sink answers bytes holding FS, then a reject is written and the queue moves on."""
    sink = RecordingSink()
    _, proto, transport, _ = connect(sink)
    proto.dataReceived(encode_frame(message("1")) + encode_frame(message("2")))
    sink.pending[0].callback(b"bad\x1cack")
    sink.pending[1].callback(b"ack2")
    first, second = written(transport)
    assert parse_ack(first).error_codes == (207,) and second == b"ack2"


def test_oversized_frame_rejected_and_closed():
    """If a frame passes the limit, then earlier ACKs go first, then frame_error, then the AR
    (207 in v2.5, which has no code 104) naming the record, then close."""
    sink = RecordingSink()
    factory, proto, transport, _ = connect(sink, max_frame_size=200)
    proto.dataReceived(encode_frame(message("1")))
    proto.dataReceived(b"\x0b" + message("big") + b"OBX|" * 100)
    assert transport.value() == b""  # the first ACK is not ready: nothing may overtake it
    assert len(sink.frame_errors) == 1
    peer, error, prefix = sink.frame_errors[0]
    assert peer.address == "10.1.2.3:4567" and prefix.startswith(message("big"))
    assert error.limit == 200 and factory.oversized_frames == 1
    assert not transport.disconnecting
    sink.pending[0].callback(b"ack1")
    assert written(transport) == [b"ack1"]  # the reject waits until the frame is recorded
    sink.pending[1].callback(42)
    ack1, nak = written(transport)
    assert ack1 == b"ack1"
    result = parse_ack(nak)
    assert (result.code, result.control_id_echoed, result.error_codes) == ("AR", "big", (207,))
    assert read_header(nak).control_id == "ACK42"
    assert transport.disconnecting


def test_oversized_frame_of_v27_is_refused_with_104():
    """If an oversized frame is a v2.7 message, then its AR says 104 (value too long)."""
    sink = RecordingSink(auto=True)
    _, proto, transport, _ = connect(sink, max_frame_size=200)
    proto.dataReceived(b"\x0b" + message("big", "2.7") + b"OBX|" * 100)
    result = parse_ack(written(transport)[0])
    assert (result.code, result.control_id_echoed, result.error_codes) == ("AR", "big", (104,))


def test_oversized_frame_with_unreadable_msh_echoes_what_can_be_read():
    """If the oversized frame's MSH-12 is empty, then the AR still echoes MSH-10 and names."""
    sink = RecordingSink(auto=True)
    _, proto, transport, _ = connect(sink, max_frame_size=200)
    proto.dataReceived(b"\x0b" + message("big", "") + b"OBX|" * 100)
    nak = written(transport)[0]
    header = read_header(nak)
    assert parse_ack(nak).control_id_echoed == "big"
    assert (header.receiving_application, header.sending_application) == ("SND", "RCV")


def test_oversized_reject_sent_when_recording_fails():
    """If the sink cannot record the oversized frame, then the reject still goes and closes."""
    sink = RecordingSink()
    _, proto, transport, _ = connect(sink, max_frame_size=10)
    proto.dataReceived(b"\x0b" + b"x" * 11)
    assert transport.value() == b""
    sink.pending[0].errback(RuntimeError("store down"))
    nak = written(transport)[0]
    assert parse_ack(nak).error_codes == (207,)
    assert read_header(nak).control_id.startswith(f"{1_700_000_000:x}-")
    assert transport.disconnecting


def test_oversized_ignores_later_data():
    """If the connection is closing after an oversized frame, then later frames are ignored."""
    sink = RecordingSink(auto=True)
    factory, proto, transport, _ = connect(sink, max_frame_size=10)
    proto.dataReceived(b"\x0b" + b"x" * 11)
    proto.dataReceived(encode_frame(b"MSH|late"))
    assert sink.received == [] and factory.frames_received == 0
    assert parse_ack(written(transport)[0]).control_id_echoed == ""
    assert transport.disconnecting


def test_oversized_with_complete_frame_in_same_read():
    """If one read holds a good frame then an oversized one, then the good one is handled."""
    sink = RecordingSink(auto=True)
    _, proto, transport, _ = connect(sink, max_frame_size=100)
    proto.dataReceived(encode_frame(message("1")) + b"\x0b" + b"y" * 101)
    assert [p for p, _ in sink.received] == [message("1")]
    ack, nak = written(transport)
    assert ack == b"ACK for 1" and parse_ack(nak).error_codes == (207,)


def test_idle_timeout_closes():
    """If nothing arrives for idle_timeout seconds, then the connection is closed."""
    _, proto, transport, clock = connect(RecordingSink(auto=True), idle_timeout=30)
    clock.advance(20)
    proto.dataReceived(encode_frame(message("1")))
    clock.advance(20)
    assert not transport.disconnecting
    clock.advance(11)
    assert transport.disconnecting


def test_idle_timeout_counts_from_the_last_read():
    """If a connection reads often, then it stays open however long that lasts, with one
    idle timer at a time, and closes idle_timeout after its last read, not before."""
    _, proto, transport, clock = connect(RecordingSink(auto=True), idle_timeout=30)
    for number in range(10):  # 10 s apart, five periods in all
        clock.advance(10)
        proto.dataReceived(encode_frame(message(str(number)))[:5])
        assert len(clock.getDelayedCalls()) == 1
    clock.advance(29.5)
    assert not transport.disconnecting
    clock.advance(0.5)
    assert transport.disconnecting


def test_idle_timeout_none_sets_no_timer():
    """If idle_timeout is None, then no timer is set and an idle connection stays open."""
    _, proto, transport, clock = connect(RecordingSink(auto=True), idle_timeout=None)
    assert clock.getDelayedCalls() == []
    clock.advance(10 ** 6)
    assert not transport.disconnecting


def test_idle_timeout_waits_for_owed_acks():
    """If an ACK is still owed when the timeout fires, then the connection stays open."""
    sink = RecordingSink()
    _, proto, transport, clock = connect(sink, idle_timeout=30)
    proto.dataReceived(encode_frame(message("1")))
    clock.advance(31)
    assert not transport.disconnecting
    sink.pending[0].callback(b"ack")
    clock.advance(31)
    assert transport.disconnecting


def test_connection_lost_cancels_timeout_and_late_acks_are_dropped():
    """If the peer leaves before its ACK, then nothing is written and no timer remains."""
    sink = RecordingSink()
    factory, proto, transport, clock = connect(sink)
    proto.dataReceived(encode_frame(message("1")))
    proto.connectionLost(None)
    assert factory.connections_open == 0 and clock.getDelayedCalls() == []
    sink.pending[0].callback(b"ack")
    assert transport.value() == b""


def test_backpressure():
    """If too many ACKs are owed, then reading pauses; when half are written, it resumes."""
    sink = RecordingSink()
    _, proto, transport, _ = connect(sink, max_pending=4)
    proto.dataReceived(b"".join(encode_frame(message(str(i))) for i in range(4)))
    assert transport.producerState == "paused"
    sink.pending[0].callback(b"a0")
    assert transport.producerState == "paused"
    sink.pending[1].callback(b"a1")
    assert transport.producerState == "producing"


def test_timestamp_and_control_ids():
    """If the layer writes its own ACKs, then they carry a UTC DTM and distinct control ids."""
    factory, _, _, _ = connect(RecordingSink())
    assert hl7_timestamp(0) == "19700101000000+0000"
    assert factory.timestamp() == "20231114221320+0000"
    assert factory.next_control_id() != factory.next_control_id()


def test_peer_matches_engine_peer_info():
    """If the engine's PeerInfo gains or renames a field, then Peer must follow (duck typing)."""
    import dataclasses

    from engine.interfaces import PeerInfo

    def shape(cls):
        return [(f.name, f.default) for f in dataclasses.fields(cls)]

    assert shape(Peer) == shape(PeerInfo)
    assert Peer.__dataclass_params__.frozen


def test_backpressure_by_bytes():
    """If the frames awaiting their ACK weigh the byte budget, then reading pauses, however
    few they are; it resumes once ACKs bring them under half the budget."""
    sink = RecordingSink()
    big = message("B") + b"Z" * 3000  # about 3 KiB each, a budget of 8 KiB
    _, proto, transport, _ = connect(sink, max_pending=1000, max_pending_bytes=8000)
    proto.dataReceived(encode_frame(big) + encode_frame(big))
    assert transport.producerState == "producing" and proto.pending_bytes == 2 * len(big)
    proto.dataReceived(encode_frame(big))
    assert transport.producerState == "paused"
    sink.pending[0].callback(b"a0")
    assert transport.producerState == "paused"  # 2 frames, 6 KiB: over half the budget
    sink.pending[1].callback(b"a1")
    assert transport.producerState == "producing" and proto.pending_bytes == len(big)


def fired(d: defer.Deferred) -> list:
    results: list = []
    d.addBoth(results.append)
    return results


def test_unsolicited_frame_waits_for_the_acks_owed_before_it():
    """If an application ACK is written while earlier frames await their ACK, then it leaves
    after them, after the unsolicited delay, and an empty answer (MSH-15 NE) does not hold it."""
    sink = RecordingSink()
    factory, proto, transport, clock = connect(sink)
    proto.dataReceived(encode_frame(message("1")) + encode_frame(message("2")))
    written_ = fired(proto.write_unsolicited(b"app-ack"))
    sink.pending[1].callback(b"ack2")
    sink.pending[0].callback(b"")
    assert written(transport) == [b"ack2"]
    clock.advance(factory.unsolicited_delay)
    assert written(transport) == [b"ack2", b"app-ack"]
    assert written_ == [True]
    assert proto.pending_bytes == 0


def test_unsolicited_frame_leaves_apart_from_the_ack_before_it():
    """If the accept ACK was just written, then the application ACK is not written in the
    same turn (a peer reading one frame per read would merge them), but after the delay."""
    sink = RecordingSink(auto=True)
    factory, proto, transport, clock = connect(sink)
    proto.dataReceived(encode_frame(message("1")))
    proto.write_unsolicited(b"app-ack")
    assert written(transport) == [b"ACK for 1"]
    clock.advance(factory.unsolicited_delay)
    assert written(transport) == [b"ACK for 1", b"app-ack"]


def test_unsolicited_frame_is_given_up_when_the_peer_shuts_its_side():
    """If the peer half-closes (or closes: the two look alike) while an application ACK
    waits, then that ACK is given up (False: the lane sends it another way), the accept ACK
    still owed is written, and the connection closes after it; a later one is refused."""
    sink = RecordingSink()
    factory, proto, transport, clock = connect(sink)
    proto.dataReceived(encode_frame(message("1")))
    pending = fired(proto.write_unsolicited(b"app-ack"))
    proto.readConnectionLost()
    assert pending == [False]
    assert fired(proto.write_unsolicited(b"again")) == [False]
    assert not transport.disconnecting
    sink.pending[0].callback(b"ack1")
    clock.advance(factory.unsolicited_delay)
    assert written(transport) == [b"ack1"]
    assert transport.disconnecting


def test_a_half_close_behind_an_application_ack_still_closes():
    """If only an application ACK was queued when the peer half-closed, then giving it up
    leaves nothing owed and the connection closes at once."""
    sink = RecordingSink(auto=True)
    factory, proto, transport, clock = connect(sink)
    proto.dataReceived(encode_frame(message("1")))
    pending = fired(proto.write_unsolicited(b"app-ack"))
    proto.readConnectionLost()
    assert pending == [False]
    assert transport.disconnecting
    clock.advance(factory.unsolicited_delay)
    assert written(transport) == [b"ACK for 1"]


def test_unsolicited_frame_is_refused_once_the_connection_is_lost():
    """If the connection is gone, or goes before the frame is written, then the Deferred
    says False and nothing is written."""
    _, proto, transport, clock = connect(RecordingSink())
    pending = fired(proto.write_unsolicited(b"app-ack"))
    proto.connectionLost(None)
    assert pending == [False]
    assert fired(proto.write_unsolicited(b"again")) == [False]
    clock.advance(1)
    assert transport.value() == b""
