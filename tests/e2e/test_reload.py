"""
Hot reload through the real engine: files changed on disk, ``Engine.reload()``, POST /reload
and ``aiguillage reload``, and real senders and sinks on loopback.

What is proven: a changed code table maps the next message the new way while a connection
opened before the reload stays usable; a bad configuration (YAML, unknown table, missing
file, a connector's own check) is refused with file:line and the previous channel keeps
working; deliveries queued for a destination that is down survive a reload that changes it
and are then delivered once each, in order, including the one being sent during the reload;
a new channel file listens after a reload and a removed one's port closes, its queued
deliveries kept and counted.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import yaml
from twisted.internet import defer, reactor, task, threads
from twisted.trial import unittest
from twisted.web.client import Agent, readBody
from twisted.web.http_headers import Headers

from engine.reload import reloader as rl
from mllp.ack import parse_ack
from mllp.client import MLLPClient
from tests.e2e import harness as h

SEX_TABLE = "local,code\nM,male\nF,female\n"
SLOW_RETRY = {"max_attempts": 10, "initial_delay": "60s"}  # no retry within a test
FAST_RETRY = {"max_attempts": 10, "initial_delay": "100ms", "max_delay": "200ms"}


def adt(control_id: str, sex: str = "M") -> bytes:
    return (f"MSH|^~\\&|HIS|HOSP|ENG|HOSP|20260101120000||ADT^A01^ADT_A01|{control_id}|P|2.5\r"
            f"PID|1||IPP{control_id}^^^HOSP^PI||DUPONT^JEAN||19700101|{sex}\r").encode()


def refused_at(port: int) -> defer.Deferred:
    """Connect to 127.0.0.1:``port`` (from a thread); fails if nothing listens there."""
    return threads.deferToThread(lambda: socket.create_connection(("127.0.0.1", port),
                                                                  timeout=5).close())


class ReloadCase(h.EngineCase):
    """Configuration written by the tests, and what they check it with."""

    def write_engine(self, *, admin: bool = False) -> str:
        engine = {"node": "e2e", "store": {"url": self.store_url},
                  "channels": ["channels/*.yaml"], "log_level": "warning"}
        if admin:
            engine["admin"] = {"host": "127.0.0.1", "port": 0}
        (self.directory / "channels").mkdir(exist_ok=True)
        path = self.directory / "engine.yaml"
        path.write_text(yaml.safe_dump(engine, sort_keys=False))
        return str(path)

    def channel_path(self, name: str = h.CHANNEL) -> Path:
        (self.directory / "channels").mkdir(exist_ok=True)
        return self.directory / "channels" / f"{name}.yaml"

    def write_channel(self, name: str = h.CHANNEL, *, destinations: list[dict],
                      **sections) -> None:
        channel = {"name": name, "source": {"type": "mllp", "host": "127.0.0.1", "port": 0},
                   "destinations": destinations, **sections}
        self.channel_path(name).write_text(yaml.safe_dump(channel, sort_keys=False))

    def out(self, name: str = "out") -> tuple[dict, Path]:
        directory = self.directory / name
        return {"name": name, "type": "file", "directory": str(directory),
                "filename": "{control_id}.hl7"}, directory

    def mllp_to(self, port: int, retry: dict) -> dict:
        return {"name": h.SINK_DESTINATION, "type": "mllp", "host": "127.0.0.1", "port": port,
                "connect_timeout": "2s", "ack_timeout": "10s", "retry": retry}

    def write_table(self, text: str) -> None:
        self.channel_path().with_name("sex.csv").write_text(text)

    def mapped_channel(self) -> tuple[str, Path]:
        """engine.yaml and a channel translating PID-8 through channels/sex.csv into files."""
        self.write_table(SEX_TABLE)
        destination, out = self.out()
        self.write_channel(destinations=[destination], tables={"sex": "sex.csv"},
                           steps=[{"translate": "PID-8", "table": "sex"}])
        return self.write_engine(), out

    def client(self, port: int) -> MLLPClient:
        client = MLLPClient.for_address(reactor, "127.0.0.1", port, connect_timeout=5,
                                        ack_timeout=10)
        self.addCleanup(client.close)
        return client

    @defer.inlineCallbacks
    def delivered(self, out: Path, control_id: str) -> bytes:
        path = out / f"{control_id}.hl7"
        yield h.wait_until(path.exists, 10, f"{control_id} is delivered")
        return path.read_bytes()


class ChannelReloadTestsMixin(ReloadCase):
    """What a reload does to channels: plans, sources, bad files, channels come and gone."""

    @defer.inlineCallbacks
    def test_a_changed_table_maps_the_next_message_on_an_open_connection(self):
        """If the code table changes on disk and the engine reloads, then the next message
        is translated the new way, on the connection opened before the reload, and the
        report names the channel changed with its source kept."""
        config, out = self.mapped_channel()
        engine, port = yield self.engine(config)
        client = self.client(port)
        yield client.send(adt("A1"))
        self.assertIn(b"|male", (yield self.delivered(out, "A1")))

        self.write_table("local,code\nM,homme\nF,femme\n")
        report = yield engine.reload()

        self.assertEqual((report.outcome, report.errors, report.channels),
                         (rl.RELOADED, [], {h.CHANNEL: "changed"}))
        self.assertEqual(report.changes, [f"channel {h.CHANNEL}: changed: mappings reloaded; "
                                          "source kept"])
        self.assertEqual(engine.source_port(h.CHANNEL), port)
        ack = yield client.send(adt("A2"))
        self.assertEqual(parse_ack(ack).code, "AA")
        self.assertIn(b"|homme", (yield self.delivered(out, "A2")))
        again = yield engine.reload()
        self.assertEqual(again.channels, {h.CHANNEL: "unchanged"})

    @defer.inlineCallbacks
    def test_a_bad_configuration_is_refused_and_the_channel_keeps_working(self):
        """If the files on disk have a YAML error, an unknown table, a missing table file or
        a file name template the connector refuses, then each reload is refused with the
        error at its file:line, and the channel goes on mapping with its previous plan."""
        config, out = self.mapped_channel()
        engine, port = yield self.engine(config)
        good = self.channel_path().read_text()
        file = str(self.channel_path())
        broken = {
            "yaml": (good + "steps: [\n", f"{file}:"),
            "table": (good.replace("table: sex", "table: nope"), f"{file}:"),
            "path": (good.replace("sex: sex.csv", "sex: missing.csv"),
                     str(self.directory / "channels" / "missing.csv")),
            "connector": (good.replace("'{control_id}.hl7'", "'{nope}.hl7'"), f"{file}:"),
        }
        for index, (case, (text, where)) in enumerate(broken.items()):
            self.channel_path().write_text(text)
            report = yield engine.reload()
            self.assertEqual(report.outcome, rl.REFUSED, case)
            self.assertTrue(any(e.startswith(where) for e in report.errors),
                            (case, report.errors))
            self.assertEqual(report.changes, [], case)
            yield h.send_over(port, [adt(f"B{index}")])
            self.assertIn(b"|male", (yield self.delivered(out, f"B{index}")), case)
        self.assertIn("nope", " ".join(report.errors))

    @defer.inlineCallbacks
    def test_channels_added_and_removed(self):
        """If a channel file appears, then after a reload its source listens and accepts;
        if a channel file is removed, then its port is closed and its queued deliveries are
        counted in a warning, left QUEUED in the store."""
        destination, out = self.out()
        self.write_channel(destinations=[destination])
        self.write_channel("doomed", destinations=[self.mllp_to(self.reserved_port(),
                                                                SLOW_RETRY)])
        engine, port = yield self.engine(self.write_engine())
        doomed_port = engine.source_port("doomed")
        yield h.send_over(doomed_port, [adt("D1"), adt("D2")])

        self.write_channel("fresh", destinations=[destination])
        self.channel_path("doomed").unlink()
        report = yield engine.reload()

        self.assertEqual(report.channels, {h.CHANNEL: "unchanged", "doomed": "removed",
                                           "fresh": "added"})
        self.assertIn(f"channel fresh: added, source listening on port "
                      f"{engine.source_port('fresh')}", report.changes)
        self.assertEqual(report.warnings, ["channel doomed removed: 2 queued deliveries stay "
                                           "QUEUED in the store; they are sent if it comes "
                                           "back"])
        self.assertNotIn("doomed", engine.sources)
        yield self.assertFailure(refused_at(doomed_port), ConnectionRefusedError)
        [(_, _, ack)] = yield h.send_over(engine.source_port("fresh"), [adt("N1")])
        self.assertEqual(parse_ack(ack).code, "AA")
        yield self.delivered(out, "N1")
        report = yield h.counts(engine)
        self.assertEqual(h.destination_counts(report, channel="doomed")["queued"], 2)


    @defer.inlineCallbacks
    def test_a_changed_source_restarts_on_its_new_configuration(self):
        """If a source's options change, then the reload stops it (its connections close
        once their frames are answered) and starts it again on the new configuration."""
        destination, out = self.out()
        self.write_channel(destinations=[destination])
        engine, port = yield self.engine(self.write_engine())
        fixed = self.reserved_port()

        channel = yaml.safe_load(self.channel_path().read_text())
        channel["source"]["port"] = fixed
        self.channel_path().write_text(yaml.safe_dump(channel))
        report = yield engine.reload()

        self.assertEqual(report.changes, [f"channel {h.CHANNEL}: changed: mappings reloaded; "
                                          f"source restarted, listening on port {fixed}"])
        yield self.assertFailure(refused_at(port), ConnectionRefusedError)
        [(_, _, ack)] = yield h.send_over(fixed, [adt("R2")])
        self.assertEqual(parse_ack(ack).code, "AA")
        yield self.delivered(out, "R2")

    @defer.inlineCallbacks
    def test_a_source_that_cannot_listen_is_started_by_the_next_reload(self):
        """If a new channel's port is taken, then the reload is applied but fails, naming the
        channel and the error; once the port is free, the next reload starts that source
        though no file changed."""
        destination, _ = self.out()
        self.write_channel(destinations=[destination])
        engine, _ = yield self.engine(self.write_engine())
        taken = socket.socket()
        self.addCleanup(taken.close)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        self.write_channel("late", destinations=[destination])
        channel = yaml.safe_load(self.channel_path("late").read_text())
        channel["source"]["port"] = port
        self.channel_path("late").write_text(yaml.safe_dump(channel))

        report = yield engine.reload()
        self.assertEqual(report.outcome, rl.FAILED)
        [error] = report.errors
        self.assertTrue(error.startswith("channel late: the source could not start:"), error)
        self.assertIn("channel late: added, source not started (see the errors)",
                      report.changes)

        taken.close()
        report = yield engine.reload()
        self.assertEqual((report.outcome, report.errors), (rl.RELOADED, []))
        self.assertEqual(engine.source_port("late"), port)
        [(_, _, ack)] = yield h.send_over(port, [adt("L1")])
        self.assertEqual(parse_ack(ack).code, "AA")


class QueuedDeliveryTestsMixin(ReloadCase):
    """What a reload does to queued deliveries, where the store does the most work."""

    @defer.inlineCallbacks
    def test_queued_deliveries_survive_a_reload_that_fixes_the_destination(self):
        """If messages are queued for a destination that is down, retrying slowly, and a
        reload points it to a sink that is up, then each message is delivered once, in
        order, at once (the old wait is not kept), and nothing stays queued."""
        down = self.reserved_port()
        self.write_channel(destinations=[self.mllp_to(down, SLOW_RETRY)])
        engine, port = yield self.engine(self.write_engine())
        payloads = [adt(f"Q{i}") for i in range(20)]
        yield h.send_over(port, payloads)
        yield h.wait_until(lambda: engine.stats()["lanes"][f"{h.CHANNEL}/sink/0"]
                           ["failed_attempts"] >= 1, 10, "the first delivery failed")

        sink, sink_port = self.sink()
        self.write_channel(destinations=[self.mllp_to(sink_port, SLOW_RETRY)])
        report = yield engine.reload()

        self.assertEqual(report.changes, [f"channel {h.CHANNEL}: changed: mappings reloaded; "
                                          "source kept; lanes rebuilt: sink"])
        yield h.wait_until(lambda: len(sink.received) >= len(payloads), 10,
                           "the sink has every message")
        yield h.wait_until(self.destination_is(engine, sent=20, queued=0), 10, "all SENT")
        self.assertEqual(sink.received, payloads)

    def destination_is(self, engine, **expected):
        def check():
            return h.counts(engine).addCallback(
                lambda report: all(h.destination_counts(report)[k] == v
                                   for k, v in expected.items()))
        return check

    @defer.inlineCallbacks
    def test_the_send_under_way_finishes_and_is_not_sent_again(self):
        """If a reload rebuilds a destination's lanes while a send waits for its ACK, then
        the reload waits for that answer, and the new lane sends the rest: every message
        reaches the sink exactly once, in order."""
        sink, sink_port = self.sink()
        sink.hold()
        self.write_channel(destinations=[self.mllp_to(sink_port, FAST_RETRY)])
        engine, port = yield self.engine(self.write_engine())
        payloads = [adt(f"F{i}") for i in range(5)]
        yield h.send_over(port, payloads)
        yield h.wait_until(lambda: sink.waiting == 1, 10, "the first send waits for its ACK")

        self.write_channel(destinations=[self.mllp_to(sink_port, SLOW_RETRY)])
        reports = []
        engine.reload().addCallback(reports.append)
        yield task.deferLater(reactor, 0.5, lambda: None)
        self.assertEqual(reports, [])  # the new configuration is read, the old lane stopping
        sink.release()
        yield h.wait_until(lambda: reports, 10, "the reload is done")
        [report] = reports

        self.assertEqual(report.outcome, rl.RELOADED)
        yield h.wait_until(self.destination_is(engine, sent=5, queued=0), 10, "all SENT")
        self.assertEqual(sink.received, payloads)



class SQLiteChannelReloadTests(ChannelReloadTestsMixin, unittest.TestCase):
    backend = "sqlite"


class SQLiteQueuedDeliveryTests(QueuedDeliveryTestsMixin, unittest.TestCase):
    backend = "sqlite"


class PostgreSQLQueuedDeliveryTests(QueuedDeliveryTestsMixin, unittest.TestCase):
    backend = "postgresql"


class AdminReloadTests(ReloadCase, unittest.TestCase):
    """POST /reload and ``aiguillage reload`` against a running engine, admin on port 0."""


    @defer.inlineCallbacks
    def setUp(self):
        super().setUp()
        self.write_channel(destinations=[self.out()[0]])
        self.config_path = self.write_engine(admin=True)
        self.engine_, _ = yield self.engine(self.config_path)
        self.admin = f"127.0.0.1:{self.engine_.admin_port.getHost().port}"

    def cli_reload(self, *args: str) -> defer.Deferred:
        """``aiguillage reload`` in a subprocess (from a thread); Deferred[CompletedProcess]."""
        return threads.deferToThread(
            subprocess.run, [sys.executable, "-m", "engine.cli.main", "reload", "--config",
                             self.config_path, *args],
            cwd=h.REPO_ROOT, capture_output=True, text=True, timeout=60, check=False)

    @defer.inlineCallbacks
    def test_post_reload_answers_the_report_and_get_is_refused(self):
        """If /reload is POSTed, then the answer is the report as JSON; a GET gets 405 and
        reloads nothing."""
        url = f"http://{self.admin}/reload".encode()
        response = yield Agent(reactor).request(b"GET", url)
        yield readBody(response)
        self.assertEqual(response.code, 405)
        response = yield Agent(reactor).request(b"POST", url, self.authorized())
        body = json.loads((yield readBody(response)))
        self.assertEqual((response.code, body["outcome"], body["channels"]),
                         (200, "reloaded", {h.CHANNEL: "unchanged"}))

    def authorized(self, **more: str) -> Headers:
        """Headers carrying the token the engine wrote beside engine.yaml at its start."""
        token = (self.directory / "admin.token").read_text().strip()
        values = {"Authorization": f"Bearer {token}", **more}
        return Headers({name: [value] for name, value in values.items()})

    @defer.inlineCallbacks
    def test_reload_needs_the_token_and_no_browser(self):
        """If a POST /reload lacks the token, comes from a browser (Origin, a form's
        content-type) or names another Host, then it is refused and nothing reloads."""
        url = f"http://{self.admin}/reload".encode()
        token = (self.directory / "admin.token").read_text().strip()
        self.assertEqual(os.stat(self.directory / "admin.token").st_mode & 0o777, 0o600)
        self.write_channel("second", destinations=[self.out("out2")[0]])
        cases = [(Headers(), 401),
                 (Headers({"Authorization": ["Bearer wrong-token-wrong-token"]}), 401),
                 (self.authorized(Origin="http://evil.example"), 403),
                 (self.authorized(**{"Content-Type": "application/x-www-form-urlencoded"}),
                  403),
                 (self.authorized(Host="evil.example"), 421)]
        for headers, code in cases:
            response = yield Agent(reactor).request(b"POST", url, headers)
            yield readBody(response)
            self.assertEqual(response.code, code, headers)
        self.assertNotIn("second", self.engine_.sources)  # nothing was reloaded
        response = yield Agent(reactor).request(
            b"POST", url, Headers({"Authorization": [f"Bearer {token}"]}))
        body = json.loads((yield readBody(response)))
        self.assertEqual((response.code, body["channels"]["second"]), (200, "added"))

    @defer.inlineCallbacks
    def test_the_command_prints_the_report_and_exits_by_outcome(self):
        """If the configuration is fine, then ``aiguillage reload`` prints the report and
        exits 0; if it is refused, the errors with file:line and exit 2."""
        done = yield self.cli_reload("--admin", self.admin)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn(f"channel {h.CHANNEL}: unchanged", done.stdout)

        self.channel_path().write_text(self.channel_path().read_text() + "bogus: 1\n")
        done = yield self.cli_reload("--admin", self.admin)
        self.assertEqual(done.returncode, 2, done.stdout)
        self.assertIn("reload refused", done.stderr)
        self.assertIn(f"error: {self.channel_path()}:", done.stderr)
