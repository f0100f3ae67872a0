"""``aiguillage xds`` over HTTPS with mutual TLS: a registry configured with its CA and the
client certificate and key (engine.yaml ``registries: NAME: tls:``) is served; without the
certificate, or with a CA that did not sign the server's, the command says the registry could
not be reached (exit 3). Certificates are made per run; the server is the built-in registry on
SQLite behind the usual XDS.b site."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from twisted.internet import defer, reactor, threads
from twisted.trial import unittest

from engine.cli.common import EXIT_CONFIG, EXIT_UNREACHABLE
from engine.cli.xds_calls import XDSCommandError, query
from engine.config.registries import RegistryConfig
from engine.store import migrate
from engine.store.store import make_engine
from tests.mllp.test_tls import make_pki
from tests.xds.http_fixtures import listen, xds_site
from tests.xds.store_handler import StoreXDSHandler
from xds.tls import server_options

PATIENT = "279035121518989^^^&1.2.250.1.213.1.4.10&ISO^NH"


class XDSCommandTLSTests(unittest.TestCase):
    timeout = 60

    @defer.inlineCallbacks
    def setUp(self):
        directory = Path(tempfile.mkdtemp(prefix="aiguillage-xds-cli-"))
        self.addCleanup(shutil.rmtree, directory, ignore_errors=True)
        self.pki = make_pki(directory)
        engine = make_engine(f"sqlite:///{directory / 'registry.db'}")
        self.addCleanup(engine.dispose)
        yield threads.deferToThread(migrate.ensure_current, engine)
        tls = server_options(self.pki["server_cert"], self.pki["server_key"],
                             ca_path=self.pki["ca"], require_client_cert=True)
        base = yield listen(self, xds_site(StoreXDSHandler(engine)), tls)
        self.url = base.replace("127.0.0.1", "localhost") + "/registry"
        (directory / "other").mkdir()
        self.other = make_pki(directory / "other")

    def registry(self, **tls) -> RegistryConfig:
        return RegistryConfig("secure", query_url=self.url, timeout=10, **tls)

    @defer.inlineCallbacks
    def test_the_configured_client_certificate_is_presented(self):
        response, documents = yield defer.ensureDeferred(query(reactor, self.registry(
            tls_ca=str(self.pki["ca"]), tls_cert=str(self.pki["client_cert"]),
            tls_key=str(self.pki["client_key"])), PATIENT, []))
        self.assertTrue(response.succeeded)
        self.assertEqual(documents, [])

    @defer.inlineCallbacks
    def test_without_a_certificate_or_trusting_another_ca_it_is_unreachable(self):
        for tls in ({"tls_ca": str(self.pki["ca"])}, {
                "tls_ca": str(self.other["ca"]), "tls_cert": str(self.pki["client_cert"]),
                "tls_key": str(self.pki["client_key"])}):
            with self.assertRaises(XDSCommandError) as caught:
                yield defer.ensureDeferred(query(reactor, self.registry(**tls), PATIENT, []))
            self.assertEqual(caught.exception.exit_code, EXIT_UNREACHABLE)
            self.assertIn("registry secure: ITI-18 FindDocuments failed", caught.exception.text)

    @defer.inlineCallbacks
    def test_tls_files_that_cannot_be_read_are_a_configuration_error(self):
        with self.assertRaises(XDSCommandError) as caught:
            yield defer.ensureDeferred(query(reactor, self.registry(
                tls_ca=str(self.pki["ca"]) + ".missing"), PATIENT, []))
        self.assertEqual(caught.exception.exit_code, EXIT_CONFIG)
        self.assertIn("TLS files cannot be used", caught.exception.text)
