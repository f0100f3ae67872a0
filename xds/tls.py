"""
TLS and mutual-TLS options for the XDS.b endpoints, from PEM files.

IHE ATNA asks XDS.b actors to talk over mutual TLS: each side shows a
certificate its peer's CA signed. The server options verify client
certificates against a CA bundle; the client options verify the server and
may present a certificate. Files are read once, when the options are built.
(mllp/tls.py does the same for MLLP; the two packages may not import each
other, so each keeps its own few lines.)

test-case-name: tests.xds.test_http_tls
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.internet import endpoints, ssl
from twisted.web.client import BrowserLikePolicyForHTTPS
from twisted.web.iweb import IPolicyForHTTPS
from zope.interface import implementer

_END = b"-----END CERTIFICATE-----"


def read_certificates(path: str | Path) -> list[ssl.Certificate]:
    """Every certificate of a PEM file, leaf first; an error if there is none."""
    data = Path(path).read_bytes()
    blocks = [block + _END for block in data.split(_END) if b"-----BEGIN" in block]
    if not blocks:
        raise ValueError(f"no PEM certificate in {path}")
    return [ssl.Certificate.loadPEM(block) for block in blocks]


def _own(cert_path: str | Path, key_path: str | Path) -> ssl.PrivateCertificate:
    leaf = read_certificates(cert_path)[0]
    return ssl.PrivateCertificate.loadPEM(leaf.dumpPEM() + Path(key_path).read_bytes())


def server_options(cert_path: str | Path, key_path: str | Path,
                   ca_path: str | Path | None = None, require_client_cert: bool = False) -> Any:
    """Server TLS options; with *ca_path* client certificates are checked against it."""
    if require_client_cert and ca_path is None:
        raise ValueError("require_client_cert needs ca_path to verify client certificates")
    own = _own(cert_path, key_path)
    chain = [certificate.original for certificate in read_certificates(cert_path)[1:]]
    authorities = ([certificate.original for certificate in read_certificates(ca_path)]
                   if ca_path is not None else None)
    return ssl.CertificateOptions(
        privateKey=own.privateKey.original, certificate=own.original,
        extraCertChain=chain or None, verify=authorities is not None, caCerts=authorities,
        requireCertificate=require_client_cert, raiseMinimumTo=ssl.TLSVersion.TLSv1_2)


@implementer(IPolicyForHTTPS)
class ClientTLSPolicy:
    """An HTTPS policy for Agent: trust *ca_path* (else the platform), show a certificate."""

    def __init__(self, ca_path: str | Path | None = None, cert_path: str | Path | None = None,
                 key_path: str | Path | None = None):
        if (cert_path is None) != (key_path is None):
            raise ValueError("cert_path and key_path go together")
        self._trust = (ssl.trustRootFromCertificates(read_certificates(ca_path))
                       if ca_path is not None else ssl.platformTrust())
        self._client = _own(cert_path, key_path) if cert_path is not None else None

    def creatorForNetloc(self, hostname: bytes, port: int) -> Any:
        """The TLS connection creator for one server name."""
        return ssl.optionsForClientTLS(hostname.decode("ascii"), trustRoot=self._trust,
                                       clientCertificate=self._client)


def default_policy() -> IPolicyForHTTPS:
    """Twisted's own policy: the platform's trust store, no client certificate."""
    return BrowserLikePolicyForHTTPS()


def server_endpoint(reactor: Any, port: int, interface: str = "",
                    tls: Any = None) -> Any:
    """A listening endpoint, TLS when *tls* options are given."""
    if tls is None:
        return endpoints.TCP4ServerEndpoint(reactor, port, interface=interface)
    return endpoints.SSL4ServerEndpoint(reactor, port, tls, interface=interface)
