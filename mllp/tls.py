"""
TLS and mutual-TLS options and endpoints for MLLP.

Regional platforms require MLLP over TLS, often with client certificates that
identify the sending system. Channel configuration only names PEM files; the
options and the listening endpoint come from :mod:`tlsfiles.pem` (shared with
the XDS.b endpoints), read when built (at start-up), never per connection.
What is MLLP's own: the client options for one server name, and the client
endpoint that reaches a host by name.

test-case-name: tests.mllp.test_tls
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.internet import endpoints, ssl

from tlsfiles.pem import private_certificate, server_options, trust_root
from tlsfiles.pem import server_endpoint as _listening

#: Server context options from PEM files (see :func:`tlsfiles.pem.server_options`).
server_tls_options = server_options


def client_tls_options(hostname: str, ca_path: str | Path | None = None,
                       cert_path: str | Path | None = None,
                       key_path: str | Path | None = None) -> Any:
    """Client options checking the server against ``ca_path`` (else the platform's trust).

    ``cert_path`` and ``key_path`` give the client certificate for mutual TLS.
    """
    if (cert_path is None) != (key_path is None):
        raise ValueError("cert_path and key_path go together")
    client = private_certificate(cert_path, key_path) if cert_path is not None else None
    return ssl.optionsForClientTLS(hostname, trustRoot=trust_root(ca_path),
                                   clientCertificate=client)


def server_endpoint(reactor: Any, host: str, port: int, tls: Any = None) -> Any:
    """A listening endpoint on ``host:port``, TLS when ``tls`` options are given."""
    return _listening(reactor, port, host, tls)


def client_endpoint(reactor: Any, host: str, port: int, tls: Any = None,
                    timeout: float = 10) -> Any:
    """An endpoint connecting to ``host:port`` (names, IPv4 or IPv6), wrapped in TLS if asked."""
    plain = endpoints.HostnameEndpoint(reactor, host, port, timeout=timeout)
    return plain if tls is None else endpoints.wrapClientTLS(tls, plain)
