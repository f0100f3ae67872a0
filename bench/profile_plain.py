"""
Benchmark tool: where the engine's CPU goes on a plain channel, per thread.

Starts the engine pinned on core 0 on vs_baseline.py's plain channel (intake alone with its
destination down, or with its ``file`` destination), sends ``--messages`` from the load client
on core 1, and prints:

- each thread's CPU per message, read from /proc (the reactor thread and the group-commit
  writer are the two that count);
- for the reactor thread and the writer thread, the functions holding the most CPU, from
  cProfile with ``time.thread_time`` as its clock, so that a thread waiting (for epoll, for
  fsync, for the GIL) is not counted. cProfile slows Python code several times over, not
  system calls: read its shares as an ordering, and the /proc figures as the cost.

    .venv/bin/python bench/profile_plain.py [--messages 8000] [--destination down|file]
        [--top 30]
"""
from __future__ import annotations

import argparse
import os
import pstats
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from vs_baseline import (  # noqa: E402
    CLOCK_TICKS, free_port, load, pinned, plain_config, tree_cpu)


def child(config: str, out: str) -> None:
    """In the engine's process: ``aiguillage run`` with both threads profiled."""
    import cProfile
    import time

    from engine.cli.main import main
    from engine.store import writer

    run_writer = writer.GroupCommitWriter._run

    def profiled_run(self: writer.GroupCommitWriter) -> None:
        profile = cProfile.Profile(time.thread_time)
        profile.enable()
        try:
            run_writer(self)
        finally:
            profile.disable()
            profile.dump_stats(out + ".writer")

    writer.GroupCommitWriter._run = profiled_run
    sys.argv = ["aiguillage", "run", "--config", config, "--workers", "0"]
    profile = cProfile.Profile(time.thread_time)
    profile.enable()
    try:
        main()
    except SystemExit:
        pass
    finally:
        profile.disable()
        profile.dump_stats(out + ".reactor")


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) of each thread of ``pid``, by native thread id."""
    found = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        found[int(task.name)] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return found


def profile(args: argparse.Namespace, folder: Path) -> str:
    port = free_port()
    config = plain_config(folder / "engine", f"sqlite:///{folder / 'engine.db'}", port,
                          ingest_only=args.destination == "down")
    subprocess.run([str(ROOT / ".venv" / "bin" / "aiguillage"), "db", "upgrade", "--config",
                    str(config)], check=True, capture_output=True)
    out = str(folder / "profile")
    engine = subprocess.Popen(pinned(0) + [sys.executable, __file__, "--child", str(config),
                                           out], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    for line in engine.stdout:
        if "listening" in line:
            break
    before, threads_before = tree_cpu(engine.pid), thread_cpu(engine.pid)
    result = load(port, args.messages, 8, 1)
    cpu, threads_after = tree_cpu(engine.pid) - before, thread_cpu(engine.pid)
    engine.send_signal(signal.SIGTERM)
    engine.wait(120)
    acked = max(result["acked_ok"], 1)
    print(f"{result['acked_ok']} ACKs at {result['msgs_per_s']}/s (profiled), "
          f"{cpu / acked * 1e6:.1f} us CPU/message")
    for tid, seconds in sorted(threads_after.items()):
        used = seconds - threads_before.get(tid, 0.0)
        if used > 0.01:
            print(f"  thread {tid}{' (reactor)' if tid == engine.pid else ''}: "
                  f"{used / acked * 1e6:6.1f} us/message")
    return out


def report(out: str, top: int) -> None:
    for thread in ("reactor", "writer"):
        path = f"{out}.{thread}"
        if not os.path.exists(path):
            print(f"{thread}: no profile written")
            continue
        print(f"--- {thread} thread, by CPU of the function itself (cProfile, thread_time)")
        pstats.Stats(path).sort_stats("tottime").print_stats(top)


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    parser.add_argument("--messages", type=int, default=8000)
    parser.add_argument("--destination", choices=["down", "file"], default="down")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        report(profile(args, Path(tmp)), args.top)


if __name__ == "__main__":
    main()
