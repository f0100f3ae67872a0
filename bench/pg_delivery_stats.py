"""
Benchmark tool: what the PostgreSQL server does per message for vs_baseline.py's plain
channel, read from its statistics views: transactions, rows read and written, updates that
were HOT, scans per table and index, and the server processes' CPU.

Runs the pinned engine (``--workers 0``, core 0; the load client on core 1) on a fresh
database, like ``vs_baseline.py --runs pinned``, once with the ``file`` destination
(``engine``) and once with the destination down (``ingest``: deliveries only queue), takes
the views before the load and after the engine has stopped (a backend flushes its
statistics when it ends), and prints each counter's difference per acknowledged message.

    .venv/bin/python bench/pg_delivery_stats.py [--messages 20000] [--connections 8]
        [--servers engine,ingest] [--work-dir DIR] [--explain] [--perf FILE] [--trace]
"""
from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import vs_baseline as vb  # noqa: E402

DATABASE_COLUMNS = ("xact_commit", "xact_rollback", "blks_read", "blks_hit", "tup_returned",
                    "tup_fetched", "tup_inserted", "tup_updated", "tup_deleted")
TABLE_COLUMNS = ("seq_scan", "seq_tup_read", "idx_scan", "idx_tup_fetch", "n_tup_ins",
                 "n_tup_upd", "n_tup_hot_upd", "n_tup_del")


def snapshot(name: str) -> dict[str, float]:
    import psycopg

    figures: dict[str, float] = {}
    url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute(f"SELECT {', '.join(DATABASE_COLUMNS)} FROM pg_stat_database "
                           "WHERE datname = %s", (name,)).fetchone()
        figures.update({f"db.{c}": v for c, v in zip(DATABASE_COLUMNS, row)})
        for table, *values in conn.execute(
                f"SELECT relname, {', '.join(TABLE_COLUMNS)} FROM pg_stat_user_tables"):
            figures.update({f"{table}.{c}": v or 0 for c, v in zip(TABLE_COLUMNS, values)})
        for index, scans, read, fetched in conn.execute(
                "SELECT indexrelname, idx_scan, idx_tup_read, idx_tup_fetch "
                "FROM pg_stat_user_indexes"):
            figures.update({f"{index}.scan": scans, f"{index}.tup_read": read,
                            f"{index}.tup_fetch": fetched})
    return figures


def run(label: str, ingest_only: bool, args: argparse.Namespace, work: Path) -> None:
    with vb.Database("postgresql", work) as db:
        folder = work / label
        if args.explain:  # every statement's plan in the server's log (this database only)
            for setting in ("session_preload_libraries = 'auto_explain'",
                            "auto_explain.log_min_duration = 0",
                            "auto_explain.log_nested_statements = on"):
                db._admin(f"ALTER DATABASE {db.name} SET {setting}")
        port = vb.free_port()
        config = vb.plain_config(folder, db.engine_url(label), port, ingest_only)
        vb.subprocess.run([str(ROOT / ".venv" / "bin" / "aiguillage"), "db", "upgrade",
                           "--config", str(config)], check=True, capture_output=True)
        engine = vb.start(vb.engine_command(config, 0), "listening")
        try:
            if args.trace:  # every thread started (perf trace -p follows those it finds)
                vb.load(port, 2000, args.connections, 1)
                time.sleep(1.0)
            before = snapshot(db.name)
            perf = None if not args.perf else vb.subprocess.Popen(
                ["perf", "record", "-q", "-a", "-F", "1999", "-o", f"{args.perf}.{label}"],
                stdout=vb.subprocess.DEVNULL, stderr=vb.subprocess.DEVNULL)
            counter = None if not args.trace else CallCounter(engine.pid,
                                                               folder / "engine.perf-stat")
            if counter is not None:
                time.sleep(1.5)  # attached
            result = vb.measure(engine, port, args, args.connections, 1, db.server_database)
            calls = None if counter is None else counter.stop()
            if perf is not None:  # the pids to read its samples of: this database's
                pids = sorted(vb.backend_cpu(db.name))
                perf.send_signal(vb.signal.SIGINT)
                perf.wait()
                print(f"perf samples in {args.perf}.{label}; backends: "
                      f"{','.join(map(str, pids))}")
        finally:
            vb.stop(engine)
        time.sleep(1.0)
        after = snapshot(db.name)
    acked = max(result["acked_ok"], 1)
    print(f"== {label}: {result['msgs_per_s']} ACK/s, engine "
          f"{result['cpu_us_per_msg']} us/msg (sys {result['sys_us_per_msg']}), postgres "
          f"{result['pg_cpu_us_per_msg']} us/msg; per message:")
    for key in sorted(after):
        delta = (after[key] or 0) - (before.get(key) or 0)
        if abs(delta) >= 0.005 * acked:
            print(f"  {key:48s} {delta / acked:10.3f}")
    if calls is not None:
        print_calls(calls, engine.pid, acked)


