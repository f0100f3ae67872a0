"""
Benchmark: the CPU one lane's read of its queue costs (a connection from the pool, then
``queries.fetch_due``), on a SQLite store holding ``--queued`` QUEUED deliveries spread over
``--lanes`` lanes of one destination.

A lane reads its queue after every batch it sends, so when the lanes keep up with the intake
(small batches) this read is paid every few messages.

    .venv/bin/python bench/lane_read.py [--queued 5] [--lanes 1] [--reads 2000]
    .venv/bin/python bench/lane_read.py --queued 10000 --lanes 2 --reads 100

Prints the best of 5 rounds of CPU time per read (the process's, one thread).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import status as st  # noqa: E402
from engine.store import migrate, queries  # noqa: E402
from engine.store.schema import deliveries, messages  # noqa: E402
from engine.store.store import make_engine  # noqa: E402

PAYLOAD = b"MSH|^~\\&|HIS|HOSP|LAB|HOSP|20240101||ADT^A01|C1|P|2.5\r" * 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queued", type=int, default=5)
    parser.add_argument("--lanes", type=int, default=1)
    parser.add_argument("--reads", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/lane_read.db")
        migrate.ensure_current(engine, create_if_empty=True)
        with engine.begin() as conn:  # transaction boundary: the queue to read
            conn.execute(messages.insert(), [
                {"id": i, "channel": "c", "received_at": 0.0, "node": "n", "peer": "",
                 "status": st.TRANSFORMED, "raw": PAYLOAD} for i in range(1, args.queued + 1)])
            conn.execute(deliveries.insert(), [
                {"id": i, "message_id": i, "channel": "c", "destination": "d",
                 "lane": i % args.lanes, "status": st.QUEUED, "attempts": 0, "created_at": 0.0,
                 "updated_at": 0.0, "next_attempt_at": 0.0} for i in range(1, args.queued + 1)])
        best, due = float("inf"), []
        for _ in range(5):
            started = time.process_time()
            for _ in range(args.reads):
                with engine.connect() as conn:
                    due = queries.fetch_due(conn, "c", "d", 0, 500, 8 * 1024 * 1024)
            best = min(best, (time.process_time() - started) / args.reads)
        engine.dispose()
    print(f"{args.queued} queued on {args.lanes} lane(s), {len(due)} due per read: "
          f"{best * 1e6:.1f} us CPU per read (best of 5)")


if __name__ == "__main__":
    main()
