"""TLS from PEM files (tlsfiles/pem.py), below both transports: what a wrong file or a
wrong combination says. Handshakes are tested through each transport (tests/mllp/test_tls.py,
tests/xds/test_http_tls.py)."""
from __future__ import annotations

import pytest

from tlsfiles.pem import read_certificates, server_options


def test_a_file_without_a_certificate_is_named(tmp_path):
    """If a PEM file held no certificate, then the error says which file."""
    path = tmp_path / "empty.pem"
    path.write_bytes(b"not a certificate\n")
    with pytest.raises(ValueError, match=f"no PEM certificate in {path}"):
        read_certificates(path)


def test_requiring_client_certificates_needs_a_ca(tmp_path):
    """If client certificates were required without a CA to verify them, then every client
    would be refused: the options say so before any file is read."""
    with pytest.raises(ValueError, match="require_client_cert needs ca_path"):
        server_options(tmp_path / "server.pem", tmp_path / "server.key",
                       require_client_cert=True)


def test_both_transports_use_these_functions():
    """If a transport kept its own copy, then a fix here would miss it."""
    import mllp.tls
    import xds.tls

    assert mllp.tls.server_tls_options is server_options is xds.tls.server_options
    assert xds.tls.read_certificates is read_certificates
