"""
Hostile or broken peers over real sockets: too many connections, peers outside the allow-list,
and a flood of unreadable frames. Each is refused, counted, and leaves the engine serving
the others; what is stored stays bounded.
"""
from __future__ import annotations

from twisted.internet import defer, reactor, task
from twisted.trial import unittest

from engine import status as st
from engine.synthetic import adt_message
from mllp.ack import parse_ack
from mllp.framing import encode_frame
from tests.e2e import harness as h


class HostilePeerTests(h.EngineCase, unittest.TestCase):
    timeout = 60

    @defer.inlineCallbacks
    def start(self, **source):
        self.downstream, sink_port = self.sink()
        self.engine_, self.port = yield self.engine(self.config(sink_port, source=source))

    @defer.inlineCallbacks
    def rows_once_settled(self, status: str):
        """The stored messages in ``status`` once their count stops changing (the summary
        is stored after the connection closes)."""
        previous = None
        for _ in range(100):
            rows = yield h.stored_messages(self.engine_, status=status)
            if previous is not None and len(rows) == len(previous):
                return rows
            previous = rows
            yield task.deferLater(reactor, 0.2, lambda: None)
        return previous

    def source_stats(self) -> dict:
        return self.engine_.sources[h.CHANNEL].stats()

    @defer.inlineCallbacks
    def test_connections_over_the_per_peer_cap_are_closed_at_once_and_counted(self):
        """If a peer opens more connections than max_connections_per_peer, then the extra
        ones are closed at accept and counted, and the admitted ones are still served."""
        yield self.start(max_connections_per_peer=3)
        raws = []
        for _ in range(5):
            raws.append((yield self.raw_connection(self.port)))
        yield h.wait_until(lambda: sum(raw.closed.called for raw in raws) == 2, 10,
                           "two connections are closed by the engine")
        self.assertEqual(self.source_stats()["connections_refused"],
                         {"max_connections_per_peer": 2})
        admitted = [raw for raw in raws if not raw.closed.called]
        payload = h.as_original_mode(adt_message(1))
        admitted[0].transport.write(encode_frame(payload))
        frames = yield admitted[0].frames_after(1)
        self.assertEqual(parse_ack(frames[0]).code, "AA")
        self.assertEqual(self.engine_.stats()["sources"][h.CHANNEL]["connections_open"], 3)

    @defer.inlineCallbacks
    def test_a_peer_outside_the_allow_list_is_closed_before_it_is_read(self):
        """If allow_from does not include the peer's address, then its connection is closed
        at once, nothing it wrote is stored, and the refusal is counted."""
        yield self.start(allow_from=["10.99.0.0/16", "192.168.7.1"])
        raw = yield self.raw_connection(self.port)
        raw.transport.write(encode_frame(h.as_original_mode(adt_message(1))))
        yield raw.closed
        self.assertEqual(raw.frames, [])
        rows = yield h.stored_messages(self.engine_)
        self.assertEqual((rows, self.source_stats()["connections_refused"]),
                         ([], {"address_not_allowed": 1}))

    @defer.inlineCallbacks
    def test_a_flood_of_unreadable_frames_is_stored_as_a_counted_summary(self):
        """If one connection sends 200 empty frames, then each gets its NAK, the first
        unreadable_threshold are stored one by one and the rest as one summary counting
        them, once the connection closes; a good message still goes through."""
        yield self.start(unreadable_threshold=5)
        raw = yield self.raw_connection(self.port)
        raw.transport.write(encode_frame(b"") * 200)
        frames = yield raw.frames_after(200)
        self.assertEqual({parse_ack(frame).code for frame in frames}, {"AR"})
        raw.transport.loseConnection()
        yield raw.closed
        yield h.wait_until(lambda: self.source_stats()["connections_open"] == 0, 10)
        rows = yield self.rows_once_settled(st.ERROR)
        summaries = [row for row in rows if "more unreadable frame(s)" in (row["error"] or "")]
        self.assertEqual(len(rows), 6, rows)
        self.assertEqual(len(summaries), 1)
        self.assertTrue(summaries[0]["error"].startswith("195 more unreadable frame(s)"),
                        summaries[0]["error"])
        self.assertEqual(self.source_stats()["unreadable_summarised"], 195)
        acks = yield h.send_over(self.port, [h.as_original_mode(adt_message(2))])
        self.assertEqual(parse_ack(acks[0][2]).code, "AA")

    @defer.inlineCallbacks
    def test_a_connection_answered_a_reject_is_watched_for_unreadable_frames(self):
        """If frames start with MSH but their MSH cannot be read, then once the engine has
        answered the first with a reject, the connection's next ones are accounted for too:
        unreadable_threshold stored one by one, the rest in one summary."""
        yield self.start(unreadable_threshold=5)
        raw = yield self.raw_connection(self.port)
        broken = b"MSH|^~\\&|"  # MSH-9 and MSH-10 missing
        raw.transport.write(encode_frame(broken))
        yield raw.frames_after(1)
        raw.transport.write(encode_frame(broken) * 100)
        frames = yield raw.frames_after(101)
        self.assertEqual({parse_ack(frame).code for frame in frames}, {"AR"})
        raw.transport.loseConnection()
        yield raw.closed
        yield h.wait_until(lambda: self.source_stats()["connections_open"] == 0, 10)
        rows = yield self.rows_once_settled(st.ERROR)
        summaries = [row for row in rows if "more unreadable frame(s)" in (row["error"] or "")]
        self.assertEqual((len(rows), len(summaries)), (7, 1), rows)
        self.assertTrue(summaries[0]["error"].startswith("95 more"), summaries[0]["error"])
