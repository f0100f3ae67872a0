"""
TLS and mutual-TLS options for the XDS.b endpoints, from PEM files.

IHE ATNA asks XDS.b actors to talk over mutual TLS: each side shows a
certificate its peer's CA signed. The server options and the listening
endpoint come from :mod:`tlsfiles.pem` (shared with MLLP); what is XDS.b's own
is the client side, an HTTPS policy for twisted.web's Agent that verifies the
server and may present a certificate. Files are read once, when built.

test-case-name: tests.xds.test_http_tls
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.internet import ssl
from twisted.web.client import BrowserLikePolicyForHTTPS
from twisted.web.iweb import IPolicyForHTTPS
from zope.interface import implementer

from tlsfiles.pem import (  # noqa: F401  (server_options, server_endpoint: this package's)
    private_certificate, read_certificates, server_endpoint, server_options, trust_root,
)

__all__ = ["ClientTLSPolicy", "default_policy", "read_certificates", "server_endpoint",
           "server_options"]


@implementer(IPolicyForHTTPS)
class ClientTLSPolicy:
    """An HTTPS policy for Agent: trust *ca_path* (else the platform), show a certificate."""

    def __init__(self, ca_path: str | Path | None = None, cert_path: str | Path | None = None,
                 key_path: str | Path | None = None):
        if (cert_path is None) != (key_path is None):
            raise ValueError("cert_path and key_path go together")
        self._trust = trust_root(ca_path)
        self._client = private_certificate(cert_path, key_path) if cert_path is not None else None

    def creatorForNetloc(self, hostname: bytes, port: int) -> Any:
        """The TLS connection creator for one server name."""
        return ssl.optionsForClientTLS(hostname.decode("ascii"), trustRoot=self._trust,
                                       clientCertificate=self._client)


def default_policy() -> IPolicyForHTTPS:
    """Twisted's own policy: the platform's trust store, no client certificate."""
    return BrowserLikePolicyForHTTPS()
