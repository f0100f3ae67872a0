"""
A patient's opposition to sharing keeps their messages from the shared record, end to end.

The real engine on loopback, one channel with two MLLP destinations: ``dpi`` (a care system)
and ``dmp`` (``shared_record: true``). An ADT whose ZFA-9 says IO (PAM FR: informed, opposed)
is recorded as an opposition with its decision; the ORU that follows for the same patient
(under their INS only) goes to ``dpi`` and not to ``dmp``, and ``aiguillage messages show``
prints why. A second patient, who did not oppose, reaches both. Then an operator withdraws
the opposition with ``aiguillage consent withdraw`` and the next ORU reaches ``dmp``.
Runs on SQLite and on PostgreSQL.
"""
from __future__ import annotations

import os
import subprocess
import sys

import yaml
from twisted.internet import defer, threads
from twisted.trial import unittest

from engine import status as st
from engine.store import queries
from mllp.ack import parse_ack
from tests.e2e import harness as h

INS = "1.2.250.1.213.1.4.10"


def adt(control_id: str, ipp: str, ins: str, zfa9: str) -> bytes:
    return (f"MSH|^~\\&|GAM|CHU-X|DPI|CHU-X|20240309111154||ADT^A01^ADT_A01|{control_id}|P|2.5\r"
            f"PID|1||{ipp}^^^CHU-X&1.2.250.1.999.1&ISO^PI~{ins}^^^ASIP&{INS}&ISO^INS"
            f"||PAT^DOMINIQUE||19790328|F\r"
            f"PV1|1|I\r"
            f"ZFA|ACTIF|20240309111154|||||||{zfa9}|20240309111154\r").encode()


def oru(control_id: str, ins: str) -> bytes:
    return (f"MSH|^~\\&|LAB|CHU-X|DPI|CHU-X|20240309120000||ORU^R01^ORU_R01|{control_id}|P|2.5\r"
            f"PID|1||{ins}^^^&{INS}&ISO^INS||PAT^DOMINIQUE\r"
            f"OBR|1||R{control_id}|2345-7^GLUCOSE^LN\r"
            f"OBX|1|NM|2345-7^GLUCOSE^LN||5.5|mmol/L\r").encode()


def cli(config: str, *args: str) -> defer.Deferred:
    """Run ``aiguillage ARGS --config CONFIG`` in a subprocess (in a thread); its stdout."""
    def run() -> str:
        done = subprocess.run([sys.executable, "-m", "engine.cli.main", *args, "--config", config],
                              cwd=h.REPO_ROOT, capture_output=True, text=True, timeout=120,
                              env={**os.environ, "COLUMNS": "400",
                                   "AIGUILLAGE_OPERATOR": "alice"})
        if done.returncode != 0:
            raise AssertionError(f"aiguillage {args} exited {done.returncode}: {done.stderr}")
        return done.stdout

    return threads.deferToThread(run)


class ConsentTestsMixin(h.EngineCase):

    timeout = 120

    def two_destinations(self, dpi_port: int, dmp_port: int) -> str:
        config = self.config(dpi_port, ack_mode="after-processing", extra_destinations=[{
            "name": "dmp", "type": "mllp", "host": "127.0.0.1", "port": dmp_port,
            "connect_timeout": "2s", "ack_timeout": "10s", "shared_record": True}])
        path = self.directory / "channels" / f"{h.CHANNEL}.yaml"
        channel = yaml.safe_load(path.read_text())
        channel["consent"] = {}  # PAM FR: ZFA-9, IO opposes, INO withdraws
        path.write_text(yaml.safe_dump(channel, sort_keys=False))
        return config

    @defer.inlineCallbacks
    def test_an_opposition_keeps_the_patients_results_from_the_shared_record(self):
        """If an ADT records the patient's opposition, then their ORU is delivered to the
        care system and not to the shared record, the reason is in `messages show`, another
        patient's ORU reaches both, and after `consent withdraw` the next ORU reaches both."""
        dpi, dpi_port = self.sink()
        dmp, dmp_port = self.sink()
        config = self.two_destinations(dpi_port, dmp_port)
        engine, port = yield self.engine(config)
        opposed, other = "279035121518989", "180012345678901"

        acks = yield h.send_over(port, [adt("A1", "000003", opposed, "IO"), oru("O1", opposed),
                                        oru("O2", other)])

        self.assertEqual([parse_ack(ack).code for _, _, ack in acks], ["AA"] * 3)
        yield h.wait_until(lambda: len(dpi.accepted) == 3 and len(dmp.accepted) == 1, 30,
                           "the care system gets all three, the shared record one")
        self.assertEqual([h.msh10(p) for p in dmp.accepted], ["O2"])
        rows = {row["control_id"]: row for row in (yield h.stored_messages(engine))}
        self.assertEqual({row["status"] for row in rows.values()}, {st.TRANSFORMED})
        shown = yield cli(config, "messages", "show", str(rows["O1"]["id"]))
        self.assertIn(f"not sent to dmp: consent: patient {opposed}^^^&{INS}&ISO opposed to "
                      "shared-record since", shown)
        self.assertIn(f"(message:{rows['A1']['id']}; ZFA-9 = IO)", shown)
        detail = yield engine.store.read(queries.message_detail, rows["A1"]["id"])
        self.assertIn("consent: this message records the patient's opposition (ZFA-9 = IO)",
                      " ".join(line.get("detail") or "" for line in detail["journal"]))

        withdrawn = yield cli(config, "consent", "withdraw", "--patient",
                              f"{opposed}^^^&{INS}&ISO")
        self.assertIn("withdrawn", withdrawn)
        yield h.send_over(port, [oru("O3", opposed)])
        yield h.wait_until(lambda: len(dmp.accepted) == 2, 30, "the shared record gets O3")
        self.assertEqual([h.msh10(p) for p in dmp.accepted], ["O2", "O3"])


class SQLiteConsentTests(ConsentTestsMixin, unittest.TestCase):
    backend = "sqlite"


class PostgreSQLConsentTests(ConsentTestsMixin, unittest.TestCase):
    backend = "postgresql"
