"""Tests for engine.config.registries: the registries: section of engine.yaml."""
from __future__ import annotations

import pytest

from engine.config.loader import ConfigError, load_engine_config

BASE = "store:\n  url: sqlite:///s.db\nregistries:\n"


def load(tmp_path, text: str):
    path = tmp_path / "engine.yaml"
    path.write_text(BASE + text)
    return str(path), lambda: load_engine_config(str(path), {})


def test_a_registry_is_read_with_its_endpoints_tls_files_and_defaults(tmp_path):
    _, loading = load(tmp_path, """\
  regional:
    query_url: https://r.example/iti18
    submit_url: https://r.example/iti41
    retrieve_url: https://r.example/iti43
    repository_unique_id: 1.2.250.1.999.7.1
    source_id: 1.2.250.1.999.8
    class_code: "10^^1.2.250.1.213.1.1.4.1"
    tls: {ca: tls/ca.pem, cert: tls/me.pem, key: tls/me.key}
""")
    registry = loading().registries["regional"]
    assert (registry.name, registry.query_url, registry.repository_unique_id) == (
        "regional", "https://r.example/iti18", "1.2.250.1.999.7.1")
    assert registry.tls_cert == str(tmp_path / "tls" / "me.pem")
    assert (registry.timeout, registry.max_response_bytes) == (60, 256 * 1024 * 1024)


def test_no_section_means_no_registry(tmp_path):
    path = tmp_path / "engine.yaml"
    path.write_text("store:\n  url: sqlite:///s.db\n")
    assert load_engine_config(str(path), {}).registries == {}


@pytest.mark.parametrize("text,line,message", [
    ("  r:\n    query_url: ftp://x\n", 5,
     "registries.r.query_url: expected an http:// or https:// URL"),
    ("  r:\n    query_url: http://x\n    source_id: abc\n", 6, "expected an OID"),
    ("  r:\n    query_url: http://x\n    class_code: '10'\n", 6, 'expected "code^^scheme"'),
    ("  r:\n    repository_unique_id: 1.2.3\n", 4, "at least one of query_url"),
    ("  r:\n    query_url: http://x\n    tls: {cert: a.pem}\n", 4, "cert and key go together"),
    ("  r:\n    query_url: http://x\n    qurey_url: http://y\n", 6, 'did you mean "query_url"'),
    ("  - r\n", 3, "expected a mapping of registry names"),
])
def test_mistakes_are_refused_at_their_line(tmp_path, text, line, message):
    path, loading = load(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        loading()
    assert message in str(caught.value) and f"{path}:{line}" in str(caught.value)
