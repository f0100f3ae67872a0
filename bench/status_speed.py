"""
Benchmark: how long ``aiguillage status`` and ``/metrics`` take on a large store.

Fills a fresh store with ``--messages`` messages (default 10 million) and one delivery each,
by bulk inserts straight into the tables (not through the engine: the point is the size, and
the engine would take hours), with the ``counts`` rows those rows make and the rate buckets
of a last minute at 600 messages/s received and sent.
Then times, best of ``--rounds`` (each on a connection of the pool, as a read thread does):

- status: what the CLI's ``status`` runs (``queries.status_counts``);
- metrics: what ``/metrics`` runs in its read thread (the same query, then the Prometheus
  text);
- recount: the scan that status used to be (``counters.recount``), once, for comparison.

    .venv/bin/python bench/status_speed.py [--backend sqlite|postgresql] [--messages N]
        [--keep DIR]

On PostgreSQL the rows are loaded with COPY into a database created for the run (dropped at
the end). Prints one line per figure.
"""
from __future__ import annotations

import argparse
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine import status as st  # noqa: E402
from engine.serve.admin import _metrics_body  # noqa: E402
from engine.store import counters, migrate, queries  # noqa: E402
from engine.store.store import make_engine  # noqa: E402

CHANNELS = ("adt", "lab", "rad")
DESTINATIONS = ("sink", "archive")
RECENT = 600 * 60  # the last minute at 600 messages/s
CHUNK = 50_000
RAW = b"MSH|^~\\&|HIS|HOSP|ENG|HOSP|20260101120000||ADT^A01^ADT_A01|%d|P|2.5\rPID|1||P%d\r"


def rows(count: int, now: float):
    """(message, delivery) tuples; the last RECENT ones received and sent in the last minute."""
    old = now - 86400 * 30
    for n in range(1, count + 1):
        recent = n > count - RECENT
        at = now - 60 * (count - n) / RECENT if recent else old + n * 0.2
        channel = CHANNELS[n % len(CHANNELS)]
        destination = DESTINATIONS[n % len(DESTINATIONS)]
        status = st.QUEUED if n % 1000 == 0 else st.SENT
        yield ((n, channel, at, "bench", "127.0.0.1:1", "HIS|HOSP", str(n), "ADT^A01^ADT_A01",
                "UNICODE UTF-8", st.TRANSFORMED, None, f"{n:064x}", None, RAW % (n, n)),
               (n, n, channel, destination, 0, status, 1 if status == st.SENT else 0, at, at,
                at, None, None, None))


MESSAGE_COLUMNS = ("id", "channel", "received_at", "node", "peer", "sender", "control_id",
                   "message_type", "charset", "status", "error", "dedupe_key", "duplicate_of",
                   "raw")
DELIVERY_COLUMNS = ("id", "message_id", "channel", "destination", "lane", "status", "attempts",
                    "created_at", "updated_at", "next_attempt_at", "last_error", "response",
                    "payload")


def fill(engine, count: int) -> dict:
    """Insert ``count`` messages and deliveries in chunks; the counts they make."""
    now, tally, batch = time.time(), counters.Tally(), []
    postgres = engine.dialect.name == "postgresql"
    for message, delivery in rows(count, now):
        tally.moved(message[1], counters.MESSAGE, None, message[9])
        tally.moved(delivery[2], delivery[3], None, delivery[5])
        batch.append((message, delivery))
        if len(batch) == CHUNK:
            (_copy if postgres else _insert)(engine, batch)
            batch = []
    if batch:
        (_copy if postgres else _insert)(engine, batch)
    with engine.begin() as conn:
        counters.add_core(conn, _last_minute(tally, count), "bench")
    return dict(tally.deltas)


def _last_minute(tally: counters.Tally, count: int) -> counters.Tally:
    """``tally`` with the last RECENT messages received, and their deliveries sent, in the
    minute before now (the fill takes many minutes; the rates count the last one)."""
    now = time.time()
    for n in range(max(1, count - RECENT + 1), count + 1):
        at = now - 60 * (count - n) / RECENT
        channel = CHANNELS[n % len(CHANNELS)]
        tally.happened(channel, counters.MESSAGE, at)
        tally.happened(channel, DESTINATIONS[n % len(DESTINATIONS)], at)
    return tally


def _insert(engine, batch) -> None:
    marks = lambda n: ", ".join("?" * n)  # noqa: E731
    with engine.begin() as conn:  # transaction boundary: one chunk
        cur = conn.connection.cursor()
        cur.executemany(f"INSERT INTO messages ({', '.join(MESSAGE_COLUMNS)}) VALUES "
                        f"({marks(len(MESSAGE_COLUMNS))})", [m for m, _ in batch])
        cur.executemany(f"INSERT INTO deliveries ({', '.join(DELIVERY_COLUMNS)}) VALUES "
                        f"({marks(len(DELIVERY_COLUMNS))})", [d for _, d in batch])


def _copy(engine, batch) -> None:
    with engine.begin() as conn:  # transaction boundary: one chunk
        cur = conn.connection.cursor()
        for table, columns, index in (("messages", MESSAGE_COLUMNS, 0),
                                      ("deliveries", DELIVERY_COLUMNS, 1)):
            with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in batch:
                    copy.write_row(row[index])


def best(engine, work, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        with engine.connect() as conn:
            work(conn)
        times.append(time.perf_counter() - started)
    return min(times)


def open_store(backend: str, folder: Path):
    if backend == "sqlite":
        return make_engine(f"sqlite:///{folder / 'status.db'}", sqlite_synchronous="NORMAL"), None
    import psycopg

    name = f"aiguillage_bench_{secrets.token_hex(4)}"
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres",
                         autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return make_engine(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"), name


def drop(name: str | None) -> None:
    if name:
        import psycopg

        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres",
                             autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--messages", type=int, default=10_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="build the SQLite store in this folder")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="aiguillage-status-"))
    engine, database = open_store(args.backend, folder)
    try:
        migrate.ensure_current(engine)
        started = time.perf_counter()
        fill(engine, args.messages)
        print(f"{args.backend}: filled {args.messages} messages and deliveries in "
              f"{time.perf_counter() - started:.0f} s")
        if engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")
        status = best(engine, queries.status_counts, args.rounds)
        metrics = best(engine, lambda c: _metrics_body(queries.status_counts(c), _NODE),
                       args.rounds)
        print(f"status  {status * 1000:8.1f} ms (best of {args.rounds})")
        print(f"metrics {metrics * 1000:8.1f} ms (best of {args.rounds})")
        with engine.connect() as conn:
            adt = queries.status_counts(conn)["adt"]
        print(f"adt: received {adt['received']}, rate {adt['rate']}/s (a third of 600/s)")
        recount = best(engine, counters.recount, 1)
        print(f"recount {recount * 1000:8.1f} ms (the scan status used to make)")
    finally:
        engine.dispose()
        drop(database)
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)


_NODE = {"writer_batches": 0, "writer_items": 0, "writer_busy_seconds": 0.0, "lanes": {}}

if __name__ == "__main__":
    main()
