"""
Benchmark: the CPU one delivery costs the PostgreSQL server and the engine's store threads,
without sockets or destinations: a lane's cycle of reading its due deliveries
(``queries.fetch_due`` as ``Store.read`` runs it in its thread) and recording them
SENT (``ops.DeliveryUpdateOp`` in a transaction, as the group-commit writer applies it).

Fills a fresh database with ``--queued`` messages, each with one QUEUED delivery on one of
two lanes (payloads of ~1 KB), then delivers them ``--batch`` at a time, alternating lanes
(a lane that keeps up with the intake reads a few deliveries at a time). Prints the CPU per
delivery of the server processes serving the database (from /proc) and of this process.

    .venv/bin/python bench/pg_delivery_cycle.py [--queued 20000] [--batch 8] [--rounds 3]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine import status as st  # noqa: E402
from engine.store import migrate, ops, queries  # noqa: E402
from engine.store.rawsql import RawStatements  # noqa: E402
from engine.store.records import DeliveryUpdate  # noqa: E402
from engine.store.store import Store  # noqa: E402

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
CHANNEL, DESTINATION, LANES = "plain", "archive", 2


def backend_cpu(name: str) -> float:
    import psycopg

    with psycopg.connect(ADMIN, autocommit=True) as conn:
        pids = [r[0] for r in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s", (name,))]
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def fill(engine, queued: int) -> None:
    from sqlalchemy import text

    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO messages (id, channel, received_at, node, peer, control_id, "
            "message_type, charset, status, raw) SELECT n, :c, 0, 'bench', '', 'C' || n, "
            "'ADT^A01', 'utf-8', 'TRANSFORMED', convert_to(repeat('PID|1||P' || n || '|', 60), "
            "'UTF8') FROM generate_series(1, :q) AS n"), {"c": CHANNEL, "q": queued})
        conn.execute(text(
            "INSERT INTO deliveries (id, message_id, channel, destination, lane, status, "
            "attempts, created_at, updated_at, next_attempt_at) SELECT n, n, :c, :d, n % 2, "
            "'QUEUED', 0, 0, 0, 0 FROM generate_series(1, :q) AS n"),
            {"c": CHANNEL, "d": DESTINATION, "q": queued})


def deliver(engine, store, op, batch: int) -> int:
    """Read and record every delivery, ``batch`` at a time, one lane then the other."""
    done, lane, empty = 0, 0, 0
    while empty < LANES:
        # what Store.read runs in its thread (a pooled connection, its transaction's end)
        due = store._read(queries.fetch_due, (CHANNEL, DESTINATION, lane, batch, 8 << 20), {})
        lane = (lane + 1) % LANES
        if not due:
            empty += 1
            continue
        empty = 0
        now = time.time()
        updates = tuple(DeliveryUpdate(d.delivery_id, d.message_id, st.SENT, d.attempts + 1,
                                       now) for d in due)
        op.prepare([updates])
        with engine.connect() as conn:
            with conn.begin():  # as the group-commit writer: one transaction
                results = op.apply(conn, [updates])
            op.finish(conn, results)  # after the commit, as the writer: its sends read
        done += len(due)
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queued", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import psycopg

    for round_ in range(args.rounds):
        name = f"bench_cycle_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(ADMIN, autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        try:
            store = Store(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}", None)
            engine = store.engine  # its threads are not started: this one runs its work
            migrate.ensure_current(engine, create_if_empty=True)
            fill(engine, args.queued)
            op = ops.DeliveryUpdateOp(RawStatements(engine.dialect), "bench")
            server, mine, wall = backend_cpu(name), time.process_time(), time.perf_counter()
            deliver(engine, store, op, args.batch)
            mine, wall = time.process_time() - mine, time.perf_counter() - wall
            server = backend_cpu(name) - server
            with engine.connect() as conn:
                left = queries.queued_count(conn, CHANNEL)
            engine.dispose()
            print(f"round {round_}: {args.queued} deliveries in batches of {args.batch}: "
                  f"server {server / args.queued * 1e6:.1f} us/delivery, this process "
                  f"{mine / args.queued * 1e6:.1f} us/delivery, {wall:.1f} s; {left} left")
        finally:
            with psycopg.connect(ADMIN, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


if __name__ == "__main__":
    main()
