"""XDS.b over HTTPS with mutual TLS on loopback, with certificates made per run."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from twisted.internet import defer
from twisted.trial import unittest

from tests.mllp.test_tls import make_pki
from tests.xds.builders import DOCUMENT_BYTES, submission
from tests.xds.fakes import InMemoryXDSHandler
from tests.xds.http_fixtures import http_sender, listen, xds_site
from xds.client.http import XDSTransportError
from xds.client.transactions import XDSClient
from xds.metadata.vocabulary import RESPONSE_SUCCESS
from xds.tls import ClientTLSPolicy, read_certificates, server_options


class MutualTLSTests(unittest.TestCase):
    timeout = 30

    @defer.inlineCallbacks
    def setUp(self):
        directory = tempfile.mkdtemp(prefix="aiguillage-xds-")
        self.addCleanup(shutil.rmtree, directory, ignore_errors=True)
        self.pki = make_pki(Path(directory))
        self.handler = InMemoryXDSHandler()
        tls = server_options(self.pki["server_cert"], self.pki["server_key"],
                             ca_path=self.pki["ca"], require_client_cert=True)
        base = yield listen(self, xds_site(self.handler), tls)
        self.url = base.replace("127.0.0.1", "localhost") + "/repository"

    def client(self, **certificate) -> XDSClient:
        policy = ClientTLSPolicy(ca_path=self.pki["ca"], **certificate)
        return XDSClient(http_sender(self, tls_policy=policy, timeout=10),
                         repository_url=self.url)

    @defer.inlineCallbacks
    def test_client_with_a_certificate_is_served(self):
        """If the client certificate were not presented or verified, then no Success."""
        client = self.client(cert_path=self.pki["client_cert"], key_path=self.pki["client_key"])
        response = yield client.provide_and_register(submission(), {"Document01": DOCUMENT_BYTES})
        self.assertEqual(response.status, RESPONSE_SUCCESS)
        self.assertEqual(self.handler.calls, ["provide_and_register"])

    @defer.inlineCallbacks
    def test_client_without_a_certificate_is_refused(self):
        """If mutual TLS were not required, then the handler would be called."""
        yield self.assertFailure(
            self.client().provide_and_register(submission(), {"Document01": DOCUMENT_BYTES}),
            XDSTransportError)
        self.assertEqual(self.handler.calls, [])


def test_client_policy_wants_both_certificate_and_key():
    """If a certificate without its key were accepted, then TLS would fail later, unclearly."""
    try:
        ClientTLSPolicy(cert_path="client.pem")
    except ValueError as exc:
        assert "go together" in str(exc)
    else:
        raise AssertionError("no ValueError")


def test_a_file_without_certificates_is_named(tmp_path):
    """If an empty PEM file were accepted, then the error would come at the first handshake."""
    empty = tmp_path / "empty.pem"
    empty.write_text("nothing\n")
    try:
        read_certificates(empty)
    except ValueError as exc:
        assert str(empty) in str(exc)
    else:
        raise AssertionError("no ValueError")
