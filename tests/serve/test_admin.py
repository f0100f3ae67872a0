"""Tests for engine.serve.admin: the admin listener on a real engine over loopback."""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from twisted.internet import defer, reactor
from twisted.trial import unittest
from twisted.web.client import Agent, readBody

from engine.app import Engine, load_config
from engine.synthetic import adt_message
from mllp.client import MLLPClient

ENGINE_YAML = """\
node: admin-test
store:
  url: sqlite:///store.db
admin:
  host: 127.0.0.1
  port: 0
channels:
  - channels/*.yaml
"""
CHANNEL_YAML = """\
name: adt-in
source:
  type: mllp
  port: 0
destinations:
  - name: archive
    type: file
    directory: out
"""


class AdminTests(unittest.TestCase):
    """The admin site served by a running engine."""

    @defer.inlineCallbacks
    def setUp(self):
        folder = Path(tempfile.mkdtemp(prefix="aiguillage-admin-"))
        self.addCleanup(shutil.rmtree, folder, True)
        (folder / "channels").mkdir(parents=True)
        (folder / "engine.yaml").write_text(ENGINE_YAML)
        (folder / "channels" / "adt-in.yaml").write_text(CHANNEL_YAML)
        self.engine = Engine(load_config(str(folder / "engine.yaml")), reactor,
                             poll_interval=0.1)
        yield self.engine.start()
        self.addCleanup(self.engine.stop)
        self.base = f"http://127.0.0.1:{self.engine.admin_port.getHost().port}".encode()

    @defer.inlineCallbacks
    def get(self, path: bytes):
        response = yield Agent(reactor).request(b"GET", self.base + path)
        body = yield readBody(response)
        return response, body

    @defer.inlineCallbacks
    def send_two(self):
        client = MLLPClient.for_address(reactor, "127.0.0.1", self.engine.source_port("adt-in"))
        yield client.send(adt_message(1))
        yield client.send(adt_message(2))
        yield client.close()

    @defer.inlineCallbacks
    def test_health(self):
        """If /health is asked for, then it answers 200 with status ok."""
        response, body = yield self.get(b"/health")
        self.assertEqual(response.code, 200)
        self.assertEqual(json.loads(body), {"status": "ok"})

    @defer.inlineCallbacks
    def test_status_counts_received_messages(self):
        """If two messages were received, then /status reports them for the channel and the
        node's counters show two intakes."""
        yield self.send_two()
        response, body = yield self.get(b"/status")
        status = json.loads(body)
        self.assertEqual(response.code, 200)
        self.assertEqual(status["channels"]["adt-in"]["received"], 2)
        self.assertEqual(status["node"]["received"], 2)

    @defer.inlineCallbacks
    def test_metrics_in_prometheus_format(self):
        """If /metrics is scraped, then it has the message counter with the channel label in
        the Prometheus text format."""
        yield self.send_two()
        response, body = yield self.get(b"/metrics")
        self.assertIn(b"text/plain", response.headers.getRawHeaders(b"content-type")[0])
        text = body.decode()
        self.assertIn('aiguillage_messages_total{channel="adt-in",outcome="received"} 2.0', text)
        self.assertIn("aiguillage_writer_batches_total", text)
        self.assertIn('aiguillage_unreadable_summarised_total{channel="adt-in"} 0.0', text)
