"""
Benchmark: what a mapping costs the engine end to end (MLLP in -> persisted -> MLLP out).

The same load as bench/mllp_throughput.py (its harness: engine and sink in processes of their
own, C concurrent senders each waiting for its ACK), run on two channels that differ only by
their ``steps:``:

- plain: the routing-only channel;
- mapped: the same channel carrying the 10-step ADT mapping of bench/mapping_speed.py
  (``ADT_STEPS``, translating through samples/tables/sex-hl7-to-fhir.yaml).

The machine this runs on is shared and noisy, so the runs alternate (plain, mapped, plain,
mapped...), each on a fresh store, and every pair's ratio is printed with its cost,
``1 - mapped / plain``, for end-to-end deliveries/s and for ingest ACKs/s, then the median
cost over the pairs. The target: a mapping costs no more than 25 % end to end.

    .venv/bin/python bench/mapping_cost.py [--messages 20000] [--connections 8] [--pairs 2]
        [--store sqlite|sqlite-normal|postgresql]

Figures (2 cores shared with other work, Debian python3.11, SQLite fsync per group commit,
--messages 20000 --connections 8 --pairs 3): see the bench section of README.md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from mapping_speed import ADT_STEPS  # noqa: E402
from mllp_throughput import STORES, run_one  # noqa: E402

KINDS = ("plain", "mapped")
FIGURES = "FIGURES "


def channel_sections(kind: str) -> dict | None:
    """What the ``kind`` channel adds to the routing-only bench channel."""
    if kind == "plain":
        return None
    return {"tables": {"sex-hl7-to-fhir": str(ROOT / "samples/tables/sex-hl7-to-fhir.yaml")},
            "steps": ADT_STEPS}


def run_child(kind: str, args: argparse.Namespace) -> dict:
    """One run in a process of its own (a reactor runs once per process); its figures."""
    command = [sys.executable, __file__, "--child", kind, "--store", args.store,
               "--messages", str(args.messages), "--connections", str(args.connections),
               "--lanes", str(args.lanes)]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
    figures = None
    for line in done.stdout.splitlines():
        if line.startswith(FIGURES):
            figures = json.loads(line[len(FIGURES):])
        else:
            print(f"  {kind:>6} {line}", flush=True)
    if figures is None:
        raise RuntimeError(f"the {kind} run printed no figures")
    return figures


def cost(plain: float, mapped: float) -> float:
    """The share of ``plain`` throughput lost with the mapping, in %."""
    return (1 - mapped / plain) * 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--lanes", type=int, default=4)
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--store", choices=STORES, default="sqlite")
    parser.add_argument("--child", choices=KINDS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        figures = run_one(args.store, args.messages, args.connections, args.lanes, False,
                          channel_sections(args.child))
        print(FIGURES + json.dumps(figures), flush=True)
        return
    print(f"interpreter: {sys.executable} ({platform.python_implementation()} "
          f"{platform.python_version()}), {os.cpu_count()} cores", flush=True)
    print(f"{args.store}: {args.messages} ADT over {args.connections} connections, "
          f"{args.lanes} lanes; mapped = the 10 steps of bench/mapping_speed.py", flush=True)
    pairs = []
    for number in range(1, args.pairs + 1):
        plain, mapped = (run_child(kind, args) for kind in KINDS)
        pairs.append((plain, mapped))
        print(f"pair {number}: end-to-end {plain['delivered_per_s']:.0f} -> "
              f"{mapped['delivered_per_s']:.0f} delivered/s "
              f"(ratio {mapped['delivered_per_s'] / plain['delivered_per_s']:.2f}, "
              f"cost {cost(plain['delivered_per_s'], mapped['delivered_per_s']):.1f} %); "
              f"ingest {plain['acks_per_s']:.0f} -> {mapped['acks_per_s']:.0f} ACKs/s "
              f"(cost {cost(plain['acks_per_s'], mapped['acks_per_s']):.1f} %); "
              f"ACK p50 {plain['p50_ms']:.1f} -> {mapped['p50_ms']:.1f} ms, "
              f"p99 {plain['p99_ms']:.1f} -> {mapped['p99_ms']:.1f} ms", flush=True)
    delivered = statistics.median(cost(p["delivered_per_s"], m["delivered_per_s"])
                                  for p, m in pairs)
    ingest = statistics.median(cost(p["acks_per_s"], m["acks_per_s"]) for p, m in pairs)
    print(f"median cost over {len(pairs)} pairs: end-to-end {delivered:.1f} %, "
          f"ingest {ingest:.1f} %  (target: end-to-end <= 25 %)")


if __name__ == "__main__":
    main()
