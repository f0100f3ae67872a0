"""
Benchmark: the engine's CPU per message ingested on a plain channel, against a minimal
baseline server (bench/baseline_server.py: Twisted, MLLP, SQLite WAL group commit, ACK after
commit) under the same load.

Each server runs in a process of its own, driven by C connections that each wait for their
ACK before sending the next message (bench/mllp_throughput.py's driver); the CPU it used
(user + system, all threads, from /proc) is divided by the messages sent. The engine runs
the bench channel (routing only, 4 patient lanes) with its MLLP sink down, so that the
figure is ingest (ACKs, commits, deliveries queued), not delivery; ``--deliver`` starts the
sink. The target: engine / baseline <= 2.

    .venv/bin/python bench/cpu_per_message.py [--messages 20000] [--connections 8] [--deliver]
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from engine.synthetic import message_stream  # noqa: E402
from mllp_throughput import drive, engine_cpu, percentile, read_line_starting, run_one  # noqa: E402


def baseline(count: int, connections: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="aiguillage-baseline-"))
    server = subprocess.Popen([sys.executable, str(ROOT / "bench" / "baseline_server.py"),
                               "--database", str(folder / "baseline.db")],
                              stdout=subprocess.PIPE, text=True)
    try:
        port = int(read_line_starting(server, "PORT", 20).split()[1])
        messages = list(message_stream(count, kinds=("adt",), patients=1000,
                                       start=int(time.time())))
        before = engine_cpu(server.pid)
        start, end, latencies = drive(port, messages, connections)
        after = engine_cpu(server.pid)
        used = sum(after) - sum(before)
        print(f"baseline  {count / (end - start):7.0f} ACKs/s  p50 "
              f"{percentile(latencies, 50) * 1000:5.2f} ms  p99 "
              f"{percentile(latencies, 99) * 1000:5.2f} ms  CPU {1e6 * used / count:6.0f} us/msg",
              flush=True)
        print(f"FIGURE {1e6 * used / count}", flush=True)
    finally:
        server.terminate()
        server.wait(30)


def engine(count: int, connections: int, deliver: bool) -> None:
    figures = run_one("sqlite", count, connections, 4, not deliver)
    total = figures["reactor_cpu_us"] + figures["other_cpu_us"]
    print(f"engine    CPU {total:6.0f} us/msg (all threads)", flush=True)
    print(f"FIGURE {total}", flush=True)


def child(kind: str, args: argparse.Namespace) -> float:
    command = [sys.executable, __file__, "--child", kind, "--messages", str(args.messages),
               "--connections", str(args.connections)] + (["--deliver"] if args.deliver else [])
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    figure = None
    for line in done.stdout.splitlines():
        if line.startswith("FIGURE "):
            figure = float(line.split()[1])
        else:
            print(line, flush=True)
    if figure is None:
        raise SystemExit(f"{kind} run failed:\n{done.stderr[-2000:]}")
    return figure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--deliver", action="store_true", help="the engine's sink is up")
    parser.add_argument("--child", choices=("baseline", "engine"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "baseline":
        return baseline(args.messages, args.connections)
    if args.child == "engine":
        return engine(args.messages, args.connections, args.deliver)
    print(f"interpreter: {sys.executable} ({platform.python_implementation()} "
          f"{platform.python_version()}), {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f}", flush=True)
    base = child("baseline", args)
    mine = child("engine", args)
    print(f"engine / baseline CPU per message: {mine / base:.2f}")


if __name__ == "__main__":
    main()
