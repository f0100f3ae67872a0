"""
Bad input over real sockets: each kind is answered as HL7 says, stored in ERROR with a reason
an operator can act on, and never stops the engine from serving other senders.

The broken messages are the ones under ``samples/bad/`` (see ``samples/README.md``); framing
trouble is written byte by byte on a raw connection. Runs on SQLite and on PostgreSQL.
"""
from __future__ import annotations

from twisted.internet import defer
from twisted.trial import unittest

from engine import status as st
from engine.store import queries
from engine.synthetic import adt_message, oru_message
from mllp.ack import parse_ack
from mllp.framing import encode_frame
from mllp.header import read_header
from tests.e2e import harness as h

MAX_FRAME_SIZE = 4096


class BadInputTestsMixin(h.EngineCase):
    """One engine per test, its source refusing frames over 4 KiB; a sink downstream."""

    timeout = 60

    @defer.inlineCallbacks
    def setUp(self):
        super().setUp()
        self.downstream, sink_port = self.sink()
        config = self.config(sink_port, source={"max_frame_size": "4KiB"})
        self.engine_, self.port = yield self.engine(config)
        self.good = [h.as_original_mode(adt_message(n)) for n in range(1, 4)]

    @defer.inlineCallbacks
    def assert_still_served(self, payload: bytes):
        """A good message on a new connection is ACKed AA and reaches the sink."""
        acks = yield h.send_over(self.port, [payload])
        answer = parse_ack(acks[0][2])
        self.assertEqual((answer.code, answer.control_id_echoed), ("AA", h.msh10(payload)))
        yield h.wait_until(lambda: payload in self.downstream.received, 10,
                           "the good message reaches the sink")

    @defer.inlineCallbacks
    def stored_error(self):
        """The one message stored in ERROR (as ``messages list --status ERROR`` lists it),
        with its payload."""
        rows = yield h.stored_messages(self.engine_, status=st.ERROR)
        self.assertEqual(len(rows), 1, rows)
        detail = yield self.engine_.store.read(queries.message_detail, rows[0]["id"])
        return detail

    @defer.inlineCallbacks
    def refused(self, payload: bytes, code: str, error_code: int, echoed: str, reason: str):
        """Send ``payload`` in one frame; check its NAK, its ERROR record, and that the
        engine goes on serving."""
        raw = yield self.raw_connection(self.port)
        raw.transport.write(encode_frame(payload))
        frames = yield raw.frames_after(1)
        answer = parse_ack(frames[0])
        self.assertEqual((answer.code, answer.error_codes, answer.control_id_echoed),
                         (code, (error_code,), echoed))
        self.assertIn(reason, answer.text)
        record = yield self.stored_error()
        self.assertEqual((record["raw"], record["deliveries"]), (payload, []))
        self.assertTrue(record["error"].startswith(f"{error_code} "), record["error"])
        self.assertIn(reason, record["error"])
        yield self.assert_still_served(self.good[0])
        self.assertEqual(self.downstream.received, [self.good[0]])

    def test_garbage_in_a_frame(self):
        """If a frame holds random bytes, then it is rejected AR with ERR 100 and stored in
        ERROR, saying MSH is missing."""
        garbage = (h.SAMPLES / "bad" / "garbage.bin").read_bytes()
        return self.refused(garbage, "AR", 100, "", "not MSH")

    def test_a_message_without_msh(self):
        """If a message starts with PID, then it is rejected AR with ERR 100 and stored in
        ERROR naming the segment found."""
        payload = (h.SAMPLES / "bad" / "no-msh.hl7").read_bytes()
        return self.refused(payload, "AR", 100, "", "the first segment is 'PID', not MSH")

    def test_a_truncated_msh(self):
        """If MSH stops before MSH-10, then it is rejected AR with ERR 101 and stored in
        ERROR naming the missing field."""
        payload = (h.SAMPLES / "bad" / "truncated.hl7").read_bytes()
        return self.refused(payload, "AR", 101, "", "MSH-10 (message control id) is empty")

    def test_bytes_invalid_in_the_declared_charset(self):
        """If MSH-18 says UTF-8 but the accents are ISO 8859-1 bytes, then the message is
        answered CE (its MSH-15/16 ask for enhanced mode) with ERR 102 and stored in ERROR
        naming the byte."""
        payload = (h.SAMPLES / "bad" / "wrong-encoding.hl7").read_bytes()
        offset = payload.index(b"\xc8")  # the first latin-1 byte (LEF\xc8VRE)
        return self.refused(payload, "CE", 102, "GAM20240313001299",
                            f"byte 0xc8 at offset {offset} is not valid UNICODE UTF-8")

    def test_an_unknown_charset(self):
        """If MSH-18 names a character set nobody knows, then the message is answered CE
        with ERR 103 and stored in ERROR naming it."""
        payload = (h.SAMPLES / "bad" / "unknown-charset.hl7").read_bytes()
        return self.refused(payload, "CE", 103, "GAM20240313001300",
                            "MSH-18 names an unknown character set 'KLINGON'")

    @defer.inlineCallbacks
    def test_an_oversized_frame(self):
        """If a frame is larger than max_frame_size, then its start is stored in ERROR with
        the limit and its MSH-10 named, it is rejected AR naming the record in MSH-10 (ERR 207:
        the message is v2.5, whose table 0357 has no 104), and the connection is closed."""
        payload = h.as_original_mode(oru_message(1, results=60))
        self.assertGreater(len(payload), MAX_FRAME_SIZE)
        raw = yield self.raw_connection(self.port)
        raw.transport.write(encode_frame(payload))
        frames = yield raw.frames_after(1)
        yield raw.closed
        answer = parse_ack(frames[0])
        self.assertEqual((answer.code, answer.error_codes, answer.control_id_echoed),
                         ("AR", (207,), "ORU000000001"))
        # The protocol answers once the frame is recorded (frame_error), naming the record.
        record = yield self.stored_error()
        self.assertEqual(read_header(frames[0]).control_id, f"ACK{record['id']}")
        self.assertEqual(record["control_id"], "ORU000000001")
        self.assertIn(f"exceeds the maximum frame size of {MAX_FRAME_SIZE} bytes",
                      record["error"])
        self.assertGreater(len(record["raw"]), MAX_FRAME_SIZE)
        self.assertTrue(payload.startswith(record["raw"]),
                        f"stored bytes are not the frame's start: ...{record['raw'][-20:]!r}")
        self.assertEqual(self.engine_.sources[h.CHANNEL].stats()["oversized_frames"], 1)
        yield self.assert_still_served(self.good[0])

    @defer.inlineCallbacks
    def test_bytes_outside_frames(self):
        """If bytes come before, between and after frames, then they are dropped and counted,
        the frames among them are ACKed and delivered, and nothing is stored in ERROR."""
        junk = [b"hello\r\n", b"\x1c\rstray", b"tail without a frame"]
        raw = yield self.raw_connection(self.port)
        raw.transport.write(junk[0] + encode_frame(self.good[1]) + junk[1]
                            + encode_frame(self.good[2]) + junk[2])
        frames = yield raw.frames_after(2)
        yield h.wait_until(
            lambda: self.engine_.sources[h.CHANNEL].stats()["bytes_discarded"]
            >= sum(map(len, junk)), 5, "the junk is counted")

        answers = [parse_ack(frame) for frame in frames]
        self.assertEqual([(a.code, a.control_id_echoed) for a in answers],
                         [("AA", h.msh10(self.good[1])), ("AA", h.msh10(self.good[2]))])
        self.assertEqual(self.engine_.sources[h.CHANNEL].stats()["bytes_discarded"],
                         sum(map(len, junk)))
        yield h.wait_until(lambda: len(self.downstream.received) == 2, 10, "both are delivered")
        self.assertEqual(self.downstream.received, self.good[1:])
        errors = yield h.stored_messages(self.engine_, status=st.ERROR)
        self.assertEqual(errors, [])
        yield self.assert_still_served(self.good[0])

    @defer.inlineCallbacks
    def test_every_overlong_header_field_is_refused_for_good(self):
        """If MSH-3, MSH-4, MSH-9, MSH-10 or MSH-18 is longer than the store keeps, then the
        message (v2.7) is answered AR with ERR 104 naming the field, every time it is sent (never
        the transient AE), and each copy is stored in ERROR with that error, its values
        clipped: the same on SQLite and PostgreSQL."""
        payloads = {number: _msh_with(number, value)
                    for number, value in ((3, "A" * 228), (4, "F" * 300),
                                          (9, "ADT^A01^" + "X" * 60), (10, "C" * 200),
                                          (18, "K" * 33))}
        sent = list(payloads.values()) * 2  # sent again: the same answer
        acks = yield h.send_over(self.port, sent)
        answers = [parse_ack(a) for _, _, a in acks]
        self.assertEqual([(a.code, a.error_codes) for a in answers], [("AR", (104,))] * 10)
        rows = yield h.stored_messages(self.engine_, status=st.ERROR)
        self.assertEqual(len(rows), 10)
        for number in payloads:
            named = [r for r in rows if r["error"].startswith(f"104 MSH-{number} is ")]
            self.assertEqual(len(named), 2, (number, [r["error"] for r in rows]))
        self.assertTrue(all(len(r["control_id"]) <= 199 and len(r["sender"]) <= 455
                            for r in rows))
        yield self.assert_still_served(self.good[0])

    @defer.inlineCallbacks
    def test_separators_in_values_make_no_false_duplicate(self):
        """If, with '#' as field separator, MSH-3, MSH-4 and MSH-10 are (X, Y, Z|W) in one
        message and (X, Y|Z, W) in another, then both are accepted and delivered: the
        duplicate key joins nothing that a value may hold."""
        first = b"MSH#^~\\&#X#Y#ENG#HOSP#20260101120000##ADT^A01#Z|W#P#2.5\rPID#1\r"
        second = b"MSH#^~\\&#X#Y|Z#ENG#HOSP#20260101120000##ADT^A01#W#P#2.5\rPID#1\r"
        acks = yield h.send_over(self.port, [first, second])
        self.assertEqual([parse_ack(a).code for _, _, a in acks], ["AA", "AA"])
        yield h.wait_until(lambda: len(self.downstream.received) == 2, 10, "both delivered")
        duplicates = yield h.stored_messages(self.engine_, status=st.DUPLICATE)
        self.assertEqual(duplicates, [])


def _msh_with(number: int, value: str) -> bytes:
    """A small v2.7 ADT message (whose ERR may say 104) whose MSH-``number`` is ``value``."""
    fields = ["MSH", "^~\\&", "HIS", "HOSP", "ENG", "HOSP", "20260101120000", "",
              "ADT^A01^ADT_A01", f"C{number}", "P", "2.7", "", "", "", "", "", ""]
    fields[number - 1] = value
    return ("|".join(fields) + "\rPID|1||P1^^^HOSP\r").encode("latin-1")


class SQLiteBadInputTests(BadInputTestsMixin, unittest.TestCase):
    backend = "sqlite"


class PostgreSQLBadInputTests(BadInputTestsMixin, unittest.TestCase):
    backend = "postgresql"
