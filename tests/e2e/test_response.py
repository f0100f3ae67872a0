"""
The ``response:`` block, end to end: what a sender reads back from the real engine.

A channel acknowledging after processing, with ``on-error: AR``, ``on-filtered: AE`` and the
answering application and facility set, is sent a message its step cannot map, one its filter
drops, one that goes through, and one that fails in enhanced mode (accepted: CA). Runs on SQLite and on
PostgreSQL.
"""
from __future__ import annotations

import yaml
from twisted.internet import defer
from twisted.trial import unittest

from engine import status as st
from mllp.ack import parse_ack
from mllp.header import read_header
from tests.e2e import harness as h
from tests.e2e.test_mappings import adt


def with_zbe(control_id: str, sex: str) -> bytes:
    return adt(control_id, sex) + b"ZBE|MVT1|20260101120000||INSERT\r"


def enhanced(payload: bytes) -> bytes:
    """``payload`` asking for enhanced-mode acknowledgements (MSH-15 AL, MSH-16 NE)."""
    msh, rest = payload.split(b"\r", 1)
    return msh + b"|||AL|NE\r" + rest


class ResponseTestsMixin(h.EngineCase):

    @defer.inlineCallbacks
    def test_the_response_block_decides_what_the_sender_reads(self):
        """If the channel answers after processing with its own response settings, then an
        unmappable message gets AR with ERR 207 (CA in enhanced mode: committed, the outcome
        is for the application ACK), a filtered one AE "filtered", a good one AA, every ACK
        from AIGUILLAGE at CHU^1.2.250^ISO."""
        out = self.directory / "out"
        config = self.config(None, ack_mode="after-processing", extra_destinations=[
            {"name": "out", "type": "file", "directory": str(out),
             "filename": "{control_id}.hl7"}])
        path = self.directory / "channels" / f"{h.CHANNEL}.yaml"
        channel = yaml.safe_load(path.read_text())
        channel["response"].update({"on-error": "AR", "on-filtered": "AE",
                                    "sending-application": "AIGUILLAGE",
                                    "sending-facility": "CHU^1.2.250^ISO"})
        channel["filters"] = ['PID-8 in ["M", "F"]']
        channel["steps"] = [{"set": "ZBE-9", "value": "HMS"}]
        path.write_text(yaml.safe_dump(channel, sort_keys=False))
        engine, port = yield self.engine(config)
        payloads = [adt("E1", "M"), with_zbe("F1", "U"), with_zbe("G1", "F"),
                    enhanced(adt("E2", "M"))]

        raw_acks = [ack for _, _, ack in (yield h.send_over(port, payloads))]

        acks = [parse_ack(ack) for ack in raw_acks]
        self.assertEqual([(a.code, a.control_id_echoed) for a in acks],
                         [("AR", "E1"), ("AE", "F1"), ("AA", "G1"), ("CA", "E2")])
        self.assertEqual((acks[0].error_codes, acks[3].error_codes), ((207,), ()))
        self.assertIn("ZBE-9", acks[0].text)
        self.assertEqual(acks[1].text, "filtered")
        self.assertEqual({(read_header(ack).sending_application,
                           read_header(ack).sending_facility) for ack in raw_acks},
                         {("AIGUILLAGE", "CHU^1.2.250^ISO")})
        rows = yield h.stored_messages(engine)
        self.assertEqual([(row["control_id"], row["status"]) for row in rows],
                         [("E1", st.ERROR), ("F1", st.FILTERED), ("G1", st.TRANSFORMED),
                          ("E2", st.ERROR)])
        yield h.wait_until(lambda: (out / "G1.hl7").exists(), 20, "G1 is delivered")

    @defer.inlineCallbacks
    def test_every_ack_names_the_configured_application_and_facility(self):
        """If the channel sets sending-application and sending-facility, then MSH-3/MSH-4 of
        its ACKs say them, components with the sender's separators, MSH-5/MSH-6 the sender."""
        config = self.config(None, extra_destinations=[
            {"name": "out", "type": "file", "directory": str(self.directory / "out")}])
        path = self.directory / "channels" / f"{h.CHANNEL}.yaml"
        channel = yaml.safe_load(path.read_text())
        channel["response"].update({"sending-application": "AIGUILLAGE",
                                    "sending-facility": "CHU^1.2.250^ISO"})
        path.write_text(yaml.safe_dump(channel, sort_keys=False))
        _, port = yield self.engine(config)

        [(_, _, ack)] = yield h.send_over(port, [adt("S1", "M")])

        self.assertEqual(ack.split(b"\r")[0].split(b"|")[2:6],
                         [b"AIGUILLAGE", b"CHU^1.2.250^ISO", b"HIS", b"HOSP"])
        self.assertEqual(parse_ack(ack).code, "AA")


class SQLiteResponseTests(ResponseTestsMixin, unittest.TestCase):
    backend = "sqlite"


class PostgreSQLResponseTests(ResponseTestsMixin, unittest.TestCase):
    backend = "postgresql"
