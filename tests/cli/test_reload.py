"""
Tests for engine.cli.reload and ``aiguillage reload`` when it cannot reach an engine: where it
looks for the admin listener, and the exit codes it gives. (Against a running engine:
tests/e2e/test_reload.py.)
"""
from __future__ import annotations

import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli.main import main
from engine.cli.reload import AdminUnknown, admin_address, admin_token, parse_address

STORE = "store:\n  url: sqlite:///var/a.db\n"


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "engine.yaml"
    path.write_text(STORE + text)
    return str(path)


def reload(*args: str):
    return CliRunner().invoke(main, ["reload", *args], prog_name="aiguillage")


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_admin_address_from_engine_yaml(tmp_path: Path) -> None:
    """If admin: names a port, then that is where the engine is asked; an any-address
    listener is reached on the loopback."""
    assert admin_address(write(tmp_path, "admin:\n  port: 8026\n")) == ("127.0.0.1", 8026)
    assert admin_address(write(tmp_path, "admin:\n  host: 0.0.0.0\n  port: 9\n")) == (
        "127.0.0.1", 9)
    assert admin_address(write(tmp_path, "admin:\n  host: 10.1.2.3\n  port: 9\n")) == (
        "10.1.2.3", 9)


@pytest.mark.parametrize("text", ["", "admin:\n  port: 0\n"])
def test_admin_address_unknown(tmp_path: Path, text: str) -> None:
    with pytest.raises(AdminUnknown):
        admin_address(write(tmp_path, text))


def test_parse_address() -> None:
    assert parse_address("10.0.0.1:8026") == ("10.0.0.1", 8026)
    assert parse_address("8026") == ("127.0.0.1", 8026)
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_address("localhost")


def test_no_engine_answers(tmp_path: Path) -> None:
    """If nothing listens at the admin address, then the command says so, names SIGHUP as
    the other way, and exits 3."""
    port = closed_port()
    result = reload("--config", write(tmp_path, f"admin:\n  port: {port}\n"))
    assert result.exit_code == 3, result.output
    assert f"no engine answered at http://127.0.0.1:{port}/reload" in result.output
    assert "kill -HUP <pid>" in result.output


def test_no_admin_listener(tmp_path: Path) -> None:
    result = reload("--config", write(tmp_path, ""))
    assert result.exit_code == 3, result.output
    assert "has no admin: section" in result.output and "kill -HUP <pid>" in result.output


def test_unreadable_engine_yaml(tmp_path: Path) -> None:
    """If engine.yaml itself is broken, then the errors are printed with file:line, exit 2."""
    path = write(tmp_path, "admin:\n  port: [\n")
    result = reload("--config", path)
    assert result.exit_code == 2, result.output
    assert f"{path}:" in result.output


def test_bad_admin_option() -> None:
    result = reload("--admin", "nowhere")
    assert result.exit_code == 2 and "--admin" in result.output


def test_admin_token_from_the_file_or_the_configuration(tmp_path: Path) -> None:
    """If engine.yaml gives a token, then it is sent; else the token file's, if readable."""
    assert admin_token(write(tmp_path, "admin:\n  port: 9\n")) is None  # no file yet
    (tmp_path / "admin.token").write_text("f" * 40 + "\n")
    assert admin_token(write(tmp_path, "admin:\n  port: 9\n")) == "f" * 40
    inline = write(tmp_path, "admin:\n  port: 9\n  token: " + "i" * 20 + "\n")
    assert admin_token(inline) == "i" * 20
    assert admin_token(str(tmp_path / "missing.yaml")) is None
