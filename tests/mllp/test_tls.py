"""Loopback tests over real sockets: plain MLLP, TLS, and mutual TLS.

These use twisted.trial's TestCase (pytest runs it) so that tests may return
Deferreds that the real reactor drives. Certificates are generated per test
run with ``cryptography`` into a temporary directory.
"""
from __future__ import annotations

import datetime
import ipaddress
import shutil
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.internet import defer, reactor, task
from twisted.trial import unittest

from mllp.ack import parse_ack
from mllp.admission import Admission
from mllp.client import MLLPClient, MLLPClientError
from mllp.protocol import MLLPServerFactory, Peer
from mllp.tls import client_tls_options, server_endpoint, server_tls_options

MESSAGE = b"MSH|^~\\&|SND|SF|RCV|RF|20240101||ADT^A01|{cid}|P|2.5\rPID|1\r"


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Aiguillage tests"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _issue(subject: str, issuer_key, issuer_name, *, ca: bool = False, san=None):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder()
               .subject_name(_name(subject))
               .issuer_name(issuer_name or _name(subject))
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    certificate = builder.sign(issuer_key or key, hashes.SHA256())
    return key, certificate


def _write(directory: Path, stem: str, key, certificate) -> tuple[str, str]:
    cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def make_pki(directory: Path) -> dict[str, str]:
    """A throwaway CA, a server certificate for localhost and a client certificate."""
    ca_key, ca_cert = _issue("Test CA", None, None, ca=True)
    server = _issue("localhost", ca_key, ca_cert.subject,
                    san=[x509.DNSName("localhost"),
                         x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    client = _issue("sender-app", ca_key, ca_cert.subject)
    paths = {"ca": _write(directory, "ca", ca_key, ca_cert)[0]}
    paths["server_cert"], paths["server_key"] = _write(directory, "server", *server)
    paths["client_cert"], paths["client_key"] = _write(directory, "client", *client)
    return paths


class AckingSink:
    """Acknowledges every message with AA, remembering who sent it."""

    def __init__(self):
        self.peers: list[Peer] = []

    def receive(self, payload: bytes, peer: Peer):
        self.peers.append(peer)
        control_id = payload.split(b"|")[9]
        return defer.succeed(b"MSH|^~\\&|RCV|RF|SND|SF|2024||ACK^A01^ACK|1|P|2.5\rMSA|AA|"
                             + control_id + b"\r")

    def frame_error(self, peer, error, prefix):
        return None


class LoopbackTests(unittest.TestCase):
    timeout = 15

    def setUp(self):
        self.pki = make_pki(self.temporary_directory())
        self.sink = AckingSink()
        self.factory = MLLPServerFactory(self.sink, idle_timeout=10, clock=reactor)

    def temporary_directory(self) -> Path:
        """A directory removed after the test (trial's mktemp writes under the cwd)."""
        directory = tempfile.mkdtemp(prefix="aiguillage-mllp-")
        self.addCleanup(shutil.rmtree, directory, ignore_errors=True)
        return Path(directory)

    @defer.inlineCallbacks
    def listen(self, tls=None):
        port = yield server_endpoint(reactor, "127.0.0.1", 0, tls).listen(self.factory)
        self.addCleanup(port.stopListening)
        return port.getHost().port

    @defer.inlineCallbacks
    def closed(self, client):
        """Close the client and wait until the server side has seen it go."""
        yield client.close()
        for _ in range(200):
            if self.factory.connections_open == 0:
                return
            yield task.deferLater(reactor, 0.01, lambda: None)
        self.fail("server connections did not close")

    def client(self, port, tls=None):
        return MLLPClient.for_address(reactor, "127.0.0.1" if tls is None else "localhost",
                                      port, tls, connect_timeout=5, ack_timeout=5)

    @defer.inlineCallbacks
    def test_plain_round_trip(self):
        """If two messages go over a plain loopback connection, then both are acknowledged."""
        port = yield self.listen()
        client = self.client(port)
        first = yield client.send(MESSAGE.replace(b"{cid}", b"c1"))
        second = yield client.send(MESSAGE.replace(b"{cid}", b"c2"))
        self.assertEqual([parse_ack(first).control_id_echoed,
                          parse_ack(second).control_id_echoed], ["c1", "c2"])
        self.assertEqual(self.sink.peers[0].transport, "mllp")
        self.assertIsNone(self.sink.peers[0].client_certificate)
        yield self.closed(client)

    @defer.inlineCallbacks
    def test_mutual_tls_reports_client_subject(self):
        """If a client presents a certificate from the trusted CA, then the message is
        acknowledged and the peer's subject is reported."""
        tls = server_tls_options(self.pki["server_cert"], self.pki["server_key"],
                                 self.pki["ca"], require_client_cert=True)
        port = yield self.listen(tls)
        options = client_tls_options("localhost", self.pki["ca"], self.pki["client_cert"],
                                     self.pki["client_key"])
        client = self.client(port, options)
        ack = yield client.send(MESSAGE.replace(b"{cid}", b"tls1"))
        self.assertEqual(parse_ack(ack).code, "AA")
        peer = self.sink.peers[0]
        self.assertEqual(peer.transport, "mllp+tls")
        self.assertIn("CN=sender-app", peer.client_certificate)
        self.assertTrue(peer.address.startswith("127.0.0.1:"))
        yield self.closed(client)

    @defer.inlineCallbacks
    def test_acks_over_tls_are_never_sent_on_the_raw_socket(self):
        """If messages come over TLS, then their ACKs go through TLS, not straight on the
        socket (mllp.sendnow is for plain TCP only): every one arrives readable."""
        made = []
        build = self.factory.buildProtocol

        def recording(addr):
            protocol = build(addr)
            made.append(protocol)
            return protocol

        self.factory.buildProtocol = recording
        tls = server_tls_options(self.pki["server_cert"], self.pki["server_key"])
        port = yield self.listen(tls)
        client = self.client(port, client_tls_options("localhost", self.pki["ca"]))
        for n in range(20):
            ack = yield client.send(MESSAGE.replace(b"{cid}", f"t{n}".encode()))
            self.assertEqual(parse_ack(ack).control_id_echoed, f"t{n}")
        self.assertEqual([p._send_now for p in made], [False])
        yield self.closed(client)

    @defer.inlineCallbacks
    def test_mutual_tls_refuses_client_without_certificate(self):
        """If a client presents no certificate to a server requiring one, then its send
        fails and the sink never sees the message."""
        tls = server_tls_options(self.pki["server_cert"], self.pki["server_key"],
                                 self.pki["ca"], require_client_cert=True)
        port = yield self.listen(tls)
        client = self.client(port, client_tls_options("localhost", self.pki["ca"]))
        try:
            yield client.send(MESSAGE.replace(b"{cid}", b"nocert"))
        except MLLPClientError:
            pass
        else:
            self.fail("a client without a certificate was accepted")
        self.assertEqual(self.sink.peers, [])
        yield self.closed(client)

    @defer.inlineCallbacks
    def test_certificate_allow_list_refuses_other_subjects(self):
        """If a client's certificate is valid but not on the listener's allow-list, then the
        connection is closed before the message is read, and the refusal counted; a client
        whose subject is listed is served."""
        tls = server_tls_options(self.pki["server_cert"], self.pki["server_key"],
                                 self.pki["ca"], require_client_cert=True)
        self.factory.admission = Admission(subjects=["CN=another-app,O=Aiguillage tests"])
        port = yield self.listen(tls)
        options = client_tls_options("localhost", self.pki["ca"], self.pki["client_cert"],
                                     self.pki["client_key"])
        client = self.client(port, options)
        with self.assertRaises(MLLPClientError):
            yield client.send(MESSAGE.replace(b"{cid}", b"refused"))
        self.assertEqual((self.sink.peers, dict(self.factory.admission.refused)),
                         ([], {"certificate_not_allowed": 1}))
        yield self.closed(client)
        self.factory.admission = Admission(subjects=["CN=sender-app,O=Aiguillage tests"])
        client = self.client(port, options)
        ack = yield client.send(MESSAGE.replace(b"{cid}", b"listed"))
        self.assertEqual(parse_ack(ack).code, "AA")
        yield self.closed(client)

    @defer.inlineCallbacks
    def test_client_refuses_untrusted_server(self):
        """If the server's certificate is not from the CA the client trusts, then the send fails."""
        stranger_ca = make_pki(self.temporary_directory())["ca"]
        tls = server_tls_options(self.pki["server_cert"], self.pki["server_key"])
        port = yield self.listen(tls)
        client = self.client(port, client_tls_options("localhost", stranger_ca))
        try:
            yield client.send(MESSAGE.replace(b"{cid}", b"x"))
        except MLLPClientError:
            pass
        else:
            self.fail("an untrusted server was accepted")
        self.assertEqual(self.sink.peers, [])
        yield self.closed(client)


class OptionTests(unittest.TestCase):
    def test_require_client_cert_needs_ca(self):
        """If client certificates are required without a CA, then the options are refused."""
        with self.assertRaises(ValueError):
            server_tls_options("cert.pem", "key.pem", None, require_client_cert=True)

    def test_client_cert_needs_key(self):
        """If a client certificate is given without its key, then the options are refused."""
        with self.assertRaises(ValueError):
            client_tls_options("localhost", None, "cert.pem", None)
