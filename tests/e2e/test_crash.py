"""
Crash safety, proven from the outside: the engine runs as a process of its own and is killed.

The promise under test is "persist before acknowledge" plus at-least-once delivery:

- every message the engine acknowledged (AA/CA) is in the store, even if the engine was
  killed with SIGKILL right after answering;
- every acknowledged message reaches the downstream system at least once, after a restart
  with the same configuration. Duplicates downstream are allowed: a delivery the engine sent
  but had not yet recorded as SENT when it died is sent again (at-least-once, not
  exactly-once), so the downstream system must deduplicate on MSH-10, as HL7 expects;
- order holds: the channel has one destination ordered by ``destination`` (one lane), and
  each sender waits for an ACK before sending its next message, so the *first* arrival of
  each message downstream follows that sender's order.

Each sender behaves like a real HL7 interface: it sends a message until it gets an accepting
ACK, reconnecting while the engine is down; a message answered "duplicate" after the restart
was committed before the crash, which the engine's AA then confirms.

Processes: the engine (``python -m engine.cli.main run``) and the downstream MLLP sink (a script
written to the test's temporary folder, on :class:`mllp.protocol.MLLPServerFactory`) are
subprocesses; the test process only sends over plain blocking sockets from threads. The sink
appends each received MSH-10 to a file (flushed and fsync'd) so that its record survives it.
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import create_engine, select

from engine import status as st
from engine.store.schema import deliveries, messages
from engine.synthetic import adt_message, control_id_of
from mllp.ack import parse_ack
from tests.dbs import postgres_database, sqlite_url

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

REPO_ROOT = Path(__file__).resolve().parents[2]
CHANNEL = "crash"
START_TIMEOUT = 20.0  # seconds for a process to say it listens
DRAIN_TIMEOUT = 60.0  # seconds for every acknowledged message to reach the sink

SINK = [sys.executable, "-m", "tests.e2e.durable_sink"]  # argv: PORT RECORD


# -- processes -------------------------------------------------------------------------

def free_port() -> int:
    """A port nobody listens on now (bound to 0, then closed: a small race, accepted)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _environment() -> dict[str, str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


class Process:
    """A subprocess whose output goes to a log file; ``wait_for`` polls that log."""

    def __init__(self, name: str, args: list[str], log: Path):
        self.name = name
        self.log = log
        self._out = open(log, "wb")
        self.popen = subprocess.Popen(args, cwd=REPO_ROOT, env=_environment(),
                                      stdout=self._out, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if self.popen.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.popen.returncode} before "
                                     f"printing {text!r}:\n{self.output()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} did not print {text!r} within {timeout}s:\n"
                                     f"{self.output()}")
            time.sleep(0.05)

    def crash(self) -> None:
        """SIGKILL: no shutdown code runs, nothing is flushed that was not committed."""
        os.kill(self.pid, signal.SIGKILL)
        self.popen.wait(10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not exit; safe to call twice."""
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)
        self._out.close()


@contextlib.contextmanager
def processes() -> Iterator[list[Process]]:
    """A list to append started processes to; every one is stopped at the end, whatever happens."""
    started: list[Process] = []
    try:
        yield started
    finally:
        for process in reversed(started):
            process.stop()


@dataclass
class Deployment:
    """A configuration written to disk, with the ports it names."""

    config: Path
    source_port: int
    sink_port: int
    store_url: str
    tmp_path: Path
    starts: int = 0

    @property
    def record(self) -> Path:
        return self.tmp_path / "sink-received.txt"

    def start_engine(self, started: list[Process]) -> Process:
        self.starts += 1
        engine = Process(f"engine (start {self.starts})",
                         [sys.executable, "-m", "engine.cli.main", "run", "--config",
                          str(self.config)], self.tmp_path / f"engine-{self.starts}.log")
        started.append(engine)
        engine.wait_for(f"channel {CHANNEL}: listening on port {self.source_port}")
        return engine

    def start_sink(self, started: list[Process]) -> Process:
        sink = Process("sink", [*SINK, str(self.sink_port), str(self.record)],
                       self.tmp_path / "sink.log")
        started.append(sink)
        sink.wait_for(f"sink listening on port {self.sink_port}")
        return sink

    def sink_arrivals(self) -> list[str]:
        """Every MSH-10 the sink received, in arrival order, duplicates included."""
        if not self.record.exists():
            return []
        return [line.split()[0] for line in self.record.read_text().splitlines() if line]


def deploy(tmp_path: Path, store_url: str) -> Deployment:
    source_port, sink_port = free_port(), free_port()
    (tmp_path / "channels").mkdir()
    (tmp_path / "channels" / f"{CHANNEL}.yaml").write_text(textwrap.dedent(f"""\
        name: {CHANNEL}
        source:
          type: mllp
          host: 127.0.0.1
          port: {source_port}
        response:
          mode: after-commit
        destinations:
          - name: downstream
            type: mllp
            host: 127.0.0.1
            port: {sink_port}
            connect_timeout: 2s
            ack_timeout: 5s
            retry:
              max_attempts: 100000
              initial_delay: 0.1s
              multiplier: 2
              max_delay: 0.5s
            ordering:
              key: destination
              lanes: 1
        """))
    config = tmp_path / "engine.yaml"
    config.write_text(textwrap.dedent(f"""\
        node: crash-test
        store:
          url: "{store_url}"
        channels:
          - channels/*.yaml
        log_level: warning
        """))
    return Deployment(config, source_port, sink_port, store_url, tmp_path)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
    else:
        with postgres_database() as url:
            yield url


# -- senders ---------------------------------------------------------------------------

def read_frame(sock: socket.socket) -> bytes:
    """One MLLP frame's payload (VT ... FS CR) from a blocking socket."""
    data = b""
    while not data.endswith(b"\x1c\r"):
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed before the ACK was complete")
        data += chunk
    start = data.index(b"\x0b")
    return data[start + 1:-2]


@dataclass
class Sender:
    """A thread sending its own messages in order, each until the engine accepts it."""

    number: int
    port: int
    stop: threading.Event
    sent: list[str] = field(default_factory=list)  # control ids in send order (first tries)
    acked: list[str] = field(default_factory=list)  # control ids answered AA/CA
    problems: list[str] = field(default_factory=list)  # answers that must never come
    connection_failures: int = 0

    def run(self) -> None:
        sock: socket.socket | None = None
        n = 0
        try:
            while not self.stop.is_set():
                payload = adt_message(self.number * 1_000_000 + n)
                control_id = control_id_of(payload)
                self.sent.append(control_id)
                while not self.stop.is_set():
                    try:
                        if sock is None:
                            sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
                            sock.settimeout(10)
                        sock.sendall(b"\x0b" + payload + b"\x1c\r")
                        answer = parse_ack(read_frame(sock))
                    except OSError:  # refused while down, reset by the kill, timed out
                        self.connection_failures += 1
                        if sock is not None:
                            sock.close()
                            sock = None
                        time.sleep(0.05)
                        continue
                    if not answer.accepted or answer.control_id_echoed != control_id:
                        self.problems.append(f"{control_id}: {answer}")
                        self.stop.set()
                        break
                    self.acked.append(control_id)
                    break
                n += 1
        except Exception as error:  # noqa: BLE001 - reported by the test, not lost in a thread
            self.problems.append(f"sender {self.number} crashed: {error!r}")
        finally:
            if sock is not None:
                sock.close()


@contextlib.contextmanager
def sending(port: int, count: int) -> Iterator[list[Sender]]:
    """``count`` sender threads running until the block ends; joined even on failure."""
    stop = threading.Event()
    senders = [Sender(i + 1, port, stop) for i in range(count)]
    threads = [threading.Thread(target=s.run, name=f"sender-{s.number}", daemon=True)
               for s in senders]
    for thread in threads:
        thread.start()
    try:
        yield senders
    finally:
        stop.set()
        for thread in threads:
            thread.join(20)
        assert not any(t.is_alive() for t in threads), "a sender thread did not stop"


def wait_for_delivery(deployment: Deployment, expected: set[str], engine: Process) -> list[str]:
    """The sink's arrivals once every id in ``expected`` is among them (bounded wait)."""
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while True:
        arrivals = deployment.sink_arrivals()
        missing = expected - set(arrivals)
        if not missing:
            return arrivals
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{len(missing)} acknowledged message(s) never reached the sink within "
                f"{DRAIN_TIMEOUT}s, e.g. {sorted(missing)[:5]}; engine log:\n"
                f"{engine.output()[-4000:]}")
        assert engine.popen.poll() is None, f"the engine died:\n{engine.output()[-4000:]}"
        time.sleep(0.1)


# -- checks ----------------------------------------------------------------------------

def stored_messages(store_url: str) -> list[tuple[str, str]]:
    """(control id, status) of every stored message of the channel."""
    engine = create_engine(store_url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(
                select(messages.c.control_id, messages.c.status)
                .where(messages.c.channel == CHANNEL))]
    finally:
        engine.dispose()


def unsent_deliveries(store_url: str) -> list[tuple]:
    engine = create_engine(store_url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(
                select(deliveries.c.id, deliveries.c.status, deliveries.c.last_error)
                .where(deliveries.c.status != st.SENT))]
    finally:
        engine.dispose()


def assert_in_send_order(senders: list[Sender], arrivals: list[str]) -> None:
    """Per sender, the first arrival of each of its messages follows its send order."""
    first_arrival: dict[str, int] = {}
    for position, control_id in enumerate(arrivals):
        first_arrival.setdefault(control_id, position)
    for sender in senders:
        delivered = [c for c in sender.sent if c in first_arrival]
        by_arrival = sorted(delivered, key=first_arrival.__getitem__)
        assert delivered == by_arrival, (
            f"sender {sender.number}: first arrivals out of send order; first difference at "
            f"{next(i for i, (a, b) in enumerate(zip(delivered, by_arrival)) if a != b)}")


def assert_senders_clean(senders: list[Sender]) -> None:
    problems = [p for s in senders for p in s.problems]
    assert not problems, f"refused or unexpected ACKs: {problems[:5]}"


# -- the tests -------------------------------------------------------------------------

@pytest.mark.timeout(120)
def test_sigkill_mid_stream_loses_no_acknowledged_message(tmp_path: Path,
                                                          store_url: str) -> None:
    """Three senders stream; the engine is SIGKILLed mid-stream and restarted.

    At-least-once: every ACKed message is stored and arrives downstream at least once (a
    message may arrive twice around the crash), and first arrivals keep each sender's order.
    """
    deployment = deploy(tmp_path, store_url)
    with processes() as started:
        deployment.start_sink(started)
        engine = deployment.start_engine(started)
        with sending(deployment.source_port, 3) as senders:
            time.sleep(2.5)
            acked_before_kill = sum(len(s.acked) for s in senders)
            engine.crash()
            assert engine.popen.returncode == -signal.SIGKILL
            killed_at = sum(len(s.acked) for s in senders)
            time.sleep(0.3)  # senders get refused connections meanwhile
            engine = deployment.start_engine(started)
            time.sleep(2.0)
        acked = [c for s in senders for c in s.acked]
        assert_senders_clean(senders)
        assert acked_before_kill > 20, "too few messages before the kill to prove anything"
        assert len(acked) > killed_at, "no message was accepted after the restart"
        assert sum(s.connection_failures for s in senders) > 0, "the kill went unnoticed"

        arrivals = wait_for_delivery(deployment, set(acked), engine)
        engine.stop()
        assert engine.popen.returncode == 0, engine.output()[-4000:]

    stored = stored_messages(store_url)
    originals = {control_id for control_id, status in stored if status != st.DUPLICATE}
    missing = set(acked) - originals
    assert not missing, f"acknowledged but not stored: {sorted(missing)[:5]}"
    assert all(status in (st.TRANSFORMED, st.DUPLICATE) for _, status in stored), \
        sorted({status for _, status in stored})
    assert len(originals) == len([s for _, s in stored if s != st.DUPLICATE]), \
        "one message stored twice as an original"
    assert unsent_deliveries(store_url) == []
    assert set(acked) <= set(arrivals)
    assert_in_send_order(senders, arrivals)
    # Duplicates downstream are allowed (at-least-once) but stay around the crash only.
    assert len(arrivals) - len(set(arrivals)) < 50, "far more duplicates than a crash explains"


@pytest.mark.timeout(120)
def test_downstream_down_then_up_receives_everything_in_order(tmp_path: Path,
                                                               store_url: str) -> None:
    """The sink starts only after the senders are done: the engine keeps every message and
    delivers them all, once each and in each sender's order, once the sink listens."""
    deployment = deploy(tmp_path, store_url)
    with processes() as started:
        engine = deployment.start_engine(started)
        with sending(deployment.source_port, 2) as senders:
            time.sleep(2.5)
        acked = [c for s in senders for c in s.acked]
        assert_senders_clean(senders)
        assert len(acked) > 20
        assert deployment.sink_arrivals() == []
        time.sleep(1.0)  # the lane retries against a closed port meanwhile
        deployment.start_sink(started)
        arrivals = wait_for_delivery(deployment, set(acked), engine)
        time.sleep(0.5)  # anything sent twice would show up now
        arrivals = deployment.sink_arrivals()
        engine.stop()
        assert engine.popen.returncode == 0, engine.output()[-4000:]

    assert sorted(arrivals) == sorted(acked), "each message arrives exactly once, no stranger"
    assert_in_send_order(senders, arrivals)
    stored = stored_messages(store_url)
    assert sorted(c for c, _ in stored) == sorted(acked)
    assert unsent_deliveries(store_url) == []
