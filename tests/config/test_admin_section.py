"""Tests for engine.config.admin: the admin listener's section of engine.yaml."""
from __future__ import annotations

import pytest

from engine.config.loader import ConfigError, load_engine_config

BASE = "store:\n  url: sqlite:///s.db\nadmin:\n"


def load(tmp_path, admin: str):
    path = tmp_path / "engine.yaml"
    path.write_text(BASE + admin)
    return str(path), lambda: load_engine_config(str(path), {})


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "::"])
def test_a_non_loopback_bind_without_a_configured_token_is_refused_at_its_line(tmp_path, host):
    path, loading = load(tmp_path, f"  port: 8026\n  host: \"{host}\"\n")
    with pytest.raises(ConfigError) as caught:
        loading()
    text = str(caught.value)
    assert f"{path}:5: admin.host:" in text and "token_file" in text


def test_a_non_loopback_bind_with_a_token_file_loads(tmp_path):
    _, loading = load(tmp_path, "  port: 8026\n  host: 0.0.0.0\n  token_file: secret/t\n")
    admin = loading().admin
    assert admin.token_file == str(tmp_path / "secret" / "t") and admin.token is None


def test_a_short_inline_token_is_refused(tmp_path):
    _, loading = load(tmp_path, "  port: 8026\n  token: abc\n")
    with pytest.raises(ConfigError, match="at least 16 characters"):
        loading()


def test_loopback_needs_no_configured_token(tmp_path):
    _, loading = load(tmp_path, "  port: 8026\n  host: ::1\n")
    assert loading().admin.token_file == str(tmp_path / "admin.token")
