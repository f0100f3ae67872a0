"""
Benchmark tool: instructions the engine's process executes per message on a plain channel,
counted by valgrind's callgrind, which a loaded machine does not disturb (CPU time does).

Runs the engine (``--workers 0``: one process, reactor and writer threads both counted) under
``valgrind --tool=callgrind`` twice, on vs_baseline.py's plain channel with its destination
down (intake alone), once for ``--few`` messages and once for ``--many``, and prints the
difference divided by the difference in messages: what one message costs, start-up excluded.
System calls are counted as the instructions that make them, not the kernel's work (the
fsync of a commit, the pages it writes): bench/wal_frames.py counts the pages. Slow: the
engine runs some 50 times slower under callgrind (minutes per run).

    .venv/bin/python bench/callgrind_plain.py [--few 400] [--many 2400] [--keep DIR]
        [--store sqlite|postgresql] [--connections 8] [--server engine|baseline]

It prints the instructions per message of the whole process, then of its main thread (the
reactor: ``(below main)`` in ``callgrind_annotate --inclusive=yes``) and of the others (the
group-commit writer: ``start_thread``). ``--server baseline`` counts bench/baseline_server.py
instead: what Twisted and a writer thread cost at the least, for comparison.

``--store postgresql``: the engine's store is a fresh database on 127.0.0.1:5432 for each run
(the server's own work is not counted, only the engine's: its statements, its psycopg).
"""
from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from vs_baseline import Database, free_port, load, plain_config  # noqa: E402

RUN = "import sys; from engine.cli.main import main; sys.argv = ['aiguillage'] + sys.argv[1:]; main()"


def instructions(messages: int, keep: Path, store: str = "sqlite", connections: int = 8,
                 server: str = "engine") -> int:
    """Instructions of the server's whole run (start, ``messages``, stop)."""
    with tempfile.TemporaryDirectory() as tmp, Database(store, Path(tmp)) as db:
        port = free_port()
        if server == "baseline":
            command = [str(ROOT / "bench" / "baseline_server.py"), "--port", str(port),
                       "--store", db.baseline_store()]
        else:
            config = plain_config(Path(tmp) / "engine", db.engine_url("engine"), port,
                                  ingest_only=True)
            subprocess.run([sys.executable, "-c", RUN, "db", "upgrade", "--config",
                            str(config)], check=True, capture_output=True, cwd=ROOT)
            command = ["-c", RUN, "run", "--config", str(config), "--workers", "0"]
        out = keep / f"callgrind.{messages}"
        engine = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable,
             *command],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
        for line in engine.stdout:
            if "listening" in line:
                break
        result = load(port, messages, connections, None)
        if result["acked_ok"] != messages:
            raise RuntimeError(f"{result['acked_ok']} of {messages} acknowledged")
        time.sleep(2)  # the lanes' last turn
        return stopped_count(engine)


def stopped_count(engine: subprocess.Popen) -> int:
    """Stop ``engine`` (run under callgrind, its output on a pipe) with SIGTERM: the
    instructions callgrind reports for its whole run."""
    engine.send_signal(signal.SIGTERM)
    rest = engine.stdout.read()
    engine.wait()
    found = re.search(r"Collected : (\d+)", rest)
    if found is None:
        raise RuntimeError(f"no instruction count from callgrind: {rest[-400:]}")
    return int(found.group(1))


def by_thread(path: Path) -> tuple[int, int]:
    """Instructions of the main thread (the reactor) and of the others in one callgrind
    file: the inclusive counts of ``(below main)`` and ``start_thread``."""
    out = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100",
                          str(path)], capture_output=True, text=True, check=True).stdout

    def inclusive(name: str) -> int:
        found = re.search(r"^\s*([\d,]+) \([^)]*\)\s+\S*" + re.escape(name) + " ", out,
                          re.M)
        return int(found.group(1).replace(",", "")) if found else 0

    return inclusive("(below main)"), inclusive("start_thread")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    parser.add_argument("--few", type=int, default=400)
    parser.add_argument("--many", type=int, default=2400)
    parser.add_argument("--keep", type=Path, help="keep callgrind's files in this folder")
    parser.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--server", choices=["engine", "baseline"], default="engine")
    args = parser.parse_args()
    keep = args.keep or Path(tempfile.mkdtemp(prefix="aiguillage-callgrind-"))
    keep.mkdir(parents=True, exist_ok=True)
    few, many = (instructions(n, keep, args.store, args.connections, args.server)
                 for n in (args.few, args.many))
    count = args.many - args.few
    print(f"{few:,} instructions for {args.few} messages, {many:,} for {args.many}: "
          f"{(many - few) / count:,.0f} per message (files in {keep})")
    (main_few, other_few), (main_many, other_many) = (
        by_thread(keep / f"callgrind.{n}") for n in (args.few, args.many))
    print(f"per message: reactor (main thread) {(main_many - main_few) / count:,.0f}, "
          f"other threads (writer) {(other_many - other_few) / count:,.0f}")


if __name__ == "__main__":
    main()
