"""
Benchmark: the PostgreSQL server's CPU for two parts of the engine's cycle, each apart from
the rest (no MLLP, no reactor), for the tree on ``PYTHONPATH`` (run it against two trees,
alternated).

- ``outcomes``: a batch of ``--batch`` delivery outcomes (SENT), the store's statement
  (engine.store.pgoutcome) on a database filled with ``--queued`` QUEUED deliveries, each
  batch in a transaction of its own; prints the server process's CPU and the statement's
  wall time per delivery. ``--explain`` logs one batch's plan with its buffers and WAL
  records in the server's log (auto_explain, this session only).
- ``compression``: ``--rows`` copies of the load client's ORU (4.6 kB, the larger half of
  vs_baseline.py's mix) inserted 40 a statement into a bytea column, compressed by the
  server with pglz (its default) and with lz4; prints the server's CPU per row and the
  stored size.

    .venv/bin/python bench/pg_server_cost.py [--parts outcomes,compression] [--queued 30000]
        [--batch 94] [--rows 4000] [--rounds 2] [--explain]

PostgreSQL at 127.0.0.1:5432; the databases are created and dropped by the run.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import psycopg  # noqa: E402

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
LOAD = Path(os.environ.get("AIGUILLAGE_SHARED", ROOT.parent / "shared")) / "tools" / "mllp_load"


def server_cpu(conn: psycopg.Connection) -> float:
    fields = Path(f"/proc/{conn.info.backend_pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def wal_position(conn: psycopg.Connection) -> int:
    """Where the server's WAL ends now, in bytes (the whole server's: run it alone)."""
    return int(conn.execute("SELECT pg_current_wal_insert_lsn() - '0/0'").fetchone()[0])


class Database:
    def __enter__(self) -> str:
        self.name = f"bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(ADMIN, autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {self.name}")
        return self.name

    def __exit__(self, *exc) -> None:
        with psycopg.connect(ADMIN, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")


def outcomes(args: argparse.Namespace) -> None:
    from sqlalchemy.dialects import postgresql

    from callgrind_delivery import fill
    from engine import status as st
    from engine.store import pgoutcome

    with Database() as name:
        fill(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}", args.queued)
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{name}",
                             autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
            statement = pgoutcome.OutcomeStatement(
                postgresql.dialect().identifier_preparer.quote, "bench")
            ids = iter(range(1, args.queued + 1))

            def batch() -> None:
                rows = [(i, i, st.SENT, 1, 0.0, None, None, None, 0)[:len(pgoutcome.COLUMNS)]
                        for i in (next(ids) for _ in range(args.batch))]
                cursor = psycopg.RawCursor(conn)
                statement.execute(cursor, rows, time.time())
                cursor.fetchall()

            for _ in range(5):  # prepared from the sixth on (psycopg)
                with conn.transaction():
                    batch()
            left = args.queued // args.batch - 6
            for round_ in range(args.rounds):
                count = left // args.rounds
                cpu, spent, wal = server_cpu(conn), 0.0, wal_position(conn)
                for _ in range(count):
                    with conn.transaction():
                        began = time.perf_counter()
                        batch()
                        spent += time.perf_counter() - began
                n = count * args.batch
                print(f"outcomes, batches of {args.batch}, round {round_ + 1}: server CPU "
                      f"{(server_cpu(conn) - cpu) / n * 1e6:.1f} us/delivery, statement "
                      f"{spent / n * 1e6:.1f} us/delivery (wall), WAL "
                      f"{(wal_position(conn) - wal) / n:.0f} bytes/delivery")
            if args.explain:
                for setting in ("LOAD 'auto_explain'", "SET auto_explain.log_min_duration = 0",
                                "SET auto_explain.log_analyze = on",
                                "SET auto_explain.log_buffers = on",
                                "SET auto_explain.log_wal = on"):
                    conn.execute(setting)
                with conn.transaction():
                    batch()
                print("one batch's plan: in the server's log (auto_explain)")


def compression(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(LOAD))
    from hl7msgs import load_template

    before, after = load_template("oru", "20261122093000")
    rows = [before + b"X%09d" % n + after for n in range(args.rows)]
    with Database() as name, psycopg.connect(
            f"postgresql://postgres@127.0.0.1:5432/{name}", autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int, raw bytea)")
        for round_ in range(args.rounds):
            for method in ("pglz", "lz4"):
                conn.execute(f"SET default_toast_compression = {method}")
                conn.execute("TRUNCATE t")
                cpu = server_cpu(conn)
                with conn.cursor() as cursor:
                    for start in range(0, args.rows, 40):
                        cursor.execute("INSERT INTO t SELECT * FROM unnest(%s::int[], "
                                       "%s::bytea[])", (list(range(start, start + 40)),
                                                        rows[start:start + 40]))
                size = conn.execute("SELECT avg(pg_column_size(raw)) FROM t").fetchone()[0]
                print(f"compression {method}, round {round_ + 1}: server CPU "
                      f"{(server_cpu(conn) - cpu) / args.rows * 1e6:.1f} us/row, stored "
                      f"{float(size):.0f} of {len(rows[0])} bytes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default="outcomes,compression")
    parser.add_argument("--queued", type=int, default=30000)
    parser.add_argument("--batch", type=int, default=94)
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--explain", action="store_true")
    args = parser.parse_args()
    for part in args.parts.split(","):
        {"outcomes": outcomes, "compression": compression}[part](args)


if __name__ == "__main__":
    main()
