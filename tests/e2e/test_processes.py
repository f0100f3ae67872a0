"""
``aiguillage run --listeners 2 --workers 1``: one node in three processes on one SQLite store.

The main process takes in (and supervises), an intake child shares the MLLP port with it
(SO_REUSEPORT), a delivery child writes the files. Real sockets, real processes: both
listeners accept connections, SIGHUP reloads every process, a SIGKILLed child comes back,
SIGTERM stops them all and every acknowledged message is stored and written.
"""
from __future__ import annotations

import contextlib
import json
import sqlite3
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mllp.shared_port import reuse_port_supported
from tests.e2e.test_crash import REPO_ROOT, Process, _environment, free_port, processes

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not reuse_port_supported(), reason="SO_REUSEPORT: Linux")]

FRAME = b"\x0bMSH|^~\\&|LAB|H|AIG|R|20260101||ADT^A01|%s|P|2.5\rPID|1||%s\r\x1c\r"


def _deploy(tmp_path: Path, node: str = "n1", url: str | None = None) -> tuple[Path, int]:
    port = free_port()
    (tmp_path / "channels").mkdir(parents=True)
    (tmp_path / "engine.yaml").write_text(textwrap.dedent(f"""\
        node: {node}
        store:
          url: {url or f"sqlite:///{tmp_path}/store.db"}
        admin:
          host: 127.0.0.1
          port: {free_port()}
        channels:
          - channels/*.yaml
        """))
    (tmp_path / "channels" / "adt.yaml").write_text(textwrap.dedent(f"""\
        name: adt
        source:
          type: mllp
          host: 127.0.0.1
          port: {port}
        destinations:
          - name: out
            type: file
            directory: out
        """))
    return tmp_path / "engine.yaml", port


def _send_on_connections(port: int, prefix: str, count: int) -> list[str]:
    """Open ``count`` connections at once, one message on each; the control ids ACKed AA."""
    sockets = [socket.create_connection(("127.0.0.1", port), timeout=20) for _ in range(count)]
    acked = []
    try:
        for i, sock in enumerate(sockets):
            sock.sendall(FRAME % (f"{prefix}{i}".encode(), b"P%d" % i))
        for i, sock in enumerate(sockets):
            answer = b""
            while not answer.endswith(b"\x1c\r"):
                chunk = sock.recv(4096)
                assert chunk, f"connection {i} closed before its ACK"
                answer += chunk
            if b"MSA|AA|" + f"{prefix}{i}".encode() in answer:
                acked.append(f"{prefix}{i}")
    finally:
        for sock in sockets:
            sock.close()
    return acked


def _status(config: Path) -> dict:
    done = subprocess.run([sys.executable, "-m", "engine.cli.main", "status", "--json",
                           "--config", str(config)], cwd=REPO_ROOT, env=_environment(),
                          capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout)


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting until {what}")


def _fresh_nodes(config: Path) -> list[dict]:
    return [n for n in _status(config)["nodes"] if not n["stale"]]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_one_node_in_three_processes(tmp_path: Path) -> None:
    """If `run --listeners 2 --workers 1` takes 60 connections, gets SIGHUP, loses its
    delivery child to SIGKILL, then SIGTERM, then both listeners took messages, every process
    reloaded, the child came back, all stopped with exit 0, and every message ACKed is
    stored and written to a file."""
    config, port = _deploy(tmp_path)
    with processes() as started:
        main = Process("engine", [sys.executable, "-m", "engine.cli.main", "run", "--config",
                                  str(config), "--listeners", "2", "--workers", "1"],
                       tmp_path / "engine.log")
        started.append(main)
        main.wait_for("supervising 2 child process(es)")
        nodes = _wait(lambda: len(_fresh_nodes(config)) == 3 and _fresh_nodes(config), 60,
                      "three processes heartbeat")
        assert sorted(n["role"] for n in nodes) == ["delivery", "intake", "intake"]
        assert {n["pid"] for n in nodes} >= {main.pid}

        acked = _send_on_connections(port, "A", 60)
        takers = _wait(lambda: [n for n in _fresh_nodes(config) if n["received"]], 30,
                       "a heartbeat counts what each listener received")
        _wait(lambda: len([n for n in _fresh_nodes(config) if n["received"]]) == 2, 30,
              "both listeners received messages")
        assert len(takers) >= 1

        os.kill(main.pid, signal.SIGHUP)
        _wait(lambda: main.output().count("reload reloaded") == 3, 60,
              "the main process and both children reloaded")
        assert "admin changed" not in main.output()  # the children keep the configuration as is

        delivery = next(n for n in _fresh_nodes(config) if n["role"] == "delivery")
        os.kill(delivery["pid"], signal.SIGKILL)
        main.wait_for("child delivery-1 (pid %d) ended unexpectedly (signal 9)" % delivery["pid"])
        main.wait_for("child delivery-1 started", timeout=30)
        _wait(lambda: any(n["role"] == "delivery" and n["pid"] != delivery["pid"]
                          for n in _fresh_nodes(config)), 60, "the new delivery child beats")

        acked += _send_on_connections(port, "B", 20)
        out = tmp_path / "channels" / "out"  # paths are relative to the channel file
        _wait(lambda: out.is_dir() and any(out.iterdir()), 60, "the delivery child writes")
        children = [n["pid"] for n in _fresh_nodes(config) if n["pid"] != main.pid]

        os.kill(main.pid, signal.SIGTERM)
        assert main.popen.wait(60) == 0, main.output()
    assert len(acked) == 80
    _wait(lambda: not any(_alive(pid) for pid in children), 30, "every child has exited")
    written = b"".join(f.read_bytes() for f in out.iterdir())
    outcome = _deliveries(tmp_path / "store.db")
    assert sorted(outcome) == sorted(acked)  # every ACKed message stored, once, with its delivery
    for cid in acked:  # and written, or queued to be written at the next start
        assert outcome[cid] == "QUEUED" or f"|ADT^A01|{cid}|".encode() in written, cid
    # The processes that stopped cleanly left the table; the SIGKILLed child's row stays (it
    # turns stale STALE_AFTER seconds after its last heartbeat).
    assert [n["pid"] for n in _status(config)["nodes"]] == [delivery["pid"]]
    assert "Traceback" not in main.output(), main.output()


