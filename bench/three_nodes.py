"""
Three engine nodes on one PostgreSQL database, one SIGKILLed mid-stream, at full size; or
(``--workers-killed``) one node with three delivery workers, one of them SIGKILLed.

Runs tests/e2e/test_nodes.py with ``AIGUILLAGE_NODES_MESSAGES`` (default here 30 000; the
test suite runs 3 000), or tests/e2e/test_workers_killed.py (SQLite and PostgreSQL) with
``AIGUILLAGE_WORKERS_MESSAGES`` (the suite runs 2 400), and prints what the test prints
(messages acknowledged, arrivals at the sink, re-sends after the kill) with the wall time.
The test's own checks apply: every acknowledged message delivered, none re-sent after its
SENT was recorded, per-patient order.

    .venv/bin/python bench/three_nodes.py [--messages 30000] [--workers-killed]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=30_000)
    parser.add_argument("--workers-killed", action="store_true",
                        help="one node, three delivery workers, one killed (SQLite, PostgreSQL)")
    args = parser.parse_args()
    if args.workers_killed:
        test, variable, what = ("tests/e2e/test_workers_killed.py", "AIGUILLAGE_WORKERS_MESSAGES",
                                "one node with 3 workers (SQLite, then PostgreSQL)")
    else:
        test, variable, what = "tests/e2e/test_nodes.py", "AIGUILLAGE_NODES_MESSAGES", "3 nodes"
    env = dict(os.environ, **{variable: str(args.messages)})
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider",
                           test], cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    figures = [line.strip(".") for line in done.stdout.splitlines() if " acked, " in line]
    print(f"{args.messages} messages planned over {what}: "
          f"{'; '.join(figures) if figures else 'no figures'}; {elapsed:.1f} s, "
          f"{'passed' if done.returncode == 0 else 'FAILED'}")
    if done.returncode != 0:
        print(done.stdout[-4000:], done.stderr[-2000:], sep="\n")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
