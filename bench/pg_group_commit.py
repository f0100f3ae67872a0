"""
Benchmark: one group commit of messages on PostgreSQL, without the MLLP and reactor around it.

Applies the engine's IngestOp (each message with a decision and one delivery, as on a plain
channel) in batches of the given sizes on a fresh database, the way the writer thread does,
and prints per batch size: wall time per batch, the writer thread's CPU per message, the CPU
per message of the PostgreSQL server process serving it, and what one batch sends (Sync and
Flush messages: each is a round trip).

``--transaction pipelined`` is what the store uses on PostgreSQL (engine.store.pgpipeline, the
duplicate check left to the unique index: engine.store.ops.IngestOp). ``--way lean`` writes
the batches as the store does when none holds a copy of a stored message (the plain inserts),
``full`` as it does after one that held a copy (engine.store.pgintake); both, alternated in
one run, compare the two statements under the same load;
``plain`` is SQLAlchemy's ``begin()``, to compare in the same run. ``plain`` also runs on a
tree from before pgpipeline (``PYTHONPATH=that-tree``), to compare the row writes.

    .venv/bin/python bench/pg_group_commit.py [--sizes 1,8,64] [--batches 200] [--rounds 3]
        [--transaction pipelined,plain] [--way lean,full]

PostgreSQL at 127.0.0.1:5432; the database is created and dropped by the run.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import psycopg

from engine import status as st
from engine.store import migrate, ops
from engine.store.rawsql import RawStatements
from engine.store.records import Decision, InboundRecord, NewDelivery
from engine.store.store import make_engine

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
RAW = (b"MSH|^~\\&|HIS|HOSP|LAB|HOSP|20260101120000||ADT^A01^ADT_A01|%d|P|2.5\r"
       b"PID|1||%d^^^HOSP||DOE^JOHN||19700101|M\r" + b"OBX|1|TX|||" + b"x" * 400 + b"\r")


class Messages:
    """Fresh inbound records, each with a TRANSFORMED decision and one delivery."""

    def __init__(self) -> None:
        self.count = 0

    def batch(self, size: int) -> list[InboundRecord]:
        records = []
        for _ in range(size):
            self.count += 1
            n = self.count
            records.append(InboundRecord(
                "plain", time.time(), "mllp://127.0.0.1:40000", RAW % (n, n % 500),
                st.RECEIVED, "HIS|HOSP", str(n), "ADT^A01^ADT_A01", "UNICODE UTF-8",
                decision=Decision(st.TRANSFORMED, deliveries=(NewDelivery("archive", n % 2),))))
        return records


def backend_cpu(conn) -> float:
    pid = conn.connection.driver_connection.info.backend_pid
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def sent_messages(conn, transaction, op, records) -> Counter:
    """The protocol messages one batch sends, from libpq's trace."""
    fd, path = tempfile.mkstemp()
    pgconn = conn.connection.driver_connection.pgconn
    pgconn.trace(fd)
    pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)
    try:
        op.prepare(records)
        with transaction(conn):
            results = op.apply(conn, records)
        op.finish(conn, results)
    finally:
        pgconn.untrace()
        os.close(fd)
    lines = [line.split("\t") for line in Path(path).read_text().splitlines()]
    os.unlink(path)
    return Counter(f[2].split()[0] for f in lines if len(f) > 2 and f[0] == "F")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1,8,64")
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--transaction", default="pipelined,plain")
    parser.add_argument("--way", default="lean", help="lean, full or both (lean,full)")
    args = parser.parse_args()
    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        engine = make_engine(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}")
        migrate.ensure_current(engine)
        run(engine, args)
        engine.dispose()
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def run(engine, args: argparse.Namespace) -> None:
    sql, message_ids = RawStatements(engine.dialect), ops.IdAllocator(engine, "messages")
    delivery_ids = ops.IdAllocator(engine, "deliveries")
    # as the store has it: the duplicate check is left to the unique index (pgintake)
    ways = args.way.split(",")
    kinds = {"plain": lambda conn: conn.begin()}
    if "pipelined" in args.transaction:
        from engine.store import pgpipeline

        kinds["pipelined"] = pgpipeline.PipelinedTransactions(engine)
    # one op and connection per transaction kind and way
    chosen = [(kind, way) for kind in args.transaction.split(",") for way in ways]
    ingest = {chosen_one: ops.IngestOp(message_ids, "bench", sql, delivery_ids)
              for chosen_one in chosen}
    connections = {chosen_one: engine.connect() for chosen_one in chosen}
    messages = Messages()

    def write(kind: str, way: str, records: list[InboundRecord]) -> None:
        op, conn = ingest[kind, way], connections[kind, way]
        if way == "full":
            op.write_full_way(1)
        op.prepare(records)
        with kinds[kind](conn):
            results = op.apply(conn, records)
        op.finish(conn, results)

    for kind, way in chosen:
        for _ in range(10):  # psycopg prepares its statements after a few runs
            write(kind, way, messages.batch(8))
        if way == "full":
            ingest[kind, way].write_full_way(1)
        sent = sent_messages(connections[kind, way], kinds[kind], ingest[kind, way],
                             messages.batch(8))
        print(f"{kind}/{way}: a batch of 8 sends {sent['Sync']} Sync, {sent['Flush']} Flush, "
              f"{sent['Query']} simple Query, {sent['Execute']} Execute")
    figures: dict[tuple[int, str], list[tuple[float, float, float]]] = {}
    for _ in range(args.rounds):
        for size in [int(s) for s in args.sizes.split(",")]:
            for kind, way in chosen:
                conn = connections[kind, way]
                wall, cpu, server = time.perf_counter(), time.thread_time(), backend_cpu(conn)
                for _ in range(args.batches):
                    write(kind, way, messages.batch(size))
                count = args.batches * size
                figures.setdefault((size, f"{kind}/{way}"), []).append((
                    (time.perf_counter() - wall) / args.batches * 1e3,
                    (time.thread_time() - cpu) / count * 1e6,
                    (backend_cpu(conn) - server) / count * 1e6))
    for (size, kind), rows in sorted(figures.items()):
        print(f"batch {size:>3} {kind:<14}: wall ms/batch {[round(r[0], 2) for r in rows]}, "
              f"writer CPU us/msg {[round(r[1]) for r in rows]}, "
              f"PostgreSQL CPU us/msg {[round(r[2]) for r in rows]}")
    for conn in connections.values():
        conn.close()


if __name__ == "__main__":
    main()
