"""
Benchmark: the engine from two (or more) source trees, alternated, pinned to one core with
the load client on the other: which of two versions spends less CPU per message, under the
same load of a shared machine.

Each round runs every tree once, in turn, on the plain channel of bench/vs_baseline.py:
``--mode ingest`` (destination down: intake alone, CPU until the last ACK) or ``--mode
engine`` (the ``file`` destination: CPU of the whole process until the last file is
written). Prints each run and the median CPU per message of each tree.

    git archive main | tar -x -C /tmp/main-tree     # a tree to compare with
    .venv/bin/python bench/ab_trees.py --mode engine --messages 10000 --rounds 3 \\
        --tree main=/tmp/main-tree --tree branch=.

Every tree runs with this checkout's interpreter (``.venv``), the tree first on PYTHONPATH.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import vs_baseline as vb  # noqa: E402

PYTHON = str(vb.ROOT / ".venv" / "bin" / "python")


def run_once(tree: Path, mode: str, messages: int, connections: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree), PYTHONDONTWRITEBYTECODE="1")
    with tempfile.TemporaryDirectory() as tmp:
        folder, port = Path(tmp) / "engine", vb.free_port()
        config = vb.plain_config(folder, f"sqlite:///{tmp}/engine.db", port, mode == "ingest")
        cli = [PYTHON, "-m", "engine.cli.main"]
        subprocess.run(cli + ["db", "upgrade", "--config", str(config)], check=True,
                       capture_output=True, env=env, cwd=tree)
        engine = subprocess.Popen(vb.pinned(0) + cli + ["run", "--config", str(config),
                                                        "--workers", "0"],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  env=env, cwd=tree)
        try:
            while "listening" not in (line := engine.stdout.readline()):
                if not line:
                    raise RuntimeError(f"the engine of {tree} ended before listening")
            before = vb.tree_cpu(engine.pid)
            result = vb.load(port, messages, connections, 1)
            if mode == "engine":  # the files too: delivery's CPU is the point
                out, deadline = folder / "out", time.time() + 300
                while vb._count(out) < result["acked_ok"] and time.time() < deadline:
                    time.sleep(0.05)
            cpu = vb.tree_cpu(engine.pid) - before
            result["cpu_us_per_msg"] = round(cpu / max(result["acked_ok"], 1) * 1e6, 1)
            return result
        finally:
            vb.stop(engine)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["ingest", "engine"], default="engine")
    parser.add_argument("--messages", type=int, default=10000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tree", action="append", required=True, help="NAME=PATH (repeat)")
    args = parser.parse_args()
    trees = dict(item.split("=", 1) for item in args.tree)
    cpu: dict[str, list[float]] = {name: [] for name in trees}
    for round_ in range(args.rounds):
        for name, path in trees.items():
            row = run_once(Path(path).resolve(), args.mode, args.messages, args.connections)
            cpu[name].append(row["cpu_us_per_msg"])
            print(f"{name:<10} round {round_}: {row['msgs_per_s']:>8} ACK/s  "
                  f"p99 {row['lat_ms']['p99']} ms  cpu {row['cpu_us_per_msg']} us/msg",
                  flush=True)
    for name, figures in cpu.items():
        print(f"{name:<10} {args.mode}: median {statistics.median(figures):.1f} us/msg "
              f"of CPU, runs {figures}")


if __name__ == "__main__":
    main()
