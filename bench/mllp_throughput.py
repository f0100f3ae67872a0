"""
Benchmark: MLLP in -> persisted -> MLLP out, on the real engine.

Starts an MLLP sink (bench/sink.py) and the engine (`aiguillage run`) as processes of their
own, with one channel MLLP -> MLLP sink, drives the engine from C concurrent connections (each
waits for its ACK before sending the next message, as real senders do), and prints:

- ingest throughput: ACKs per second over the whole run;
- ACK latency p50 / p99 / max, measured by the senders;
- end-to-end: messages delivered to the sink per second, from the first send to the last
  message received by the sink;

for SQLite (fsync per group commit, and ``normal``) and for PostgreSQL (127.0.0.1:5432, a database created for the run). It prints the
interpreter it ran on, since the same code runs 1.2-1.8x faster on Debian's python3.11 than on
some other builds.

    .venv/bin/python bench/mllp_throughput.py [--messages 20000] [--connections 8]
        [--store sqlite|sqlite-normal|postgresql|all] [--sink-down]

sqlite-normal is SQLite with ``sqlite_synchronous: normal`` (survives kill -9, not a power cut).
"""
from __future__ import annotations

import argparse
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from engine.synthetic import message_stream  # noqa: E402

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_line_starting(process: subprocess.Popen, prefix: str, timeout: float) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"process ended before printing {prefix!r}")
        if line.startswith(prefix):
            return line.strip()
    raise RuntimeError(f"no {prefix!r} within {timeout}s")


def write_config(folder: Path, store_url: str, port: int, sink_port: int, lanes: int,
                 synchronous: str = "full", channel_extra: dict | None = None) -> Path:
    """engine.yaml and the bench channel; ``channel_extra``: sections added to the channel
    as YAML (``tables:``, ``steps:``... see bench/mapping_cost.py)."""
    (folder / "channels").mkdir(parents=True, exist_ok=True)
    sync = f"  sqlite_synchronous: {synchronous}\n" if store_url.startswith("sqlite") else ""
    (folder / "engine.yaml").write_text(
        f"node: bench\nstore:\n  url: {store_url}\n{sync}channels:\n  - channels/*.yaml\n"
        "log_level: warning\n")
    (folder / "channels" / "bench.yaml").write_text(
        "name: bench\nsource:\n  type: mllp\n  host: 127.0.0.1\n"
        f"  port: {port}\n  max_pending: 5000\ndestinations:\n  - name: sink\n    type: mllp\n"
        f"    host: 127.0.0.1\n    port: {sink_port}\n    ordering:\n      key: patient\n"
        f"      lanes: {lanes}\n"
        + (yaml.safe_dump(channel_extra, sort_keys=False) if channel_extra else ""))
    return folder / "engine.yaml"


def drive(port: int, messages: list[bytes], connections: int) -> tuple[float, float, list[float]]:
    """Send from ``connections`` clients; return (start, end, latencies) — blocking."""
    from twisted.internet import defer, reactor

    from mllp.client import MLLPClient

    latencies: list[float] = []
    shares = [messages[i::connections] for i in range(connections)]

    @defer.inlineCallbacks
    def one_connection(share: list[bytes]):
        client = MLLPClient.for_address(reactor, "127.0.0.1", port, ack_timeout=60)
        for payload in share:
            sent = time.perf_counter()
            yield client.send(payload)
            latencies.append(time.perf_counter() - sent)
        yield client.close()

    times = {}

    def run() -> None:
        times["start"] = time.time()
        d = defer.gatherResults([one_connection(s) for s in shares], consumeErrors=True)
        d.addErrback(lambda f: print("send failed:", f.getErrorMessage(), file=sys.stderr))
        d.addBoth(lambda _: times.setdefault("end", time.time()))
        d.addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(run)
    reactor.run()
    return times["start"], times["end"], latencies


def engine_cpu(pid: int) -> tuple[float, float] | None:
    """CPU seconds (user + system) used so far by the engine's main thread (the reactor) and
    by its other threads (writer, reads), from /proc; None where there is no /proc.

    Less sensitive to a noisy machine than rates: work done per message, not time waited.
    """
    tick = os.sysconf("SC_CLK_TCK")
    reactor = others = 0.0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            used = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
            if task.name == str(pid):
                reactor += used
            else:
                others += used
    except OSError:
        return None
    return reactor, others


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


STORES = ("sqlite", "sqlite-normal", "postgresql")


