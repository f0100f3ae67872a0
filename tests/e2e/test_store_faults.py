"""
When the store fails while deliveries are recorded: nothing is sent twice, nothing out of order.

The faults are real: SQLite on a small tmpfs that is filled up (the disk is full), PostgreSQL
with its connections refused (``ALLOW_CONNECTIONS false``) and its backends terminated
(``pg_terminate_backend``). The sink holds its answer to the first message until the store is
cut, so that recording that delivery's SENT is what fails. A lane that cannot record an
outcome must hold it, retry the write, and send nothing more until it is committed: the sink
then sees every message once, in the order sent, although the store was gone for a while.
"""
from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import psycopg
from twisted.internet import defer, reactor, task, threads
from twisted.trial import unittest

from tests.dbs import PG_ADMIN_DSN
from tests.e2e import harness as h

OUTAGE = 3.0  # seconds the store stays unusable
PATIENT_EVENTS = ("A01", "A08", "A03", "A08", "A02", "A08", "A03")


def patient_stream(count: int) -> list[bytes]:
    """``count`` ADT messages of one patient, each with its own control id, in care order."""
    return [(f"MSH|^~\\&|HIS|HOSP|ENG|HOSP|20260101120000||ADT^{event}|CTL{n:04d}|P|2.5\r"
             f"PID|1||PAT42^^^HOSP||DOE^JOHN\r").encode()
            for n, event in ((n, PATIENT_EVENTS[n % len(PATIENT_EVENTS)])
                             for n in range(count))]


class StoreFaultMixin(h.EngineCase):
    """The scenario, whatever the fault: subclasses say how to break and mend the store."""

    timeout = 120

    def break_store(self) -> defer.Deferred:
        raise NotImplementedError

    def mend_store(self) -> defer.Deferred:
        raise NotImplementedError

    @defer.inlineCallbacks
    def test_outcome_unrecordable_holds_the_lane_and_nothing_is_sent_twice(self):
        """If the store fails just as the first delivery's SENT is recorded, then the lane
        sends nothing more while it cannot record it (the one send that may overlap that
        commit aside); once the store is back, every message
        reaches the sink exactly once, in the order sent, and every delivery is SENT."""
        payloads = patient_stream(7)
        sink, sink_port = self.sink()
        sink.hold()
        engine, port = yield self.engine(self.config(sink_port))
        yield h.send_over(port, payloads)  # all ACKed: committed before the fault
        yield h.wait_until(lambda: sink.waiting == 1, 30, "the first message reaches the sink")
        yield self.break_store()
        try:
            sink.release()
            yield task.deferLater(reactor, OUTAGE, lambda: None)
            during = [h.msh10(p) for p in sink.received]
        finally:
            yield self.mend_store()
        # The send after CTL0000 may start while CTL0000's outcome is being committed; none
        # after that one until it is.
        self.assertIn(during, (["CTL0000"], ["CTL0000", "CTL0001"]),
                      "sent while the outcome could not be recorded")
        yield h.wait_until(
            lambda: h.counts(engine).addCallback(
                lambda report: h.destination_counts(report)["sent"] == len(payloads)),
            60, "every delivery is recorded SENT")
        yield task.deferLater(reactor, 1.0, lambda: None)  # a resend would show by now
        self.assertEqual([h.msh10(p) for p in sink.received],
                         [h.msh10(p) for p in payloads])
        report = yield h.counts(engine)
        self.assertEqual(h.destination_counts(report),
                         {"received": 7, "sent": 7, "queued": 0, "errored": 0})


class PostgreSQLFaultTests(StoreFaultMixin, unittest.TestCase):
    """PostgreSQL refusing connections, its backends terminated."""

    backend = "postgresql"

    def _database(self) -> str:
        return self.store_url.rsplit("/", 1)[1]

    def _admin(self, *statements: str) -> defer.Deferred:
        def run() -> None:
            with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
                for statement in statements:
                    admin.execute(statement)
        return threads.deferToThread(run)

    def break_store(self) -> defer.Deferred:
        name = self._database()
        return self._admin(
            f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false',
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{name}' AND pid <> pg_backend_pid()")

    def mend_store(self) -> defer.Deferred:
        return self._admin(f'ALTER DATABASE "{self._database()}" WITH ALLOW_CONNECTIONS true')


class SQLiteFullDiskTests(StoreFaultMixin, unittest.TestCase):
    """SQLite on a tmpfs that fills up: every write fails with "database or disk is full"."""

    backend = "sqlite"
    SIZE = "8m"

    def setUp(self) -> None:
        super().setUp()
        mount = Path(tempfile.mkdtemp(prefix="aiguillage-tmpfs-"))
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.SIZE}", "tmpfs",
                               str(mount)], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            os.rmdir(mount)
            raise unittest.SkipTest(f"cannot mount a tmpfs here (needs root): {done.stderr}")
        self.addCleanup(os.rmdir, mount)
        self.addCleanup(subprocess.run, ["umount", "-l", str(mount)], check=False)
        self.store_url = f"sqlite:///{mount / 'aiguillage.db'}"
        self.filler = mount / "filler"

    def break_store(self) -> defer.Deferred:
        def fill() -> None:
            with open(self.filler, "wb") as handle:
                try:
                    while True:
                        handle.write(b"\0" * 65536)
                        handle.flush()
                except OSError:
                    pass
        return threads.deferToThread(fill)

    def mend_store(self) -> defer.Deferred:
        return threads.deferToThread(self.filler.unlink)

