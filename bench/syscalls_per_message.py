"""
Benchmark: system calls and CPU per message of each engine process, on a copy of the shipped
``config/`` (SQLite, ``aiguillage run`` with its default process model: the intake process
and one delivery worker on two cores).

Each round starts the engine from each ``--tree`` in turn (alternated: trees compared in the
same minutes), on a copy of ``config/`` whose listeners are on free ports (never the shipped
2575) and whose store and output folders are temporary, and drives adt-in's port with the
load client (mixed ADT/ORU, ``--connections``). After a warm-up, two measured phases of
``--messages`` each, both ended once the ``file`` destination has written every message:

1. CPU: user and system time per message of each process, from /proc, no tracer attached;
2. calls: a tracer attached to each process (``perf trace -s``, else ``strace -c -f``, said
   in the output; none: this phase is skipped) counts its system calls per message, by
   call, and, with perf, by thread (the intake's reactor is its main thread).

A tracer slows the process it watches: the figures of phase 2 are counts, not times.

``--plain``: instead, vs_baseline.py's pinned intake (``ingest-sqlite``): its plain channel
with the destination down, ``aiguillage run --workers 0`` on core 0 (one process, deliveries
queue), the load client on core 1; each phase ends with the load client's last ACK.

    .venv/bin/python bench/syscalls_per_message.py [--messages 5000] [--rounds 1]
        [--tree main=/work/wt/x-before --tree branch=.] [--tracer perf|strace|none]
        [--engine-args "--workers 1"] [--top 25] [--work-dir DIR] [--keep-files] [--plain]

Every tree runs with this checkout's interpreter (``.venv``), the tree first on PYTHONPATH.
"""
from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fsprobe  # noqa: E402
import vs_baseline as vb  # noqa: E402

PYTHON = str(vb.ROOT / ".venv" / "bin" / "python")


@dataclass
class Engine:
    """One running engine: its main process (intake) and its children, by role."""

    process: subprocess.Popen
    port: int
    out: Path
    roles: dict[str, int] = field(default_factory=dict)  # "intake", "delivery-1"... -> pid


