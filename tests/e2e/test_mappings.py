"""
Channels with mappings, end to end: the real engine, MLLP senders, file destinations.

A translate step meeting an unknown code stores the message in ERROR naming the step, path
and value (the ACK, in after-commit mode, is still AA: the message is safe), and after the
table is fixed and the engine restarted, ``messages replay --reprocess`` delivers it
translated. Per-destination steps give each destination its own payload; a filter leaves the
message FILTERED with nothing delivered; in after-processing mode a step failure is answered
AE with ERR 207. Every test runs on SQLite and on PostgreSQL.

Built-in steps are decided at intake, committed with the message (a fast plan); the same tests
run once more with a do-nothing ``python:`` step added, which makes the plan slow: committed
RECEIVED, decided in a worker thread, its decision committed by the same store write. Both
must store and deliver the same.
"""
from __future__ import annotations

from pathlib import Path

import yaml
from twisted.internet import defer, threads
from twisted.trial import unittest

from engine import status as st
from engine.store import queries
from engine.store.replay import replay_message
from engine.store.store import make_engine
from mllp.ack import APPLICATION_INTERNAL_ERROR, parse_ack
from tests.e2e import harness as h

SEX_TABLE = "local,code,display\nM,male,Male\nF,female,Female\n"


def adt(control_id: str, sex: str, name: str = "DUPONT^JEAN") -> bytes:
    return (f"MSH|^~\\&|HIS|HOSP|ENG|HOSP|20260101120000||ADT^A01^ADT_A01|{control_id}|P|2.5\r"
            f"EVN|A01|20260101120000\r"
            f"PID|1||IPP{control_id}^^^HOSP^PI||{name}||19700101|{sex}\r"
            f"PV1|1|I\r").encode()


def unchanged(message) -> None:
    """A ``python:`` step that changes nothing: its channel is processed after the commit."""


