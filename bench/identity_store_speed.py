"""
How fast the stored master patient index resolves an incoming patient.

Loads the indexed persons of a seeded world (bench/identity_data.py) into a
fresh store (SQLite file and/or PostgreSQL database) with the bulk loader,
then times, per query of the bench's hard-case mix:

* ``match``: the decision alone (identity.store.index.match, read-only);
* ``resolve``: the whole operation the engine runs per message, in its own
  transaction: match, then link, or create a person (and open a review item),
  with the history event; committed.
* ``register``: the same through the index service the engine calls
  (identity.store.service.StoreIdentityIndex.register: identifiers looked up,
  the INS to the matcher, the review reasons), one transaction each, committed;
* ``search``: a PDQ demographic search through the service (the query's family
  name and the first three letters of its first name, first page of 10, with the
  total).

``--persons 1000000`` is the issue's large index (bulk load: some minutes per
database). ``--only`` restricts the timings to some of the four.

Wall-clock figures, and the CPU time of this process (on SQLite the whole work; on
PostgreSQL the client's share). On PostgreSQL the server's share is read too, from
/proc of the backends serving the bench's database (pg_stat_activity), so that
"per core" is operations per CPU-second of client and server together.
``--threads N`` (N > 1) then runs resolve and register again from N threads, each
on its own connection: the throughput when round trips overlap. The machine may be
shared: the load average is printed; rerun before believing one figure.

    .venv/bin/python bench/identity_store_speed.py --persons 100000 --queries 2000
    .venv/bin/python bench/identity_store_speed.py --persons 100000 --backend postgresql --threads 2
    nice .venv/bin/python bench/identity_store_speed.py --persons 1000000 --queries 2000
"""
from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from identity_data import SYSTEMS, QueryMaker, World  # noqa: E402

from engine.store import migrate  # noqa: E402
from engine.store.store import make_engine  # noqa: E402
from sqlalchemy import text  # noqa: E402
from identity.model import LocalIdentifier  # noqa: E402
from identity.store import resolve  # noqa: E402
from identity.store.bulk import bulk_load  # noqa: E402
from identity.store.index import match  # noqa: E402
from identity.service import SearchCriteria  # noqa: E402
from identity.store.service import StoreIdentityIndex  # noqa: E402