def _deliveries(path: Path) -> dict[str, str]:
    """Each stored message's control id and its delivery's status (read after the stop)."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        return dict(db.execute("SELECT m.control_id, d.status FROM messages m "
                               "JOIN deliveries d ON d.message_id = m.id"))


def test_two_nodes_on_postgresql_show_every_process(tmp_path: Path) -> None:
    """If two nodes, each with a delivery worker, share one PostgreSQL database and one
    node's worker is SIGKILLed, then status lists all four processes by node, then the dead
    one stale beside its replacement; if a node's main process is SIGKILLed, then its worker
    stops by itself."""
    from tests.dbs import postgres_database

    with postgres_database() as url, processes() as started:
        configs = [_deploy(tmp_path / name, name, url)[0] for name in ("n1", "n2")]
        for name, config in zip(("n1", "n2"), configs):
            node = Process(name, [sys.executable, "-m", "engine.cli.main", "run", "--config",
                                  str(config), "--workers", "1"], tmp_path / f"{name}.log")
            started.append(node)
            node.wait_for("supervising 1 child process(es)")
        nodes = _wait(lambda: len(_fresh_nodes(configs[0])) == 4 and _fresh_nodes(configs[0]),
                      60, "four processes beat")
        assert sorted((n["name"], n["role"]) for n in nodes) == [
            ("n1", "delivery"), ("n1", "intake"), ("n2", "delivery"), ("n2", "intake")]

        dead = next(n for n in nodes if (n["name"], n["role"]) == ("n2", "delivery"))
        os.kill(dead["pid"], signal.SIGKILL)
        started[1].wait_for("child delivery-1 started", timeout=30)
        _wait(lambda: len(_fresh_nodes(configs[1])) == 4 and dead["pid"] not in
              {n["pid"] for n in _fresh_nodes(configs[1])}, 60, "a new worker beats on n2")
        _wait(lambda: any(n["pid"] == dead["pid"] and n["stale"]
                          for n in _status(configs[1])["nodes"]), 60, "the dead one is stale")

        # A supervisor killed outright: its child sees its pipe close and stops by itself.
        orphan = next(n["pid"] for n in _fresh_nodes(configs[0])
                      if (n["name"], n["role"]) == ("n1", "delivery"))
        started[0].crash()
        _wait(lambda: not _alive(orphan), 60, "n1's worker stopped without its supervisor")
        assert "the supervisor is gone (stdin closed): stopping" in started[0].output()


def test_with_a_delivery_worker_the_application_ack_comes_on_the_same_connection(
        tmp_path: Path) -> None:
    """If `run --workers 1` gets an enhanced-mode message (MSH-15/16 AL), then the sender
    reads CA then AA on its own connection: the application-ack lane runs with the intake,
    which holds the connection, not in the delivery worker."""
    config, port = _deploy(tmp_path)
    with processes() as started:
        main = Process("engine", [sys.executable, "-m", "engine.cli.main", "run", "--config",
                                  str(config), "--workers", "1"], tmp_path / "engine.log")
        started.append(main)
        main.wait_for("supervising 1 child process(es)")
        frame = FRAME.replace(b"|P|2.5\r", b"|P|2.5|||AL|AL\r") % (b"W1", b"P1")
        with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
            sock.sendall(frame)
            answer = b""
            while answer.count(b"\x1c\r") < 2:
                chunk = sock.recv(4096)
                assert chunk, f"connection closed after {answer!r}"
                answer += chunk
        assert b"MSA|CA|W1" in answer.split(b"\x1c\r")[0]
        assert b"MSA|AA|W1" in answer.split(b"\x1c\r")[1]
