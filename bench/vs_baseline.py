"""
Benchmark: the engine against the baseline durable MLLP server, in the same run.

Drives each server with the independent load client (../shared/tools/mllp_load, C
connections, mixed ADT^A01/ORU^R01, one message in flight per connection) and prints, per
server: good ACKs/s, ACK p50/p99, and the server's CPU per message (its whole process tree,
worker processes included, read from /proc); on PostgreSQL also the CPU per message of the
PostgreSQL server processes connected to the run's database (``postgres cpu``).

Runs:
1. ``pinned``: the server on core 0, the client on core 1 (``taskset``): the baseline
   (bench/baseline_server.py), the engine on a plain channel (MLLP in, file destination:
   ``engine-*``), and the same channel with its destination down (``ingest-*``: intake
   alone, deliveries queue), same store kind. The ratio of CPU per message ingested is the
   figure the issue sets (<= 2).
2. ``shipped``: the engine unpinned on the shipped ``config/`` (a copy whose store and
   output folders are temporary), 8 connections on adt-in's port; then waits until the
   ``file`` destination has written every message, for the end-to-end rate. Before it, with
   ``baseline`` among ``--servers``, the baseline unpinned too (``baseline-unpinned-*``), the
   client sharing both cores with it as with the engine: the most a durable server does on
   this machine, against which the issue's absolute rates (5 000 ACK/s, 3 000/s end to end,
   set where the pinned baseline took 9 500/s) can be read.

Every line also gives the load client's own CPU per message (``client``): on 2 cores
unpinned, the client and the server share them.

    .venv/bin/python bench/vs_baseline.py [--messages 20000] [--connections 8]
        [--store sqlite|postgresql|all] [--runs pinned,shipped] [--servers baseline,ingest]
        [--engine-args "--workers 0" --engine-args "--workers 1 --listeners 2" ...]

``--servers`` keeps some of the pinned run's three servers (``baseline``, ``engine``,
``ingest``; all by default), for shorter runs that compare two trees' intake in the same minutes;
without ``baseline``, the shipped run leaves out its unpinned baseline too.

``--engine-args`` (repeatable) gives ``aiguillage run`` options for the ``shipped`` run, one
run per value (the process model: ``--workers``, ``--listeners``); the pinned runs keep one
process (``--workers 0``), the engine's whole tree pinned to one core.

PostgreSQL runs use 127.0.0.1:5432 and a database created and dropped for each run.

Every run's store and output stay in one folder (``--work-dir``, default the system's
temporary folder) until the bench ends, and a file creation probe is printed before each
run: on ext4 without a journal, files created soon after a mass deletion cost several times
more (bench/fsprobe.py), so that a run must not follow its predecessor's clean-up, and a
probe of hundreds of microseconds says the disk was not quiet.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import fsprobe

ROOT = Path(__file__).resolve().parent.parent
# ../shared next to the checkout; AIGUILLAGE_SHARED names it elsewhere (a git worktree, say)
LOAD = Path(os.environ.get("AIGUILLAGE_SHARED", ROOT.parent / "shared")) / "tools" / "mllp_load" / "mllp_load.py"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of ``pid`` and every live descendant."""
    return sum(tree_cpu_split(pid))


def tree_cpu_split(pid: int) -> tuple[float, float]:
    """CPU seconds (user, system) of ``pid`` and every live descendant: instruction counts
    (callgrind) see the user part only, the kernel's work for fsyncs and sockets is the
    other."""
    user = system = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            user += int(fields[11]) / CLOCK_TICKS
            system += int(fields[12]) / CLOCK_TICKS
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        pending.extend(int(child) for child in children)
    return user, system


def pinned(core: int | None) -> list[str]:
    return ["taskset", "-c", str(core)] if core is not None and shutil.which("taskset") else []


def start(command: list[str], ready: str, timeout: float = 60.0) -> subprocess.Popen:
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, cwd=ROOT)
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"{command[:3]} ended before {ready!r}")
        if ready in line:
            return process
    raise RuntimeError(f"no {ready!r} within {timeout}s")


def children_of(options: list[str]) -> int | None:
    """The children ``aiguillage run options`` starts: 0 with ``--workers 0`` and one
    listener, else None (the main process says how many: "supervising N child...")."""
    def value(name: str, default: str) -> str:
        return options[options.index(name) + 1] if name in options else default

    return 0 if value("--workers", "") == "0" and value("--listeners", "1") == "1" else None


