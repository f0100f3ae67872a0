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
        engine = Process("engine", [sys.executable, "-m", "engine.cli", "run", "--config",
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
