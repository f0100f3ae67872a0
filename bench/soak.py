"""
Soak: a real engine process under a steady load for a long time, watched every minute.

Runs ``aiguillage run`` on a fresh store (SQLite by default) with the bench channel (MLLP in,
one MLLP destination ordered by patient) and its admin listener, an MLLP sink in this
process that records what it receives, and a paced sender here too: ``--rate`` messages per
second spread over ``--patients`` patients and ``--connections`` connections (a patient's
messages always on the same connection, one message in flight per connection, as real
senders do). Every minute it prints one JSON line:

- the engine's memory (RSS), open file descriptors and threads (from /proc);
- the store's size, and for SQLite its WAL's;
- the wall time of ``aiguillage status --json`` (a new process, as an operator runs it) and
  of ``GET /metrics``;
- ACK latency p50/p99/max over the minute, and messages sent, ACKed and received by the sink;
- ``backlog``: messages the pacer has made but not sent yet. With one message in flight per
  connection, ``connections`` / ACK latency bounds the rate: a backlog that grows means the
  rate was not held (more connections, or a busy machine), not that the engine lost anything.

At the end the sender stops, the sink is given time to receive what was ACKed, and it prints
how many ACKed messages were lost (never received), duplicated (received twice) or out of
order (a patient's message received after a later one of the same patient). Expected: none,
and every curve flat but the store's size.

    .venv/bin/python bench/soak.py [--minutes 20] [--rate 600] [--patients 2000]
        [--connections 32] [--store sqlite|postgresql]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from twisted.internet import defer, reactor, task, threads  # noqa: E402

from engine.synthetic import adt_message, control_id_of, patient_of  # noqa: E402
from mllp.ack import ACCEPT, ack_code, ack_mode_for, build_ack, parse_ack  # noqa: E402
from mllp.client import MLLPClient  # noqa: E402
from mllp.header import read_header  # noqa: E402
from mllp.protocol import MLLPServerFactory  # noqa: E402
from mllp_throughput import create_store, drop_store, free_port, read_line_starting  # noqa: E402
from mllp_throughput import write_config  # noqa: E402

TICK = 0.02  # seconds between two batches of the pacer


class RecordingSink:
    """Acknowledges AA and records, per patient, the sequence of message numbers received."""

    def __init__(self) -> None:
        self.received: dict[str, int] = defaultdict(int)  # control id -> times received
        self.out_of_order = 0
        self._last: dict[str, int] = {}  # patient -> highest message number received

    def receive(self, payload: bytes, peer: object) -> defer.Deferred:
        header = read_header(payload)
        control_id = control_id_of(payload)
        self.received[control_id] += 1
        patient, number = patient_of(payload), int(control_id[3:])
        if number < self._last.get(patient, -1):
            self.out_of_order += 1
        self._last[patient] = max(number, self._last.get(patient, -1))
        return defer.succeed(build_ack(header, ack_code(ACCEPT, ack_mode_for(header)),
                                       control_id=f"S{control_id}", timestamp="20260101000000"))

    def frame_error(self, peer: object, error: Exception, prefix: bytes) -> None:
        print(f"sink: bad frame from {peer}: {error}", file=sys.stderr)


class PacedSender:
    """Sends ``rate`` messages/s; patient p on connection p % connections."""

    def __init__(self, port: int, rate: float, patients: int, connections: int):
        self.rate, self.patients = rate, patients
        self.clients = [MLLPClient.for_address(reactor, "127.0.0.1", port, ack_timeout=120)
                        for _ in range(connections)]
        self.backlogs: list[list[bytes]] = [[] for _ in range(connections)]
        self.busy = [False] * connections
        self.acked: list[str] = []
        self.refused = 0
        self.latencies: list[float] = []
        self.sent = 0
        self._owed = 0.0
        self._n = 0
        self._loop = task.LoopingCall(self._tick)

    def start(self) -> None:
        self._loop.start(TICK)

    def stop(self) -> None:
        self._loop.stop()

    def backlog(self) -> int:
        return sum(map(len, self.backlogs)) + sum(self.busy)

    def _tick(self) -> None:
        self._owed += self.rate * TICK
        while self._owed >= 1:
            self._owed -= 1
            self._n += 1
            patient = self._n % self.patients
            self.backlogs[patient % len(self.clients)].append(
                adt_message(self._n, trigger="A08", patient=patient))
        for index in range(len(self.clients)):
            self._next(index)

    def _next(self, index: int) -> None:
        if self.busy[index] or not self.backlogs[index]:
            return
        payload = self.backlogs[index].pop(0)
        self.busy[index] = True
        self.sent += 1
        started = time.perf_counter()
        d = self.clients[index].send(payload)

        def acked(ack: bytes) -> None:
            self.latencies.append(time.perf_counter() - started)
            if parse_ack(ack).code in ("AA", "CA"):
                self.acked.append(control_id_of(payload))
            else:
                self.refused += 1

        d.addCallbacks(acked, lambda f: print("send failed:", f.getErrorMessage(),
                                              file=sys.stderr))
        d.addBoth(lambda _: self._done(index))

    def _done(self, index: int) -> None:
        self.busy[index] = False
        self._next(index)


def proc_stats(pid: int) -> dict:
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {"rss_mb": round(int(fields["VmRSS"].split()[0]) / 1024, 1),
            "threads": int(fields["Threads"]), "fds": len(os.listdir(f"/proc/{pid}/fd"))}


def store_sizes(folder: Path, url: str) -> dict:
    if not url.startswith("sqlite"):
        return {}
    size = lambda p: round(p.stat().st_size / 2**20, 1) if p.exists() else 0.0  # noqa: E731
    return {"store_mb": size(folder / "bench.db"), "wal_mb": size(folder / "bench.db-wal")}


def timed_status(config: Path, env: dict) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "engine.cli.main", "status", "--json", "--config",
                    str(config)], check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def timed_metrics(admin_port: int) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/metrics", timeout=30) as r:
        r.read()
    return time.perf_counter() - started


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))] if ordered else 0.0


class Soak:
    """One run: the engine process, the sink, the sender, and the minute reports."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.folder = Path(tempfile.mkdtemp(prefix="aiguillage-soak-"))
        self.url, self.database = create_store(args.store, self.folder)
        self.env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.sink = RecordingSink()
        self.engine: subprocess.Popen | None = None
        self.started = 0.0
        self.minute = 0

    @defer.inlineCallbacks
    def run(self):
        listening = yield _listen(self.sink)
        port, self.admin_port = free_port(), free_port()
        self.config = write_config(self.folder, self.url, port, listening.getHost().port,
                                   lanes=8)
        with self.config.open("a") as file:
            file.write(f"admin:\n  host: 127.0.0.1\n  port: {self.admin_port}\n")
        cli = [sys.executable, "-m", "engine.cli.main"]
        subprocess.run(cli + ["db", "upgrade", "--config", str(self.config)], check=True,
                       env=self.env, stdout=subprocess.DEVNULL)
        self.engine = subprocess.Popen(cli + ["run", "--config", str(self.config)],
                                       stdout=subprocess.PIPE, text=True, env=self.env)
        yield threads.deferToThread(read_line_starting, self.engine, "aiguillage", 60)
        self.sender = PacedSender(port, self.args.rate, self.args.patients,
                                  self.args.connections)
        self.started = time.time()
        self.sender.start()
        every = self.args.report_every
        for _ in range(round(self.args.minutes * 60 / every)):
            yield task.deferLater(reactor, every, lambda: None)
            yield self.report()
        self.sender.stop()
        yield self.drain()

    @defer.inlineCallbacks
    def report(self):
        self.minute += 1
        latencies, self.sender.latencies = self.sender.latencies, []
        status_s = yield threads.deferToThread(timed_status, self.config, self.env)
        metrics_s = yield threads.deferToThread(timed_metrics, self.admin_port)
        line = {"minute": round((time.time() - self.started) / 60, 2),
                **proc_stats(self.engine.pid), **store_sizes(self.folder, self.url),
                "status_s": round(status_s, 2), "metrics_ms": round(metrics_s * 1000, 1),
                "ack_p50_ms": round(percentile(latencies, 50) * 1000, 1),
                "ack_p99_ms": round(percentile(latencies, 99) * 1000, 1),
                "ack_max_ms": round(max(latencies, default=0) * 1000, 1),
                "acks_per_s": round(len(latencies) / self.args.report_every, 1),
                "sent": self.sender.sent,
                "acked": len(self.sender.acked), "received": len(self.sink.received),
                "backlog": self.sender.backlog()}
        print(json.dumps(line), flush=True)

    @defer.inlineCallbacks
    def drain(self, timeout: float = 300):
        deadline = time.time() + timeout
        while time.time() < deadline and (self.sender.backlog() or any(
                c not in self.sink.received for c in self.sender.acked[-1000:])):
            yield task.deferLater(reactor, 1, lambda: None)
        yield task.deferLater(reactor, 5, lambda: None)  # late duplicates would show here
        acked = set(self.sender.acked)
        lost = len(acked - self.sink.received.keys())
        duplicated = sum(1 for c, n in self.sink.received.items() if n > 1)
        print(json.dumps({"final": True, "minutes": self.args.minutes, "rate": self.args.rate,
                          "sent": self.sender.sent, "acked": len(acked),
                          "refused": self.sender.refused,
                          "received": len(self.sink.received), "lost": lost,
                          "duplicated": duplicated, "out_of_order": self.sink.out_of_order,
                          **store_sizes(self.folder, self.url)}), flush=True)

    def close(self) -> None:
        if self.engine is not None:
            self.engine.terminate()
            self.engine.wait(60)
        drop_store(self.database)
        shutil.rmtree(self.folder, ignore_errors=True)


def _listen(sink: RecordingSink) -> defer.Deferred:
    from mllp.tls import server_endpoint

    factory = MLLPServerFactory(sink, max_frame_size=16 << 20, idle_timeout=3600)
    return server_endpoint(reactor, "127.0.0.1", 0).listen(factory)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=20)
    parser.add_argument("--rate", type=float, default=600)
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--report-every", type=float, default=60, help="seconds")
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    soak = Soak(parser.parse_args())

    def finish(result):
        soak.close()
        if isinstance(result, Exception) or hasattr(result, "getTraceback"):
            print(result.getTraceback() if hasattr(result, "getTraceback") else result,
                  file=sys.stderr)
        reactor.stop()

    reactor.callWhenRunning(lambda: soak.run().addBoth(finish))
    reactor.run()


if __name__ == "__main__":
    main()