def every_process_running(process: subprocess.Popen, children: int | None,
                          timeout: float = 60.0) -> None:
    """Return once the engine's main process and each child it supervises have said they
    run, then keep reading its output in a thread (a full pipe would stall its logging).

    The load starts after this, not at the main process's first "listening": a delivery
    child starting up (imports, configuration, store) during the run would take a core's
    second for itself and leave the measured second-core share to chance.
    """
    deadline = time.time() + timeout
    running = 0
    while time.time() < deadline:
        line = process.stdout.readline()
        if not line:
            raise RuntimeError("the engine ended before every process was running")
        if " running (" in line and line.startswith("aiguillage "):
            running += 1
        elif line.startswith("supervising "):
            children = int(line.split()[1])
        if children is not None and running >= 1 + children:
            break
    else:
        raise RuntimeError(f"not every engine process was running within {timeout}s")
    threading.Thread(target=process.stdout.read, daemon=True).start()


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()


def load(port: int, messages: int, connections: int, core: int | None) -> dict:
    """The client's figures (its last JSON line), with its own CPU seconds (``client_cpu_s``:
    the only child reaped during the call, so the only one the delta counts)."""
    command = pinned(core) + [sys.executable, str(LOAD), "--port", str(port), "--conns",
                              str(connections), "--count", str(messages), "--mix", "mixed",
                              "--patients", "500", "--max-seconds", "300", "--loop", "asyncio"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = json.loads(output.strip().splitlines()[-1])
    result["client_cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return result


def backend_cpu(database: str | None) -> dict[int, float]:
    """CPU seconds of each PostgreSQL server process connected to ``database`` (None: none)."""
    if database is None:
        return {}
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        pids = [row[0] for row in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s", (database,))]
    return {pid: tree_cpu(pid) for pid in pids}


def measure(process: subprocess.Popen, port: int, args: argparse.Namespace,
            connections: int, client_core: int | None, database: str | None = None) -> dict:
    """The load's figures, with the server's CPU per message and, given the ``database`` of a
    PostgreSQL run, the CPU per message of the PostgreSQL processes serving it."""
    before, server_before = tree_cpu_split(process.pid), backend_cpu(database)
    result = load(port, args.messages, connections, client_core)
    user, system = (b - a for a, b in zip(before, tree_cpu_split(process.pid)))
    acked = max(result["acked_ok"], 1)
    result["cpu_us_per_msg"] = round((user + system) / acked * 1e6, 1)
    result["sys_us_per_msg"] = round(system / acked * 1e6, 1)
    result["client_us_per_msg"] = round(result.pop("client_cpu_s") / acked * 1e6, 1)
    if database is not None:
        server = sum(seconds - server_before.get(pid, 0.0)
                     for pid, seconds in backend_cpu(database).items())
        result["pg_cpu_us_per_msg"] = round(server / acked * 1e6, 1)
    return result


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Database:
    """A store URL for one run: a SQLite file in ``folder``, or a fresh PostgreSQL database."""

    def __init__(self, kind: str, folder: Path):
        self.kind, self.folder = kind, folder
        self.name = f"bench_{uuid.uuid4().hex[:10]}"
        # whose server processes' CPU is measured: the PostgreSQL database, none for SQLite
        self.server_database = self.name if kind == "postgresql" else None

    def __enter__(self) -> "Database":
        if self.kind == "postgresql":
            self._admin(f"CREATE DATABASE {self.name}")
        return self

    def __exit__(self, *exc) -> None:
        if self.kind == "postgresql":
            self._admin(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")

    def reset(self) -> None:
        self._admin(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")
        self._admin(f"CREATE DATABASE {self.name}")

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(sql)

    def engine_url(self, label: str) -> str:
        if self.kind == "sqlite":
            return f"sqlite:///{self.folder / (label + '.db')}"
        return f"postgresql+psycopg://postgres@127.0.0.1:5432/{self.name}"

    def baseline_store(self) -> str:
        if self.kind == "sqlite":
            return f"sqlite:{self.folder / 'baseline.db'}"
        return f"postgresql:postgresql://postgres@127.0.0.1:5432/{self.name}"


def plain_config(folder: Path, url: str, port: int, ingest_only: bool = False) -> Path:
    """engine.yaml and one plain channel: MLLP in, file destination, two ordered lanes.

    ``ingest_only``: the destination is an MLLP peer that is down, with a retry an hour away,
    so that the run measures intake alone while the deliveries queue."""
    (folder / "channels").mkdir(parents=True, exist_ok=True)
    (folder / "engine.yaml").write_text(
        f"node: bench\nstore:\n  url: {url}\nchannels:\n  - channels/*.yaml\n"
        "log_level: warning\n")
    (folder / "channels" / "plain.yaml").write_text(
        f"name: plain\nsource:\n  type: mllp\n  host: 127.0.0.1\n  port: {port}\n"
        "destinations:\n  - name: archive\n"
        + ("    type: mllp\n    host: 127.0.0.1\n    port: 9\n    retry:\n"
           "      initial_delay: 1h\n" if ingest_only else
           "    type: file\n    directory: ../out\n")
        + "    ordering:\n      key: patient\n      lanes: 2\n")
    return folder / "engine.yaml"


def engine_command(config: Path, core: int | None, extra: list[str] = ("--workers", "0")
                   ) -> list[str]:
    return pinned(core) + [str(ROOT / ".venv" / "bin" / "aiguillage"), "run", "--config",
                           str(config), *extra]


def run_pinned(kind: str, args: argparse.Namespace, connections: int, work: Path) -> list[dict]:
    rows = []
    tmp = tempfile.mkdtemp(prefix="pinned-", dir=work)  # kept until the end (bench/fsprobe.py)
    with Database(kind, Path(tmp)) as db:
        port = free_port()
        baseline = start(pinned(0) + [sys.executable, str(ROOT / "bench" / "baseline_server.py"),
                                      "--port", str(port), "--store", db.baseline_store()],
                         "listening on")
        try:
            if "baseline" in args.servers:
                rows.append({"server": f"baseline-{kind}", **measure(
                    baseline, port, args, connections, 1, db.server_database)})
        finally:
            stop(baseline)
        for label, ingest_only in ((f"engine-{kind}", False), (f"ingest-{kind}", True)):
            if label.split("-")[0] not in args.servers:
                continue
            if kind == "postgresql":  # each server starts on an empty database
                db.reset()
            folder = Path(tmp) / label
            port = free_port()
            config = plain_config(folder, db.engine_url(label), port, ingest_only)
            subprocess.run([str(ROOT / ".venv" / "bin" / "aiguillage"), "db", "upgrade",
                            "--config", str(config)], check=True, capture_output=True)
            engine = start(engine_command(config, 0), "listening")
            try:
                rows.append({"server": label, **measure(engine, port, args, connections, 1,
                                                        db.server_database)})
            finally:
                stop(engine)
    return rows


SHIPPED_PORTS = (2575, 2576, 2577, 2578, 2579, 8090)  # MLLP sources, the shared record


def shipped_config(tmp: Path, url: str, ports: dict[int, int] | None = None) -> Path:
    """A copy of the shipped ``config/`` (and the ``samples/`` its tables name) in ``tmp``,
    on the store ``url``, its output under ``tmp/var``, the admin listener on a free port;
    ``ports`` moves the listeners it names (shipped port -> port) off the shipped ones."""
    folder = tmp / "config"
    shutil.copytree(ROOT / "config", folder)
    shutil.copytree(ROOT / "samples", tmp / "samples")  # tables named ../../samples
    text = (folder / "engine.yaml").read_text()
    text = text.replace("sqlite:///../var/aiguillage.db", url)
    text = text.replace("port: 8026", f"port: {free_port()}")
    for shipped, port in (ports or {}).items():
        text = text.replace(f"127.0.0.1:{shipped}", f"127.0.0.1:{port}")
        for channel in (folder / "channels").glob("*.yaml"):
            channel.write_text(channel.read_text().replace(f"port: {shipped}\n",
                                                           f"port: {port}\n"))
    (folder / "engine.yaml").write_text(text)
    return folder / "engine.yaml"


def run_unpinned_baseline(kind: str, args: argparse.Namespace, connections: int,
                          work: Path) -> list[dict]:
    """The baseline as the shipped run finds the machine: unpinned, the client beside it."""
    tmp = tempfile.mkdtemp(prefix="unpinned-", dir=work)
    with Database(kind, Path(tmp)) as db:
        port = free_port()
        baseline = start([sys.executable, str(ROOT / "bench" / "baseline_server.py"),
                          "--port", str(port), "--store", db.baseline_store()], "listening on")
        try:
            row = measure(baseline, port, args, connections, None, db.server_database)
        finally:
            stop(baseline)
    return [{"server": f"baseline-unpinned-{kind}", **row}]


def run_shipped(kind: str, args: argparse.Namespace, connections: int, work: Path,
                extra: str | None = None) -> list[dict]:
    tmp = tempfile.mkdtemp(prefix="shipped-", dir=work)  # kept until the end (bench/fsprobe.py)
    with Database(kind, Path(tmp)) as db:
        config = shipped_config(Path(tmp), db.engine_url("shipped"))
        subprocess.run([str(ROOT / ".venv" / "bin" / "aiguillage"), "db", "upgrade",
                        "--config", str(config)], check=True, capture_output=True)
        options = extra.split() if extra is not None else []
        engine = start(engine_command(config, None, options), "listening")
        # the children start once the main process listens: the load waits for them
        every_process_running(engine, children_of(options))
        try:
            started = time.time()
            row = measure(engine, 2575, args, connections, None)
            out = Path(tmp) / "var" / "out" / "adt-in"
            while _count(out) < row["acked_ok"] and time.time() - started < 300:
                time.sleep(0.05)
            row["delivered"] = _count(out)
            row["end_to_end_per_s"] = round(row["delivered"] / (time.time() - started), 1)
        finally:
            stop(engine)
    label = f"engine-shipped-{kind}" + (f" [{extra}]" if extra else "")
    return [{"server": label, **row}]


def _count(folder: Path) -> int:
    try:
        return sum(1 for _ in os.scandir(folder))
    except FileNotFoundError:
        return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--connections", default="8", help="comma-separated counts, e.g. 8,64")
    parser.add_argument("--store", choices=["sqlite", "postgresql", "all"], default="sqlite")
    parser.add_argument("--runs", default="pinned,shipped")
    parser.add_argument("--servers", default="baseline,engine,ingest",
                        help="which servers the pinned run measures (comma-separated); "
                             "baseline also adds the unpinned one to the shipped run")
    parser.add_argument("--engine-args", action="append",
                        help="options of `aiguillage run` for the shipped run (repeatable)")
    parser.add_argument("--work-dir", default=None,
                        help="where the runs' stores and output go (default: the system's "
                             "temporary folder)")
    parser.add_argument("--keep-files", action="store_true",
                        help="leave the runs' folder in place (several runs in a row: each "
                             "one's deletion would slow the next one's files)")
    args = parser.parse_args()
    kinds = ["sqlite", "postgresql"] if args.store == "all" else [args.store]
    print(f"python {sys.version.split()[0]} ({sys.executable}), {os.cpu_count()} cores")
    work = Path(tempfile.mkdtemp(prefix="vs_baseline-", dir=args.work_dir))
    try:
        compare(args, kinds, work)
    finally:
        if args.keep_files:
            print(f"kept {work}: remove it when no other run follows soon")
        else:
            shutil.rmtree(work, ignore_errors=True)


def compare(args: argparse.Namespace, kinds: list[str], work: Path) -> None:
    """Every run asked for, each server's line and the ratios to the baseline; the runs'
    files stay in ``work`` until the caller removes it, and a file creation probe comes
    before each run that writes files (see bench/fsprobe.py)."""
    for kind in kinds:
        for connections in [int(c) for c in args.connections.split(",")]:
            rows = []
            if "pinned" in args.runs:
                print(fsprobe.line(work))
                rows += run_pinned(kind, args, connections, work)
            if "shipped" in args.runs:
                if "baseline" in args.servers:
                    rows += run_unpinned_baseline(kind, args, connections, work)
                for extra in args.engine_args or [None]:
                    print(fsprobe.line(work))
                    rows += run_shipped(kind, args, connections, work, extra)
            for row in rows:
                lat = row["lat_ms"]
                extra = (f"  delivered {row['delivered']} at {row['end_to_end_per_s']}/s"
                         if "delivered" in row else "")
                if "pg_cpu_us_per_msg" in row:
                    extra += f"  postgres cpu {row['pg_cpu_us_per_msg']} us/msg"
                print(f"{row['server']:<44} conns {connections:>3}  {row['msgs_per_s']:>8} ACK/s"
                      f"  p50 {lat['p50']} ms  p99 {lat['p99']} ms"
                      f"  cpu {row['cpu_us_per_msg']} us/msg (sys {row['sys_us_per_msg']})"
                      f"  client {row['client_us_per_msg']} us/msg  errors {row['errors']}{extra}")
            base = next((r for r in rows if r["server"] == f"baseline-{kind}"), None)
            mine_rows = [r for r in rows if r["server"] in (f"engine-{kind}", f"ingest-{kind}")]
            for mine in mine_rows if base is not None else []:
                print(f"ratio {mine['server']}/baseline ({connections} conns): CPU per message "
                      f"{mine['cpu_us_per_msg'] / base['cpu_us_per_msg']:.2f}, throughput "
                      f"{mine['msgs_per_s'] / base['msgs_per_s']:.2f}")
            unpinned = next((r for r in rows if r["server"] == f"baseline-unpinned-{kind}"), None)
            for mine in [r for r in rows if r["server"].startswith("engine-shipped")
                         ] if unpinned is not None else []:
                print(f"ratio {mine['server']}/baseline-unpinned ({connections} conns): CPU per "
                      f"message {mine['cpu_us_per_msg'] / unpinned['cpu_us_per_msg']:.2f}, "
                      f"throughput {mine['msgs_per_s'] / unpinned['msgs_per_s']:.2f}, end to end "
                      f"{mine['end_to_end_per_s'] / unpinned['msgs_per_s']:.2f}")


if __name__ == "__main__":
    main()
