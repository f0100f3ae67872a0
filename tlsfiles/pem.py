"""
TLS and mutual-TLS building blocks from PEM files, for every transport.

Regional platforms ask for MLLP over TLS and IHE ATNA for XDS.b over mutual
TLS: each side shows a certificate its peer's CA signed. Configuration only
names files; these functions read them once, when the options are built (at
start-up, never per connection), and make Twisted's options and endpoints.
The transports (:mod:`mllp.tls`, :mod:`xds.tls`) add what is theirs (an MLLP
client endpoint, an HTTPS policy for Agent) on top.

test-case-name: tests.test_tlsfiles
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.internet import endpoints, ssl

_END = b"-----END CERTIFICATE-----"


def read_certificates(path: str | Path) -> list[ssl.Certificate]:
    """Every certificate of a PEM file (a leaf and its chain, or a CA bundle), leaf first;
    ValueError naming the file if there is none."""
    data = Path(path).read_bytes()
    blocks = [block + _END for block in data.split(_END) if b"-----BEGIN" in block]
    if not blocks:
        raise ValueError(f"no PEM certificate in {path}")
    return [ssl.Certificate.loadPEM(block) for block in blocks]


def private_certificate(cert_path: str | Path, key_path: str | Path) -> ssl.PrivateCertificate:
    """The leaf of *cert_path* with the private key of *key_path*: what this side shows."""
    leaf = read_certificates(cert_path)[0]
    return ssl.PrivateCertificate.loadPEM(leaf.dumpPEM() + Path(key_path).read_bytes())


def trust_root(ca_path: str | Path | None) -> Any:
    """What a client trusts: the CAs of *ca_path*, else the platform's store."""
    return (ssl.trustRootFromCertificates(read_certificates(ca_path)) if ca_path is not None
            else ssl.platformTrust())


def server_options(cert_path: str | Path, key_path: str | Path,
                   ca_path: str | Path | None = None, require_client_cert: bool = False) -> Any:
    """Server TLS options (TLS 1.2 at least); with *ca_path*, client certificates signed by
    it are verified, and *require_client_cert* (which needs it) refuses clients that show
    none (mutual TLS). Certificates after the leaf in *cert_path* are sent as the chain."""
    if require_client_cert and ca_path is None:
        raise ValueError("require_client_cert needs ca_path to verify client certificates")
    own = private_certificate(cert_path, key_path)
    chain = [certificate.original for certificate in read_certificates(cert_path)[1:]]
    authorities = ([certificate.original for certificate in read_certificates(ca_path)]
                   if ca_path is not None else None)
    return ssl.CertificateOptions(
        privateKey=own.privateKey.original, certificate=own.original,
        extraCertChain=chain or None, verify=authorities is not None, caCerts=authorities,
        requireCertificate=require_client_cert, raiseMinimumTo=ssl.TLSVersion.TLSv1_2)


def server_endpoint(reactor: Any, port: int, interface: str = "", tls: Any = None) -> Any:
    """A listening endpoint on *interface*:*port*, TLS when *tls* options are given."""
    if tls is None:
        return endpoints.TCP4ServerEndpoint(reactor, port, interface=interface)
    return endpoints.SSL4ServerEndpoint(reactor, port, tls, interface=interface)
