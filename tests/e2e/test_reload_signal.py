"""
SIGHUP reloads a running ``aiguillage run``: the engine as a process of its own, a channel
file added while it runs, the signal sent, the new channel's port then accepting.
"""
from __future__ import annotations

import os
import signal
import socket
import sys
import textwrap
from pathlib import Path

import pytest

from tests.e2e.test_crash import Process, free_port, processes

pytestmark = [pytest.mark.e2e]

CHANNEL = """\
    name: {name}
    source:
      type: mllp
      host: 127.0.0.1
      port: {port}
    destinations:
      - name: out
        type: file
        directory: out
    """


def write_channel(tmp_path: Path, name: str, port: int) -> None:
    (tmp_path / "channels" / f"{name}.yaml").write_text(
        textwrap.dedent(CHANNEL).format(name=name, port=port))


def test_sighup_reloads_the_channels(tmp_path: Path) -> None:
    """If a channel file is added and the engine gets SIGHUP, then the report is logged and
    the new channel listens, while the first one still does."""
    (tmp_path / "channels").mkdir()
    (tmp_path / "engine.yaml").write_text(textwrap.dedent(f"""\
        store:
          url: sqlite:///{tmp_path}/store.db
        channels:
          - channels/*.yaml
        log_level: info
        """))
    first, second = free_port(), free_port()
    write_channel(tmp_path, "first", first)
    with processes() as started:
        engine = Process("engine", [sys.executable, "-m", "engine.cli.main", "run", "--config",
                                    str(tmp_path / "engine.yaml")], tmp_path / "engine.log")
        started.append(engine)
        engine.wait_for(f"channel first: listening on port {first}")
        write_channel(tmp_path, "second", second)

        os.kill(engine.pid, signal.SIGHUP)

        engine.wait_for(f"channel second: added, source listening on port {second}")
        assert "reload reloaded" in engine.output()
        for port in (first, second):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        assert engine.popen.poll() is None



def test_a_second_sigterm_while_stopping_is_quiet(tmp_path: Path) -> None:
    """If an impatient operator sends SIGTERM again while the engine waits for a send under
    way, then the engine says it is already stopping, with no traceback, and still stops
    cleanly (exit 0) once that send has timed out."""
    silent = socket.socket()  # a peer that takes the connection and never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    (tmp_path / "channels").mkdir()
    (tmp_path / "engine.yaml").write_text(textwrap.dedent(f"""\
        store:
          url: sqlite:///{tmp_path}/store.db
        channels:
          - channels/*.yaml
        """))
    port = free_port()
    (tmp_path / "channels" / "first.yaml").write_text(textwrap.dedent(f"""\
        name: first
        source:
          type: mllp
          host: 127.0.0.1
          port: {port}
        destinations:
          - name: out
            type: mllp
            host: 127.0.0.1
            port: {silent.getsockname()[1]}
            ack_timeout: 2s
        """))
    with processes() as started, silent:
        engine = Process("engine", [sys.executable, "-m", "engine.cli.main", "run", "--config",
                                    str(tmp_path / "engine.yaml")], tmp_path / "engine.log")
        started.append(engine)
        engine.wait_for(f"channel first: listening on port {port}")
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sender:
            sender.sendall(b"\x0bMSH|^~\\&|A|B|C|D|20260101||ADT^A01|1|P|2.5\rPID|1\r\x1c\r")
            assert b"MSA|AA|1" in sender.recv(4096)
        peer, _ = silent.accept()  # the delivery is under way, its ACK never comes
        with peer:
            os.kill(engine.pid, signal.SIGTERM)
            engine.wait_for("SIGTERM: stopping")
            os.kill(engine.pid, signal.SIGTERM)
            engine.wait_for("SIGTERM: already stopping")
            assert engine.popen.wait(15) == 0
        output = engine.output()
        assert "Traceback" not in output and "ReactorNotRunning" not in output, output
        assert "stopped:" in output
