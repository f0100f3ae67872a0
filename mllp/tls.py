"""
TLS and mutual-TLS options and endpoints for MLLP.

Regional platforms require MLLP over TLS, often with client certificates that
identify the sending system. These helpers turn PEM files into Twisted TLS
options so that channel configuration only names paths, and build the
endpoints the server and client use. Files are read when the options are
built (at start-up), never per connection.

test-case-name: tests.mllp.test_tls
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.internet import endpoints, ssl

_PEM_END = b"-----END CERTIFICATE-----"


def _certificates(path: str | Path) -> list[ssl.Certificate]:
    """Every certificate in a PEM file (a leaf and its chain, or a CA bundle)."""
    data = Path(path).read_bytes()
    blocks = [block + _PEM_END for block in data.split(_PEM_END) if b"-----BEGIN" in block]
    if not blocks:
        raise ValueError(f"no PEM certificate in {path}")
    return [ssl.Certificate.loadPEM(block) for block in blocks]


def _private_certificate(cert_path: str | Path, key_path: str | Path) -> ssl.PrivateCertificate:
    leaf = _certificates(cert_path)[0]
    return ssl.PrivateCertificate.loadPEM(leaf.dumpPEM() + Path(key_path).read_bytes())


def server_tls_options(cert_path: str | Path, key_path: str | Path,
                       ca_path: str | Path | None = None,
                       require_client_cert: bool = False) -> Any:
    """Server context options; with ``ca_path``, client certificates signed by it are verified.

    ``require_client_cert`` refuses clients that present none (mutual TLS); it
    needs ``ca_path``. Extra certificates after the leaf in ``cert_path`` are
    sent as the chain.
    """
    if require_client_cert and ca_path is None:
        raise ValueError("require_client_cert needs ca_path to verify client certificates")
    own = _private_certificate(cert_path, key_path)
    chain = [certificate.original for certificate in _certificates(cert_path)[1:]]
    authorities = [certificate.original for certificate in _certificates(ca_path)] \
        if ca_path is not None else None
    return ssl.CertificateOptions(
        privateKey=own.privateKey.original, certificate=own.original,
        extraCertChain=chain or None, verify=authorities is not None,
        caCerts=authorities, requireCertificate=require_client_cert,
        raiseMinimumTo=ssl.TLSVersion.TLSv1_2,
    )


def client_tls_options(hostname: str, ca_path: str | Path | None = None,
                       cert_path: str | Path | None = None,
                       key_path: str | Path | None = None) -> Any:
    """Client options checking the server against ``ca_path`` (else the platform's trust).

    ``cert_path`` and ``key_path`` give the client certificate for mutual TLS.
    """
    if (cert_path is None) != (key_path is None):
        raise ValueError("cert_path and key_path go together")
    trust = ssl.trustRootFromCertificates(_certificates(ca_path)) if ca_path is not None \
        else ssl.platformTrust()
    client = _private_certificate(cert_path, key_path) if cert_path is not None else None
    return ssl.optionsForClientTLS(hostname, trustRoot=trust, clientCertificate=client)


def server_endpoint(reactor: Any, host: str, port: int, tls: Any = None) -> Any:
    """A listening endpoint on ``host:port``, TLS when ``tls`` options are given."""
    if tls is None:
        return endpoints.TCP4ServerEndpoint(reactor, port, interface=host)
    return endpoints.SSL4ServerEndpoint(reactor, port, tls, interface=host)


def client_endpoint(reactor: Any, host: str, port: int, tls: Any = None,
                    timeout: float = 10) -> Any:
    """An endpoint connecting to ``host:port`` (names, IPv4 or IPv6), wrapped in TLS if asked."""
    plain = endpoints.HostnameEndpoint(reactor, host, port, timeout=timeout)
    return plain if tls is None else endpoints.wrapClientTLS(tls, plain)
