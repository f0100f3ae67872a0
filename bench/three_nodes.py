"""
Three engine nodes on one PostgreSQL database, one SIGKILLed mid-stream, at full size.

Runs tests/e2e/test_nodes.py with ``AIGUILLAGE_NODES_MESSAGES`` (default here 30 000; the
test suite runs 3 000) and prints what the test prints (messages acknowledged, arrivals at
the sink, re-sends after the kill) with the wall time. The test's own checks apply: every
acknowledged message delivered, none re-sent after its SENT was recorded, per-patient order.

    .venv/bin/python bench/three_nodes.py [--messages 30000]
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
    args = parser.parse_args()
    env = dict(os.environ, AIGUILLAGE_NODES_MESSAGES=str(args.messages))
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider",
                           "tests/e2e/test_nodes.py"], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    figures = [line for line in done.stdout.splitlines() if " acked, " in line]
    print(f"{args.messages} messages planned over 3 nodes: "
          f"{figures[0] if figures else 'no figures'}; {elapsed:.1f} s, "
          f"{'passed' if done.returncode == 0 else 'FAILED'}")
    if done.returncode != 0:
        print(done.stdout[-4000:], done.stderr[-2000:], sep="\n")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
