"""
The open-file limit against a peer holding many idle connections: ``aiguillage run`` in a
subprocess started under a low soft limit, 1 100 idle connections to one channel, and a
sender on another channel that must still be served.

Before the fix the engine kept the soft limit it was given and admitted every connection,
so once its descriptors ran out, ``accept`` failed on every port and the other channel's
sender was reset.
"""
from __future__ import annotations

import re
import socket
import sys
from pathlib import Path

import pytest

from engine.synthetic import adt_message
from mllp.ack import parse_ack
from mllp.framing import FrameDecoder, encode_frame
from tests.e2e.test_crash import Process, processes

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

IDLE_CONNECTIONS = 1100


def write_config(tmp_path: Path) -> Path:
    (tmp_path / "channels").mkdir()
    for name in ("crowded", "quiet"):
        (tmp_path / "channels" / f"{name}.yaml").write_text(
            f"name: {name}\nsource:\n  type: mllp\n  host: 127.0.0.1\n  port: 0\n"
            f"destinations:\n  - name: out\n    type: file\n    directory: out-{name}\n")
    config = tmp_path / "engine.yaml"
    config.write_text(f"node: limits\nstore:\n  url: sqlite:///{tmp_path}/store.db\n"
                      "channels:\n  - channels/*.yaml\nlog_level: info\n")
    return config


# ``aiguillage run``, started under a soft limit of 512 and a hard one of 1024.
LOW_LIMIT_RUN = ("import resource, runpy, sys\n"
                 "resource.setrlimit(resource.RLIMIT_NOFILE, (512, 1024))\n"
                 "sys.argv = ['aiguillage', *sys.argv[1:]]\n"
                 "runpy.run_module('engine.cli.main', run_name='__main__')\n")


def listening_port(engine: Process, channel: str) -> int:
    engine.wait_for(f"channel {channel}: listening on port")
    return int(re.search(rf"channel {channel}: listening on port (\d+)", engine.output())[1])


def send_one(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(encode_frame(payload))
        decoder = FrameDecoder()
        while True:
            chunk = connection.recv(65536)
            assert chunk, "the engine closed the connection without an ACK"
            frames = decoder.feed(chunk)
            if frames:
                return frames[0]


def open_files_limit(pid: int) -> tuple[int, int]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError("no open-file limit in /proc/<pid>/limits")


def test_idle_connections_cannot_starve_another_channel(tmp_path):
    """If a peer holds 1 100 idle connections to one channel, then the engine (its soft
    limit raised to the hard one at start) refuses those over the cap at once, logs it at
    WARNING, and a sender on another channel is still served."""
    config = write_config(tmp_path)
    idle: list[socket.socket] = []
    with processes() as started:
        engine = Process("engine", [sys.executable, "-c", LOW_LIMIT_RUN, "run",
                                    "--config", str(config)], tmp_path / "engine.log")
        started.append(engine)
        crowded, quiet = listening_port(engine, "crowded"), listening_port(engine, "quiet")
        assert open_files_limit(engine.pid) == (1024, 1024)
        try:
            for _ in range(IDLE_CONNECTIONS):
                try:
                    idle.append(socket.create_connection(("127.0.0.1", crowded), timeout=10))
                except ConnectionError:  # refused over the cap before connect() returned
                    pass
            engine.wait_for("MLLP listener refused connections")
            ack = parse_ack(send_one(quiet, adt_message(1)))
            assert ack.code in ("AA", "CA"), ack
        finally:
            for connection in idle:
                connection.close()
    assert "WARNING" in engine.output()
