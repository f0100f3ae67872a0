"""Tests for engine.config.shared_record: the shared_record: section of engine.yaml, each
mistake reported at its file and line, and the TLS files checked before anything listens."""
from __future__ import annotations

import pytest

from engine.app import check_connectors, connector_specs
from engine.config.loader import ConfigError, load_engine_config
from engine.config.shared_record import parse_listen
from engine.config.schema import Invalid
from tests.mllp.test_tls import make_pki

BASE = "store:\n  url: sqlite:///s.db\n"
SECTION = "shared_record:\n  repository_unique_id: 1.2.250.1.999.7.1\n"


def load(tmp_path, text: str):
    path = tmp_path / "engine.yaml"
    path.write_text(BASE + text)
    return str(path), lambda: load_engine_config(str(path), {})


def problems_of(loading) -> str:
    with pytest.raises(ConfigError) as caught:
        loading()
    return str(caught.value)


def test_absent_section_serves_nothing(tmp_path):
    _, loading = load(tmp_path, "")
    assert loading().shared_record is None


def test_defaults(tmp_path):
    """If a default changed, then docs/xds.md and the connectors' helper would be wrong."""
    _, loading = load(tmp_path, SECTION)
    config = loading().shared_record
    assert (config.host, config.port, config.path) == ("127.0.0.1", 8090, "/xds")
    assert (config.max_document_bytes, config.max_request_bytes, config.max_results) == (
        64 * 1024 ** 2, 256 * 1024 ** 2, 10_000)
    assert config.endpoint("registry") == "/xds/registry" and config.tls is None
    assert (config.file, config.line) == (str(tmp_path / "engine.yaml"), 3)


def test_disabled_section_serves_nothing(tmp_path):
    _, loading = load(tmp_path, SECTION + "  enabled: false\n")
    assert loading().shared_record is None


@pytest.mark.parametrize("line,expected", [
    ("  listen: localhost\n", "shared_record.listen: expected host:port"),
    ("  listen: 127.0.0.1:70000\n", "port 0 to 65535"),
    ("  path: xds/\n", 'shared_record.path: expected a URL path like "/xds"'),
    ("  path: /x ds\n", "shared_record.path"),
    ("  max_document_bytes: lots\n", 'expected a size like "64KiB"'),
    ("  max_results: 0\n", "shared_record.max_results"),
    ("  lisen: 127.0.0.1:1\n", 'unknown option "lisen" (did you mean "listen"?)'),
])
def test_mistakes_are_reported_at_their_line(tmp_path, line, expected):
    path, loading = load(tmp_path, SECTION + line)
    text = problems_of(loading)
    assert f"{path}:5: " in text and expected in text, text


def test_repository_unique_id_is_required_and_an_oid(tmp_path):
    _, loading = load(tmp_path, "shared_record:\n  listen: 127.0.0.1:0\n")
    assert 'shared_record.repository_unique_id: missing required option' in \
        problems_of(loading)
    path, loading = load(tmp_path, "shared_record:\n  repository_unique_id: repo-1\n")
    assert f"{path}:4: shared_record.repository_unique_id: expected an OID" in \
        problems_of(loading)


def test_a_document_larger_than_any_request_is_refused(tmp_path):
    path, loading = load(tmp_path, SECTION + "  max_document_bytes: 2MiB\n"
                                             "  max_request_bytes: 1MiB\n")
    assert f"{path}:5: shared_record.max_document_bytes: max_document_bytes (2097152) is " \
           "over max_request_bytes (1048576)" in problems_of(loading)


def test_port_shared_with_the_admin_listener_is_refused(tmp_path):
    path, loading = load(tmp_path, "admin:\n  port: 8026\n" + SECTION
                         + "  listen: 127.0.0.1:8026\n")
    text = problems_of(loading)
    assert f"{path}:7: shared_record.listen: the shared record's XDS.b listener listens on " \
           f"127.0.0.1:8026, as does the admin listener ({path}:4)" in text


def test_port_shared_with_a_channel_is_refused(tmp_path):
    (tmp_path / "adt.yaml").write_text(
        "name: adt\nsource: {type: mllp, port: 8090}\ndestinations:\n"
        "  - {name: out, type: file, directory: out}\n")
    path, _ = load(tmp_path, "channels: [adt.yaml]\n" + SECTION)
    with pytest.raises(ConfigError) as caught:
        load_engine_config(path, connector_specs())
    assert 'channel "adt" listens on 127.0.0.1:8090, as does the shared record\'s XDS.b listener' \
        f' ({path}:5)' in str(caught.value)


def test_tls_files_must_exist_and_client_certificates_need_a_ca(tmp_path):
    path, loading = load(tmp_path, SECTION + "  tls:\n    certificate: nowhere.pem\n"
                                             "    key: nowhere.key\n"
                                             "    require_client_certificate: true\n")
    text = problems_of(loading)
    assert f"{path}:6: shared_record.tls.certificate: certificate file " \
           f"{tmp_path / 'nowhere.pem'} does not exist" in text
    assert f"{path}:7: shared_record.tls.key:" in text
    assert f"{path}:8: shared_record.tls.require_client_certificate: " \
           "require_client_certificate needs ca" in text


def test_tls_files_that_hold_no_certificate_are_reported_by_check_config(tmp_path):
    """If the PEM files were first read when listening, then `check-config` would pass and
    `run` would fail after the sources started."""
    pki = make_pki(tmp_path)
    (tmp_path / "garbage.pem").write_text("not a certificate\n")
    path, loading = load(tmp_path, SECTION + f"  tls:\n    certificate: garbage.pem\n"
                                             f"    key: {pki['server_key']}\n")
    config = loading()
    assert config.shared_record.tls.certificate == str(tmp_path / "garbage.pem")
    [problem] = check_connectors(config, reactor=None)
    assert problem.startswith(f"{path}:3: shared_record: ") and "garbage.pem" in problem


def test_good_tls_passes_check_config(tmp_path):
    pki = make_pki(tmp_path)
    _, loading = load(tmp_path, SECTION + f"  tls:\n    certificate: {pki['server_cert']}\n"
                                          f"    key: {pki['server_key']}\n"
                                          f"    ca: {pki['ca']}\n"
                                          "    require_client_certificate: true\n")
    config = loading()
    assert config.shared_record.tls.require_client_certificate
    assert check_connectors(config, reactor=None) == []


def test_parse_listen():
    assert parse_listen("example.org:0") == ("example.org", 0)
    with pytest.raises(Invalid):
        parse_listen("[::1]:8090")