def start_engine(tree: Path, tmp: Path, extra: list[str], plain: bool = False) -> Engine:
    env = dict(os.environ, PYTHONPATH=str(tree), PYTHONDONTWRITEBYTECODE="1")
    cli = [PYTHON, "-m", "engine.cli.main"]
    if plain:  # vs_baseline.py's pinned ingest-sqlite
        port = vb.free_port()
        config = vb.plain_config(tmp / "engine", f"sqlite:///{tmp / 'store.db'}", port,
                                 ingest_only=True)
        cli = vb.pinned(0) + cli
        extra = ["--workers", "0", *extra]
    else:
        ports = {shipped: vb.free_port() for shipped in vb.SHIPPED_PORTS}
        config = vb.shipped_config(tmp, f"sqlite:///{tmp / 'store' / 'shipped.db'}", ports)
        port = ports[2575]
    subprocess.run(cli + ["db", "upgrade", "--config", str(config)], check=True,
                   capture_output=True, env=env, cwd=tree)
    process = subprocess.Popen(cli + ["run", "--config", str(config), *extra],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=env, cwd=tree)
    engine = Engine(process, port, None if plain else tmp / "var" / "out" / "adt-in")
    deadline = time.time() + 60
    while time.time() < deadline:
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"the engine of {tree} ended before it ran")
        if " running (" in line:
            break
    engine.roles["intake"] = process.pid
    time.sleep(3)  # children start once the main process runs
    for number, pid in enumerate(_children(process.pid), 1):
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        role = cmdline[cmdline.index(b"--role") + 1].decode() if b"--role" in cmdline else "child"
        engine.roles[f"{role}-{number}"] = pid
    return engine


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def process_cpu(pid: int) -> tuple[float, float]:
    """CPU seconds (user, system) of ``pid`` alone (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / vb.CLOCK_TICKS, int(fields[12]) / vb.CLOCK_TICKS


def drive(engine: Engine, messages: int, connections: int, expected: int) -> dict:
    """``messages`` through adt-in; returns once ``expected`` files are written in all (at
    the last ACK with ``--plain``: the client pinned on core 1, nothing delivered)."""
    if engine.out is None:
        return vb.load(engine.port, messages, connections, 1)
    result = vb.load(engine.port, messages, connections, None)
    deadline = time.time() + 300
    while vb._count(engine.out) < expected and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)  # the last batch's SENT commit
    return result


class Tracer:
    """A system call counter attached to one process: ``perf trace -s`` or ``strace -c -f``."""

    def __init__(self, kind: str, pid: int, output: Path):
        self.kind, self.output = kind, output
        if kind == "perf":
            command = ["perf", "trace", "-s", "-p", str(pid), "-o", str(output)]
        else:
            command = ["strace", "-c", "-f", "-p", str(pid), "-o", str(output)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)

    def stop(self) -> dict[str, collections.Counter]:
        """Detach; the calls counted, by thread ("all" for strace, which does not split)."""
        self.process.send_signal(signal.SIGINT)
        self.process.wait(60)
        text = self.output.read_text()
        return parse_perf(text) if self.kind == "perf" else {"all": parse_strace(text)}


PERF_THREAD = re.compile(r"^\s*(\S.*) \((\d+)\), \d+ events")
PERF_ROW = re.compile(r"^\s+([a-z_0-9]+)\s+(\d+)\s+(\d+)\s+[\d.]+")
STRACE_ROW = re.compile(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:(\d+)\s+)?([a-z_0-9]+)$")


def parse_perf(text: str) -> dict[str, collections.Counter]:
    threads: dict[str, collections.Counter] = {}
    current = None
    for line in text.splitlines():
        if match := PERF_THREAD.match(line):
            current = threads.setdefault(match.group(2), collections.Counter())
        elif current is not None and (match := PERF_ROW.match(line)):
            current[match.group(1)] += int(match.group(2))
    return threads


def parse_strace(text: str) -> collections.Counter:
    calls: collections.Counter = collections.Counter()
    for line in text.splitlines():
        if (match := STRACE_ROW.match(line)) and match.group(3) != "total":
            calls[match.group(3)] += int(match.group(1))
    return calls


def pick_tracer(asked: str) -> str:
    if asked != "auto":
        return asked
    for kind in ("perf", "strace"):
        if shutil.which(kind):
            return kind
    return "none"


def run_once(name: str, tree: Path, args: argparse.Namespace, work: Path, tracer: str) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=work))  # kept (bench/fsprobe.py)
    engine = start_engine(tree, tmp, args.engine_args.split(), args.plain)
    row: dict = {"tree": name, "roles": dict(engine.roles)}
    try:
        sent = args.warmup
        drive(engine, args.warmup, args.connections, sent)
        before = {role: process_cpu(pid) for role, pid in engine.roles.items()}
        result = drive(engine, args.messages, args.connections, sent + args.messages)
        sent += args.messages
        acked = max(result["acked_ok"], 1)
        row["ack_per_s"], row["p99"] = result["msgs_per_s"], result["lat_ms"]["p99"]
        row["cpu"] = {}
        for role, pid in engine.roles.items():
            user, system = (b - a for a, b in zip(before[role], process_cpu(pid)))
            row["cpu"][role] = (user / acked * 1e6, system / acked * 1e6)
        if tracer != "none":
            tracers = {role: Tracer(tracer, pid, tmp / f"{role}.{tracer}")
                       for role, pid in engine.roles.items()}
            time.sleep(1.5)  # attached
            result = drive(engine, args.messages, args.connections, sent + args.messages)
            row["calls"] = {role: t.stop() for role, t in tracers.items()}
            row["traced_acked"] = max(result["acked_ok"], 1)
        row["delivered"] = vb._count(engine.out) if engine.out is not None else 0
    finally:
        vb.stop(engine.process)
    return row


def report(row: dict, top: int, tracer: str) -> None:
    print(f"{row['tree']}: {row['ack_per_s']} ACK/s, p99 {row['p99']} ms (untraced), "
          f"{row['delivered']} files written; processes {row['roles']}")
    for role, (user, system) in row["cpu"].items():
        print(f"  cpu {role:<12} user {user:7.1f}  sys {system:7.1f}  total "
              f"{user + system:7.1f} us/msg")
    if "calls" not in row:
        return
    acked = row["traced_acked"]
    for role, threads in row["calls"].items():
        total = collections.Counter()
        for calls in threads.values():
            total.update(calls)
        pid = str(row["roles"][role])
        print(f"  calls {role}: {sum(total.values()) / acked:.2f} per message ({tracer})")
        if tracer == "perf":
            for tid, calls in sorted(threads.items(), key=lambda t: -sum(t[1].values())):
                if sum(calls.values()) / acked >= 0.05:
                    label = "main thread" if tid == pid else f"thread {tid}"
                    print(f"    {label:<14} {sum(calls.values()) / acked:6.2f}: " + ", ".join(
                        f"{c} {n / acked:.2f}" for c, n in calls.most_common(8)))
        print("    by call: " + ", ".join(f"{c} {n / acked:.2f}"
                                           for c, n in total.most_common(top)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--warmup", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--tree", action="append", help="NAME=PATH (repeat; default this one)")
    parser.add_argument("--tracer", choices=["auto", "perf", "strace", "none"], default="auto")
    parser.add_argument("--engine-args", default="", help="options of `aiguillage run`")
    parser.add_argument("--top", type=int, default=25, help="calls listed per process")
    parser.add_argument("--work-dir", default=None)
    parser.add_argument("--keep-files", action="store_true",
                        help="leave the runs' folder in place (see bench/fsprobe.py)")
    parser.add_argument("--plain", action="store_true",
                        help="vs_baseline.py's pinned intake alone instead of config/")
    args = parser.parse_args()
    trees = dict(item.split("=", 1) for item in args.tree or [f"this={vb.ROOT}"])
    tracer = pick_tracer(args.tracer)
    if tracer == "none":
        print("no tracer (neither perf nor strace found, or --tracer none): CPU only")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, tracer {tracer}")
    work = Path(tempfile.mkdtemp(prefix="syscalls-", dir=args.work_dir))
    try:
        for round_ in range(args.rounds):
            for name, path in trees.items():
                print(f"round {round_} {name} " + fsprobe.line(work), flush=True)
                report(run_once(name, Path(path).resolve(), args, work, tracer), args.top,
                       tracer)
                sys.stdout.flush()
    finally:
        if args.keep_files:
            print(f"kept {work}: remove it when no other run follows soon")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