# the calls counted by --trace: the file destination's, the database's, the reactor's
CALLS = ("openat", "write", "close", "linkat", "syncfs", "statfs", "newfstatat", "sendto",
         "recvfrom", "poll", "futex", "epoll_wait", "read", "mprotect")


class CallCounter:
    """Some system calls of one process, counted by thread while it runs (``perf stat
    --per-thread`` on the calls' tracepoints: counted in the kernel, no event copied out,
    so that the engine runs at about its untraced speed, unlike under ``perf trace``)."""

    def __init__(self, pid: int, output: Path):
        self.output = output
        events = ",".join(f"syscalls:sys_enter_{call}" for call in CALLS)
        self.process = vb.subprocess.Popen(
            ["perf", "stat", "--per-thread", "-x", ",", "-e", events, "-p", str(pid),
             "-o", str(output)], stdout=vb.subprocess.DEVNULL, stderr=vb.subprocess.DEVNULL)

    def stop(self) -> dict[str, collections.Counter]:
        """Detach; the calls counted, by thread id."""
        self.process.send_signal(vb.signal.SIGINT)
        self.process.wait(60)
        threads: dict[str, collections.Counter] = {}
        for line in self.output.read_text().splitlines():
            fields = line.split(",")
            if len(fields) < 4 or not fields[1].strip().isdigit():
                continue
            tid = fields[0].rsplit("-", 1)[-1]
            call = fields[3].removeprefix("syscalls:sys_enter_")
            threads.setdefault(tid, collections.Counter())[call] += int(fields[1])
        return threads


def print_calls(calls: dict, pid: int, acked: int) -> None:
    """The engine's system calls per message, by thread (those of ``CALLS`` only)."""
    total = sum(sum(c.values()) for c in calls.values())
    print(f"  engine system calls per message: {total / acked:.2f} (perf stat, by thread)")
    for tid, counted in sorted(calls.items(), key=lambda t: -sum(t[1].values())):
        if sum(counted.values()) / acked >= 0.01:
            label = "main thread" if tid == str(pid) else f"thread {tid}"
            print(f"    {label:<14} {sum(counted.values()) / acked:6.3f}: " + ", ".join(
                f"{c} {n / acked:.3f}" for c, n in counted.most_common(10)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--servers", default="engine,ingest")
    parser.add_argument("--work-dir", default=None)
    parser.add_argument("--explain", action="store_true",
                        help="log every statement's plan (auto_explain) in the server's log")
    parser.add_argument("--perf", metavar="FILE", help="sample every CPU with perf meanwhile")
    parser.add_argument("--trace", action="store_true",
                        help="count the engine's system calls by thread (perf stat)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pgstats-", dir=args.work_dir))
    for label in args.servers.split(","):
        run(label, label == "ingest", args, work)


if __name__ == "__main__":
    main()
