"""
Benchmark tool: the intake's group-commit writer thread alone, every commit of one size.

Commits ``--commits`` batches of ``--batch`` plain-channel records (decided before their
commit, one delivery on two lanes, as bench/wal_frames.py makes them; ADT and ORU from two
senders) through the store's own writer (engine.store.store.Store.ingest) on SQLite, each batch
submitted once the previous one has committed, after ``--prefill`` messages committed first.
Under load the batches' sizes follow the timing, and the writer's cost per message follows
the batches (bench/callgrind_plain.py); here every commit holds ``--batch`` messages, so two
trees' figures differ by their code only.

Prints the writer thread's CPU per message from /proc (user and system: noisy, the disk's
fdatasync included). ``--callgrind``: instead runs itself twice under valgrind's callgrind
(``--few`` and ``--commits`` commits) and prints the writer thread's instructions per message
(``start_thread``, inclusive, difference of the two runs), which noise does not move.
System calls: run it under ``strace -f -c`` (the main thread only waits on a queue).

    PYTHONPATH=TREE .venv/bin/python bench/writer_cost.py [--batch 5] [--commits 400]
        [--prefill 4000] [--page-size 4096] [--callgrind [--few 100]] [--keep DIR]

The reactor is a stand-in: the writer's ``callFromThread`` hands the batch's Deferreds to
the main thread through a queue, which fires them (Twisted's own wake-up is not counted).
"""
from __future__ import annotations

import argparse
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.append(str(ROOT))  # after PYTHONPATH: `PYTHONPATH=TREE` measures TREE's code
sys.path.append(str(ROOT / "bench"))

import engine  # noqa: E402
from engine.store.records import InboundRecord  # noqa: E402
from engine.store.store import Store  # noqa: E402
from wal_frames import records, with_page_size  # noqa: E402


class Reactor:
    """What the writer needs of a reactor: ``callFromThread``, run by the main thread."""

    def __init__(self) -> None:
        self.calls: queue.SimpleQueue = queue.SimpleQueue()

    def callFromThread(self, function: Callable, *args: Any) -> None:  # noqa: N802 (Twisted's)
        self.calls.put((function, args))

    def run_one(self) -> None:
        function, args = self.calls.get()
        function(*args)


def writer_cpu(store: Store) -> tuple[float, float]:
    """CPU seconds (user, system) of the writer thread so far."""
    tid = store.writer._thread.native_id
    fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = 100.0
    return int(fields[11]) / ticks, int(fields[12]) / ticks


def commit_all(store: Store, reactor: Reactor, items: list[InboundRecord], batch: int) -> None:
    """``items`` in commits of ``batch``, each submitted once the one before committed."""
    for start in range(0, len(items), batch):
        for record in items[start:start + batch]:
            store.ingest(record)
        reactor.run_one()


def run(args: argparse.Namespace) -> None:
    folder = Path(tempfile.mkdtemp(prefix="writer-cost-", dir=args.work_dir))
    reactor = Reactor()
    store = Store(f"sqlite:///{folder}/store.db", reactor, node="bench")
    if args.page_size:
        with_page_size(store.engine, args.page_size)
    store.start()
    made = records(args.prefill + args.commits * args.batch, kinds=("adt", "oru"))
    commit_all(store, reactor, made[:args.prefill], 50)
    before = writer_cpu(store)
    commit_all(store, reactor, made[args.prefill:], args.batch)
    after = writer_cpu(store)
    done = threading.Event()
    store.stop().addBoth(lambda _: done.set())
    while not done.is_set():
        reactor.run_one()
    messages = args.commits * args.batch
    user, system = ((b - a) / messages * 1e6 for a, b in zip(before, after))
    print(f"writer thread: user {user:.1f} + sys {system:.1f} us per message "
          f"({args.commits} commits of {args.batch})", flush=True)
    shutil.rmtree(folder)  # a store and its WAL: a few files


def callgrind(args: argparse.Namespace) -> None:
    keep = args.keep or Path(tempfile.mkdtemp(prefix="writer-cost-cg-"))
    keep.mkdir(parents=True, exist_ok=True)
    counts = []
    for commits in (args.few, args.commits):
        out = keep / f"callgrind.{commits}"
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                        sys.executable, __file__, "--batch", str(args.batch), "--commits",
                        str(commits), "--prefill", str(args.prefill),
                        "--page-size", str(args.page_size)],
                       check=True, capture_output=True, cwd=ROOT)
        counts.append(thread_instructions(out))
    per = (counts[1] - counts[0]) / ((args.commits - args.few) * args.batch)
    print(f"writer thread: {per:,.0f} instructions per message, commits of {args.batch}, "
          f"code of {Path(engine.__file__).parent.parent} (files in {keep})")


def thread_instructions(path: Path) -> int:
    """Inclusive instructions of ``start_thread`` (every thread but the main one)."""
    text = subprocess.run(["callgrind_annotate", "--inclusive=yes", str(path)],
                          capture_output=True, text=True, check=True).stdout
    found = re.search(r"^\s*([\d,]+) \([^)]*\)\s+\S*:start_thread ", text, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"no start_thread in {path}")
    return int(found.group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    parser.add_argument("--batch", type=int, default=5)
    parser.add_argument("--commits", type=int, default=400)
    parser.add_argument("--prefill", type=int, default=4000)
    parser.add_argument("--page-size", type=int, default=0,
                        help="bytes per page of the new store (default: SQLite's, 4096)")
    parser.add_argument("--callgrind", action="store_true")
    parser.add_argument("--few", type=int, default=100, help="commits of the shorter run")
    parser.add_argument("--keep", type=Path, help="keep callgrind's files in this folder")
    parser.add_argument("--work-dir", default=None)
    args = parser.parse_args()
    if args.callgrind:
        callgrind(args)
    else:
        run(args)


if __name__ == "__main__":
    main()