TIMINGS = ("match", "resolve", "register", "search")

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@contextlib.contextmanager
def database(backend: str):
    """A fresh database URL of ``backend``, removed afterwards."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="idbench-") as folder:
            yield f"sqlite:///{folder}/bench.db"
        return
    import psycopg

    name = f"aiguillage_idbench_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def figures(label: str, seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    q = statistics.quantiles(ms, n=100)
    return (f"{label:13} ms  p50 {q[49]:.2f}  p95 {q[94]:.2f}  p99 {q[98]:.2f}  max {ms[-1]:.1f}"
            f"   rate {len(ms) / (sum(ms) / 1000):.0f}/s")


_BACKENDS = text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")


def server_cpu(engine) -> float:
    """CPU seconds spent so far by the PostgreSQL backends serving this database (0 on SQLite:
    its work is in this process's CPU time). Reads /proc: the server is on this machine."""
    if engine.dialect.name != "postgresql":
        return 0.0
    with engine.connect() as conn:
        pids = [row.pid for row in conn.execute(_BACKENDS)]
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def timed(queries: list, call) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of ``call(n, query)`` for each query."""
    wall, cpu = [], []
    for n, query in enumerate(queries):
        w, c = time.perf_counter(), time.process_time()
        call(n, query)
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    return wall, cpu


def in_threads(engine, label: str, queries: list, call, threads: int) -> None:
    """Run ``call(n, query)`` for the queries from ``threads`` threads; print the throughput
    and the operations per CPU-second of client and server."""
    # warm one pooled connection per thread, so that the backends are there to be measured
    connections = [engine.connect() for _ in range(threads)]
    for conn in connections:
        conn.close()
    shares = [list(enumerate(queries))[i::threads] for i in range(threads)]
    server, cpu, wall = server_cpu(engine), time.process_time(), time.perf_counter()
    workers = [threading.Thread(target=lambda share=share: [call(n, q) for n, q in share])
               for share in shares]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    server = server_cpu(engine) - server
    print(f"{label + f' {threads} threads':22} rate {len(queries) / wall:.0f}/s   per core "
          f"{len(queries) / (cpu + server):.0f}/s (client {cpu:.2f} s + server {server:.2f} s CPU)",
          flush=True)


def run(backend: str, world: World, queries: list, only: tuple[str, ...], threads: int) -> None:
    with database(backend) as url:
        engine = make_engine(url, sqlite_synchronous="NORMAL")
        migrate.ensure_current(engine)
        records = ((LocalIdentifier(SYSTEMS[0], pid), world.master(pid)) for pid in world.indexed)
        started = time.perf_counter()
        with engine.begin() as conn:
            loaded = bulk_load(conn, records, "operator:bench")
        print(f"{backend}: loaded {loaded} persons in {time.perf_counter() - started:.1f} s", flush=True)
        if "match" in only:
            with engine.connect() as conn:
                server = server_cpu(engine)
                wall, cpu = timed(queries, lambda n, query: match(conn, query.traits))
                report("match", wall, cpu, server_cpu(engine) - server)

        def one(n: int, query) -> None:
            with engine.begin() as conn:  # transaction boundary: one incoming patient
                resolve(conn, query.traits, f"message:{n}", LocalIdentifier(query.system, f"Q{n}"))

        if "resolve" in only:
            server = server_cpu(engine)
            wall, cpu = timed(queries, one)
            report("resolve", wall, cpu, server_cpu(engine) - server)
        service = StoreIdentityIndex(engine)

        def register(n: int, query) -> None:
            service.register([LocalIdentifier(query.system, f"R{n}")], query.traits,
                             cause=f"message:r{n}")

        if "register" in only:
            server = server_cpu(engine)
            wall, cpu = timed(queries, register)
            report("register", wall, cpu, server_cpu(engine) - server)
        if threads > 1:
            if "resolve" in only:
                in_threads(engine, "resolve", queries, lambda n, q: one(n + len(queries), q),
                           threads)
            if "register" in only:
                in_threads(engine, "register", queries,
                           lambda n, q: register(n + len(queries), q), threads)

        def search(n: int, query) -> None:
            t = query.traits
            given = t.first_names[0][:3] if t.first_names else None
            criteria = SearchCriteria(family_name=t.birth_name or t.used_name, given_name=given)
            service.search(criteria, 0, 10)

        if "search" in only:
            server = server_cpu(engine)
            wall, cpu = timed(queries, search)
            report("search", wall, cpu, server_cpu(engine) - server)
        print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
        engine.dispose()


def report(label: str, wall: list[float], cpu: list[float], server: float) -> None:
    print(figures(f"{label} wall", wall))
    print(figures(f"{label} cpu", cpu), flush=True)
    if server:
        print(f"{label:13} per core {len(wall) / (sum(cpu) + server):.0f}/s "
              f"(client {sum(cpu):.2f} s + server {server:.2f} s CPU)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1,
                        help="also run resolve and register from this many threads (if > 1)")
    parser.add_argument("--only", default=",".join(TIMINGS),
                        help="comma-separated timings among " + ", ".join(TIMINGS))
    args = parser.parse_args()
    only = tuple(args.only.split(","))
    if set(only) - set(TIMINGS):
        parser.error(f"--only: unknown timings {sorted(set(only) - set(TIMINGS))}")
    world = World(args.persons, seed=args.seed)
    queries = QueryMaker(world).queries(args.queries)
    print(f"{len(world.indexed)} indexed persons, {len(queries)} queries (seed {args.seed})", flush=True)
    for backend in (("sqlite", "postgresql") if args.backend == "both" else (args.backend,)):
        run(backend, world, queries, only, args.threads)


if __name__ == "__main__":
    main()