def create_store(store: str, folder: Path) -> tuple[str, str | None]:
    """(SQLAlchemy URL, PostgreSQL database to drop afterwards or None)."""
    if store.startswith("sqlite"):
        return f"sqlite:///{folder / 'bench.db'}", None
    import psycopg

    database = f"aiguillage_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {database}")
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{database}", database


def drop_store(database: str | None) -> None:
    if database:
        import psycopg

        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def run_one(store: str, count: int, connections: int, lanes: int, sink_down: bool,
            channel_extra: dict | None = None) -> dict:
    """One run on a fresh store; prints its figures and returns them (rates per second,
    latencies in ms; ``delivered_per_s`` is None when the sink is down)."""
    folder = Path(tempfile.mkdtemp(prefix=f"aiguillage-bench-{store}-"))
    url, database = create_store(store, folder)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    sink = None
    sink_port = free_port()  # nothing listens there when the sink is down
    if not sink_down:
        sink = subprocess.Popen([sys.executable, str(ROOT / "bench" / "sink.py"), "--expect",
                                 str(count)], stdout=subprocess.PIPE, text=True, env=env)
        sink_port = int(read_line_starting(sink, "PORT", 20).split()[1])
    port = free_port()
    synchronous = "normal" if store == "sqlite-normal" else "full"
    config = write_config(folder, url, port, sink_port, lanes, synchronous, channel_extra)
    cli = [sys.executable, "-m", "engine.cli.main"]
    subprocess.run(cli + ["db", "upgrade", "--config", str(config)], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    engine = subprocess.Popen(cli + ["run", "--config", str(config)], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        read_line_starting(engine, "aiguillage", 30)
        messages = list(message_stream(count, kinds=("adt",), patients=1000,
                                       start=int(time.time())))
        cpu_before = engine_cpu(engine.pid)
        start, end, latencies = drive(port, messages, connections)
        figures = {"acks_per_s": count / (end - start),
                   "p50_ms": percentile(latencies, 50) * 1000,
                   "p99_ms": percentile(latencies, 99) * 1000, "delivered_per_s": None}
        what = "sink down: ingest only" if sink_down else f"{lanes} delivery lanes to the sink"
        print(f"{store:>13}  {count} ADT over {connections} connections, {what}")
        print(f"{'':>13}  ingest      {count / (end - start):8.0f} ACKs/s")
        print(f"{'':>13}  ACK latency p50 {percentile(latencies, 50) * 1000:6.2f} ms   "
              f"p99 {percentile(latencies, 99) * 1000:6.2f} ms   max {max(latencies) * 1000:6.1f} ms")
        if sink is not None:
            delivered_at = float(read_line_starting(sink, "DONE", 600).split()[3])
            figures["delivered_per_s"] = count / (delivered_at - start)
            print(f"{'':>13}  end-to-end  {count / (delivered_at - start):8.0f} delivered/s "
                  f"(last delivery {delivered_at - end:.2f}s after the last ACK)", flush=True)
        cpu_after = engine_cpu(engine.pid)
        if cpu_before is not None and cpu_after is not None:
            reactor, others = (1e6 * (a - b) / count for a, b in zip(cpu_after, cpu_before))
            figures["reactor_cpu_us"], figures["other_cpu_us"] = reactor, others
            print(f"{'':>13}  engine CPU  {reactor:8.0f} us/msg reactor thread, "
                  f"{others:.0f} us/msg other threads (writer, reads)", flush=True)
        return figures
    finally:
        for process in (engine, sink):
            if process is not None:
                process.terminate()
                process.wait(30)
        drop_store(database)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--lanes", type=int, default=4)
    parser.add_argument("--store", choices=STORES + ("all",), default="all")
    parser.add_argument("--sink-down", action="store_true",
                        help="no sink: measure ingest alone while deliveries queue up")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    stores = STORES if args.store == "all" else (args.store,)
    if len(stores) > 1 or not args.child:
        print(f"interpreter: {sys.executable} ({platform.python_implementation()} "
              f"{platform.python_version()}), {os.cpu_count()} cores", flush=True)
    if len(stores) > 1:
        for store in stores:  # each run in a child process: a reactor runs once per process
            command = [sys.executable, __file__, "--child", "--store", store, "--messages",
                       str(args.messages), "--connections", str(args.connections),
                       "--lanes", str(args.lanes)] + (["--sink-down"] if args.sink_down else [])
            subprocess.run(command, check=False)
        return
    run_one(stores[0], args.messages, args.connections, args.lanes, args.sink_down)


if __name__ == "__main__":
    main()
