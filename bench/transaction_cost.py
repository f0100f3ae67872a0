"""
Benchmark tool: what the SQLite group commit's transaction itself costs, per commit.

Runs ``--commits`` transactions of one row each through the tree's own
engine.store.rawsql.DBAPITransaction, the way the writer's batches run (a cursor of the
batch, ``execute_all``), on a WAL database with ``synchronous=OFF`` (no fsync: the CPU of the
begin, the commit and their Python only; the row's insert is the same in every tree).
``--callgrind``: runs itself twice under valgrind's callgrind (``--few`` and ``--commits``
transactions) and prints the instructions per transaction (the whole process: it has one
thread; difference of the two runs), which noise does not move. The writer's own thread,
with its real rows and its fsync, is bench/writer_cost.py's.

    PYTHONPATH=TREE .venv/bin/python bench/transaction_cost.py [--commits 4000]
        [--callgrind [--few 1000]]
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.append(str(ROOT))  # after PYTHONPATH: `PYTHONPATH=TREE` measures TREE's code


def run(commits: int) -> None:
    from sqlalchemy import create_engine, text

    from engine.store.rawsql import DBAPITransaction, cursor, execute_all

    folder = tempfile.mkdtemp(prefix="transaction-cost-")
    engine = create_engine(f"sqlite:///{folder}/t.db")
    with engine.begin() as conn:
        conn.execute(text("PRAGMA journal_mode=WAL"))
        conn.execute(text("CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT)"))
    with engine.connect() as conn:
        conn.connection.dbapi_connection.execute("PRAGMA synchronous=OFF")
        for i in range(commits):
            with DBAPITransaction(conn):
                cur = cursor(conn)
                execute_all(conn, [("INSERT INTO t VALUES (?, ?)", [(i, "x")])], cur)
                cur.close()
    engine.dispose()


def callgrind(few: int, many: int) -> None:
    totals = []
    for commits in (few, many):
        done = subprocess.run(
            ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
             __file__, "--commits", str(commits)], capture_output=True, text=True, check=True)
        found = re.search(r"Collected : (\d+)", done.stderr)
        if found is None:
            raise RuntimeError(done.stderr[-2000:])
        totals.append(int(found.group(1)))
    print(f"{(totals[1] - totals[0]) / (many - few):,.0f} instructions per transaction "
          f"(of one row, no fsync)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    parser.add_argument("--commits", type=int, default=4000)
    parser.add_argument("--callgrind", action="store_true")
    parser.add_argument("--few", type=int, default=1000, help="commits of the shorter run")
    args = parser.parse_args()
    if args.callgrind:
        callgrind(args.few, args.commits)
    else:
        run(args.commits)


if __name__ == "__main__":
    main()
