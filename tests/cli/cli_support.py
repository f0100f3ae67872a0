"""
What the tests of the ``aiguillage`` command share: running it in-process (click's CliRunner)
or as a subprocess, talking MLLP to a port, writing engine.yaml and channel files, and the
messages a populated store is filled with (:class:`Populated`).
"""
from __future__ import annotations

import os
import shutil
import socket
import socketserver
import sqlite3
import subprocess
import sys
import textwrap
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result
from sqlalchemy import create_engine

from engine.cli.main import main
from engine.synthetic import adt_message, oru_message
from mllp.ack import build_ack
from mllp.header import read_header

REPO_ROOT = Path(__file__).resolve().parents[2]


# -- helpers ---------------------------------------------------------------------------

def cli(*args: str) -> Result:
    """Run the command in-process; stdout and stderr are kept apart."""
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def cli_process(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run the command in a process of its own (needed when it runs the reactor)."""
    return subprocess.run([sys.executable, "-m", "engine.cli.main", *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, PYTHONUNBUFFERED="1", COLUMNS="200"))


def stop_engine(engine: subprocess.Popen) -> None:
    """Stop an engine process the test started: SIGTERM, then SIGKILL if it lingers."""
    if engine.poll() is None:
        engine.terminate()
        try:
            engine.wait(15)
        except subprocess.TimeoutExpired:
            engine.kill()
            engine.wait(5)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def frame(payload: bytes) -> bytes:
    return b"\x0b" + payload + b"\x1c\r"


def exchange(port: int, payloads: list[bytes]) -> list[bytes]:
    """Send each payload on one connection, waiting for its ACK; the ACK payloads."""
    answers = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        for payload in payloads:
            sock.sendall(frame(payload))
            data = b""
            while not data.endswith(b"\x1c\r"):
                chunk = sock.recv(65536)
                assert chunk, "connection closed before the ACK"
                data += chunk
            answers.append(data[data.index(b"\x0b") + 1:-2])
    return answers


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


class LoopbackMLLPServer:
    """A downstream MLLP system in a thread: records payloads, answers AA, or AR for MSH-10s
    starting with ``REFUSE``."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                buffer = b""
                while True:
                    try:
                        chunk = self.request.recv(65536)
                    except OSError:
                        return
                    if not chunk:
                        return
                    buffer += chunk
                    while b"\x1c\r" in buffer:
                        raw, buffer = buffer.split(b"\x1c\r", 1)
                        payload = raw[raw.index(b"\x0b") + 1:]
                        outer.received.append(payload)
                        self.request.sendall(frame(outer.answer(payload)))

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @staticmethod
    def answer(payload: bytes) -> bytes:
        header = read_header(payload)
        code = "AR" if header.control_id.startswith("REFUSE") else "AA"
        return build_ack(header, code, text="refused by test" if code == "AR" else "",
                         control_id="SRV1", timestamp="20260101000000")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


# -- configurations --------------------------------------------------------------------

def write_config(root: Path, channels: dict[str, str], *, url: str = "sqlite:///store.db") -> Path:
    (root / "channels").mkdir(parents=True, exist_ok=True)
    for name, text in channels.items():
        (root / "channels" / f"{name}.yaml").write_text(textwrap.dedent(text))
    config = root / "engine.yaml"
    config.write_text(textwrap.dedent(f"""\
        node: cli-test
        store:
          url: "{url}"
        channels:
          - channels/*.yaml
        log_level: warning
        """))
    return config


def file_channel(name: str, port: int = 0) -> str:
    return f"""\
        name: {name}
        source:
          type: mllp
          port: {port}
        destinations:
          - name: archive
            type: file
            directory: ../out/{name}
        """


def simple_config(root: Path, url: str = "sqlite:///store.db") -> Path:
    return write_config(root, {"adt": file_channel("adt"), "lab": file_channel("lab")}, url=url)


# -- a store with known content, filled once by the real engine -------------------------

@dataclass
class Populated:
    """A stopped engine's directory: its config, its SQLite store, and what was sent."""

    root: Path
    ids: dict[str, int] = field(default_factory=dict)  # control id (or "garbage") -> message id
    payloads: dict[str, bytes] = field(default_factory=dict)

    @property
    def config(self) -> Path:
        return self.root / "engine.yaml"

    @property
    def url(self) -> str:
        return f"sqlite:///{self.root / 'store.db'}"

    def copy(self, target: Path) -> "Populated":
        """The same content in ``target``, for tests that change the store.

        The store goes through SQLite's backup, not as files: other tests of the session
        read it in this process, and the last of their connections to close checkpoints
        the WAL and deletes it, which a copy of the folder could meet half-way."""
        copied = target / "copy"
        shutil.copytree(self.root, copied,
                        ignore=shutil.ignore_patterns("store.db", "store.db-*", "store.db.*"))
        source = sqlite3.connect(self.root / "store.db")
        backup = sqlite3.connect(copied / "store.db")
        try:
            source.backup(backup)
        finally:
            backup.close()
            source.close()
        return Populated(copied, dict(self.ids), dict(self.payloads))

    def rows(self, query: Any) -> list[Any]:
        engine = create_engine(self.url)
        try:
            with engine.connect() as conn:
                return list(conn.execute(query))
        finally:
            engine.dispose()


GOOD = [adt_message(1, patient=1), adt_message(2, patient=2), adt_message(3, patient=1)]
REFUSED = adt_message(4, patient=3).replace(b"|ADT000000004|", b"|REFUSE-4|")
LAB = [oru_message(10, results=3), oru_message(11, results=3)]
GARBAGE = b"NOT HL7 :thumbs_up: [bold]AT ALL[/bold]\r"
