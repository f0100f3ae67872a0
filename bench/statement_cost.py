"""
Benchmark: what SQLAlchemy Core adds to one statement of the group commit, against the
sqlite3 cursor that engine/store/rawsql.py uses instead.

Inserts ``--rows`` one-row statements into the store's ``deliveries`` table (schema.py's
definition, a fresh SQLite file, one transaction) each way, and prints the time per
statement of each and their ratio; the best of ``--rounds``.

    .venv/bin/python bench/statement_cost.py [--rows 5000] [--rounds 3]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine  # noqa: E402

from engine.store import schema  # noqa: E402

ROW = dict(message_id=1, channel="plain", destination="archive", lane=0, status="QUEUED",
           attempts=0, created_at=1.0, updated_at=1.0, next_attempt_at=1.0, last_error=None,
           response=None, payload=None)


def one_round(rows: int) -> tuple[float, float]:
    """Seconds per statement: (SQLAlchemy Core, sqlite3 cursor)."""
    columns = ["id", *ROW]
    sql = (f"INSERT INTO deliveries ({', '.join(columns)}) "
           f"VALUES ({', '.join('?' * len(columns))})")
    with tempfile.TemporaryDirectory() as folder:
        engine = create_engine(f"sqlite:///{folder}/store.db")
        schema.metadata.create_all(engine)
        with engine.begin() as conn:
            started = time.perf_counter()
            for i in range(rows):
                conn.execute(schema.deliveries.insert(), [dict(ROW, id=i)])
            core = (time.perf_counter() - started) / rows
            cursor = conn.connection.driver_connection.cursor()
            started = time.perf_counter()
            for i in range(rows, 2 * rows):
                cursor.executemany(sql, [(i, *ROW.values())])
            raw = (time.perf_counter() - started) / rows
        engine.dispose()
    return core, raw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rounds = [one_round(args.rows) for _ in range(args.rounds)]
    core, raw = min(c for c, _ in rounds), min(r for _, r in rounds)
    print(f"one-row INSERT into deliveries: SQLAlchemy Core {core * 1e6:.1f} us, "
          f"sqlite3 cursor {raw * 1e6:.1f} us, ratio {core / raw:.1f}")


if __name__ == "__main__":
    main()
