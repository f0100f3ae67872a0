"""
How fast the stored master patient index resolves an incoming patient.

Loads the indexed persons of a seeded world (bench/identity_data.py) into a
fresh store (SQLite file and/or PostgreSQL database) with the bulk loader,
then times, per query of the bench's hard-case mix:

* ``match``: the decision alone (Matcher on the store-backed index, read-only);
* ``resolve``: the whole operation the engine runs per message, in its own
  transaction: match, then link, or create a person (and open a review item),
  with the history event; committed.

Wall-clock figures (the machine may be shared: rerun before believing one).

    .venv/bin/python bench/identity_store_speed.py --persons 100000 --queries 2000
"""
from __future__ import annotations

import argparse
import contextlib
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from identity_data import SYSTEMS, QueryMaker, World  # noqa: E402

from engine.store import migrate  # noqa: E402
from engine.store.store import make_engine  # noqa: E402
from identity.matching import Matcher  # noqa: E402
from identity.model import LocalIdentifier  # noqa: E402
from identity.store import resolve  # noqa: E402
from identity.store.bulk import bulk_load  # noqa: E402
from identity.store.index import StoreCandidateIndex  # noqa: E402

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
    return (f"{label:8} ms  p50 {q[49]:.2f}  p95 {q[94]:.2f}  p99 {q[98]:.2f}  max {ms[-1]:.1f}"
            f"   rate {len(ms) / (sum(ms) / 1000):.0f}/s")


def run(backend: str, world: World, queries: list) -> None:
    with database(backend) as url:
        engine = make_engine(url, sqlite_synchronous="NORMAL")
        migrate.ensure_current(engine)
        records = ((LocalIdentifier(SYSTEMS[0], pid), world.master(pid)) for pid in world.indexed)
        started = time.perf_counter()
        with engine.begin() as conn:
            loaded = bulk_load(conn, records, "operator:bench")
        print(f"{backend}: loaded {loaded} persons in {time.perf_counter() - started:.1f} s")
        with engine.connect() as conn:
            matcher = Matcher(StoreCandidateIndex(conn))
            timed = []
            for query in queries:
                t = time.perf_counter()
                matcher.resolve(query.traits)
                timed.append(time.perf_counter() - t)
        print(figures("match", timed))
        timed = []
        for n, query in enumerate(queries):
            identifier = LocalIdentifier(query.system, f"Q{n}")
            t = time.perf_counter()
            with engine.begin() as conn:  # transaction boundary: one incoming patient
                resolve(conn, query.traits, f"message:{n}", identifier)
            timed.append(time.perf_counter() - t)
        print(figures("resolve", timed))
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    world = World(args.persons, seed=args.seed)
    queries = QueryMaker(world).queries(args.queries)
    print(f"{len(world.indexed)} indexed persons, {len(queries)} queries (seed {args.seed})")
    for backend in (("sqlite", "postgresql") if args.backend == "both" else (args.backend,)):
        run(backend, world, queries)


if __name__ == "__main__":
    main()