class MappingTestsMixin(h.EngineCase):
    slow = False  # True: add a python: step, so the decider decides in a worker thread

    def channel(self, *, destinations: list[dict], ack_mode: str = "after-commit",
                **sections) -> str:
        """engine.yaml and a channel with file ``destinations`` and the mapping ``sections``
        (tables:, filters:, steps:...) added as written in YAML; the engine.yaml path."""
        if self.slow:
            sections["steps"] = sections.get("steps", []) + [
                {"python": "tests.e2e.test_mappings:unchanged"}]
        config = self.config(None, ack_mode=ack_mode, extra_destinations=destinations)
        path = self.directory / "channels" / f"{h.CHANNEL}.yaml"
        channel = yaml.safe_load(path.read_text())
        channel.update(sections)
        path.write_text(yaml.safe_dump(channel, sort_keys=False))
        return config

    def file_destination(self, name: str, **extra) -> tuple[dict, Path]:
        out = self.directory / name
        return {"name": name, "type": "file", "directory": str(out),
                "filename": "{control_id}.hl7", **extra}, out

    def write_table(self, text: str) -> None:
        (self.directory / "channels" / "tables").mkdir(parents=True, exist_ok=True)
        (self.directory / "channels" / "tables" / "sex.csv").write_text(text)

    def one_message(self, engine, control_id: str) -> defer.Deferred:
        return h.stored_messages(engine, control_id=control_id).addCallback(
            lambda rows: rows[0] if rows else None)

    def assert_path(self, engine, count: int) -> None:
        """The ``count`` messages were decided where this class says they should be."""
        self.assertEqual((engine.intake.decided, engine.decider.decided),
                         (0, count) if self.slow else (count, 0))

    def status_is(self, engine, control_id: str, status: str) -> defer.Deferred:
        return self.one_message(engine, control_id).addCallback(
            lambda row: row is not None and row["status"] == status)

    @defer.inlineCallbacks
    def test_unknown_code_is_an_error_replayed_after_the_table_is_fixed(self):
        """If a translate step with on-unknown: error meets an unknown code, then the message
        is ACKed AA, stored in ERROR naming the step, path and value, and nothing is
        delivered; once the table has the code and the engine is restarted, replaying it
        with --reprocess delivers it translated."""
        self.write_table(SEX_TABLE)
        out_destination, out = self.file_destination("out")
        config = self.channel(
            destinations=[out_destination], tables={"sex": "tables/sex.csv"},
            steps=[{"translate": "PID-8", "table": "sex", "on-unknown": "error"}])
        first = yield h.start_engine(config)
        try:
            port = first.source_port(h.CHANNEL)
            [(_, _, ack)] = yield h.send_over(port, [adt("U1", "X")])
            self.assertEqual(parse_ack(ack).code, "AA")
            yield h.wait_until(lambda: self.status_is(first, "U1", st.ERROR), 20,
                               "the message is in ERROR")
            row = yield self.one_message(first, "U1")
            self.assert_path(first, 1)
        finally:
            yield first.stop()
        self.assertIn("steps[0].translate", row["error"])
        self.assertIn("PID-8", row["error"])
        self.assertIn("'X'", row["error"])
        self.assertIn("channels/e2e.yaml:", row["error"])
        self.assertFalse(out.exists() and list(out.iterdir()))

        self.write_table(SEX_TABLE + "X,unknown,Unknown\n")
        engine, _ = yield self.engine(config)

        def replay() -> str:
            database = make_engine(self.store_url)
            try:
                return replay_message(database, row["id"], reprocess=True)
            finally:
                database.dispose()

        said = yield threads.deferToThread(replay)
        self.assertIn("set back to RECEIVED", said)
        yield h.wait_until(lambda: (out / "U1.hl7").exists(), 20, "the replay is delivered")
        yield h.wait_until(lambda: self.status_is(engine, "U1", st.TRANSFORMED), 10,
                           "the message is TRANSFORMED")
        self.assertEqual((out / "U1.hl7").read_bytes(),
                         adt("U1", "X").replace(b"|19700101|X\r", b"|19700101|unknown\r"))
        self.assertEqual(engine.decider.decided, 1)  # a replay is found by the recovery scan

    @defer.inlineCallbacks
    def test_each_destination_gets_its_own_mapping(self):
        """If two destinations have steps of their own after the channel's, then each
        receives its own payload; a third without steps gets the channel's result."""
        self.write_table(SEX_TABLE)
        a, out_a = self.file_destination(
            "a", steps=[{"set": "PID-5.1", "value": "ANONYME"}])
        b, out_b = self.file_destination(
            "b", steps=[{"delete": "PV1[1]"}, {"set": "MSH-5", "value": "DPI"}])
        c, out_c = self.file_destination("c")
        config = self.channel(destinations=[a, b, c], tables={"sex": "tables/sex.csv"},
                              steps=[{"translate": "PID-8", "table": "sex"}])
        engine, port = yield self.engine(config)
        sent = adt("D1", "F")

        [(_, _, ack)] = yield h.send_over(port, [sent])

        self.assertEqual(parse_ack(ack).code, "AA")
        files = [out / "D1.hl7" for out in (out_a, out_b, out_c)]
        yield h.wait_until(lambda: all(f.exists() for f in files), 20, "every file is written")
        translated = sent.replace(b"|19700101|F\r", b"|19700101|female\r")
        self.assertEqual(files[0].read_bytes(),
                         translated.replace(b"||DUPONT^JEAN||", b"||ANONYME^JEAN||"))
        self.assertEqual(files[1].read_bytes(),
                         translated.replace(b"PV1|1|I\r", b"").replace(b"|ENG|", b"|DPI|"))
        self.assertEqual(files[2].read_bytes(), translated)
        self.assert_path(engine, 1)

    @defer.inlineCallbacks
    def test_filtered_message_is_not_delivered(self):
        """If a filter refuses a message, then it is ACKed AA, stored FILTERED with the
        filter named, and no delivery is made; a message the filter accepts goes through."""
        out_destination, out = self.file_destination("out")
        config = self.channel(destinations=[out_destination],
                              filters=['PID-8 in ["M", "F"]'])
        engine, port = yield self.engine(config)

        acks = yield h.send_over(port, [adt("F1", "U"), adt("F2", "M")])

        self.assertEqual([parse_ack(ack).code for _, _, ack in acks], ["AA", "AA"])
        yield h.wait_until(lambda: (out / "F2.hl7").exists(), 20, "F2 is delivered")
        yield h.wait_until(lambda: self.status_is(engine, "F1", st.FILTERED), 10,
                           "F1 is FILTERED")
        row = yield self.one_message(engine, "F1")
        detail = yield engine.store.read(queries.message_detail, row["id"])
        self.assertEqual(detail["deliveries"], [])
        self.assertIn("filters[0]", detail["journal"][-1]["detail"])
        self.assertEqual(sorted(p.name for p in out.iterdir()), ["F2.hl7"])
        self.assertEqual((out / "F2.hl7").read_bytes(), adt("F2", "M"))
        self.assert_path(engine, 2)

    @defer.inlineCallbacks
    def test_after_processing_step_failure_is_answered_ae_207(self):
        """If the channel acknowledges after processing and a step fails, then the ACK is AE
        with ERR code 207 and the failure's text, and the message is in ERROR."""
        self.write_table(SEX_TABLE)
        out_destination, out = self.file_destination("out")
        config = self.channel(
            destinations=[out_destination], ack_mode="after-processing",
            tables={"sex": "tables/sex.csv"},
            steps=[{"translate": "PID-8", "table": "sex", "on-unknown": "error"}])
        engine, port = yield self.engine(config)

        acks = yield h.send_over(port, [adt("E1", "Z"), adt("E2", "M")])

        failed, passed = (parse_ack(ack) for _, _, ack in acks)
        self.assertEqual((failed.code, failed.error_codes), ("AE", (APPLICATION_INTERNAL_ERROR,)))
        self.assertEqual(APPLICATION_INTERNAL_ERROR, 207)
        self.assertIn("PID-8", failed.text)
        self.assertEqual(passed.code, "AA")
        row = yield self.one_message(engine, "E1")
        self.assertEqual(row["status"], st.ERROR)
        yield h.wait_until(lambda: (out / "E2.hl7").exists(), 20, "E2 is delivered")
        self.assertFalse((out / "E1.hl7").exists())
        self.assert_path(engine, 2)


class SQLiteMappingTests(MappingTestsMixin, unittest.TestCase):
    backend = "sqlite"


class PostgreSQLMappingTests(MappingTestsMixin, unittest.TestCase):
    backend = "postgresql"


class SQLiteSlowMappingTests(MappingTestsMixin, unittest.TestCase):
    backend = "sqlite"
    slow = True
