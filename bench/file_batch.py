"""
Benchmark: the ``file`` destination writing a batch, its files flushed together (one
``syncfs``, where the kernel has it) against each file flushed in turn; and, with
``--unnamed``, a batch of named temporary files renamed (channels.file_writes) against
anonymous files linked under their names (channels.file_unnamed, O_TMPFILE).

A lane that has a backlog (after an outage of its destination, say) hands the destination
batches of up to a hundred deliveries; this prints what each file of such a batch costs in
wall time and CPU (user + system) both ways, in a temporary directory next to the output
folders' usual disk (``--directory``, default the system's temporary folder).

    .venv/bin/python bench/file_batch.py [--batches 5] [--size 100] [--directory /tmp]
    .venv/bin/python bench/file_batch.py --no-flush --batches 20 --directory /dev/shm
    .venv/bin/python bench/file_batch.py --unnamed --prefill 20000 --batches 200 --size 14 \
        --directory DIR
    .venv/bin/python bench/file_batch.py --links --prefill 20000 --batches 100 --size 50 \
        --directory DIR

``--links``: anonymous files linked by their descriptor (``linkat`` with ``AT_EMPTY_PATH``)
against linked through their path in /proc/self/fd, alternated in one process.

The folder is kept (``--directory``'s ``file_batch-*``): deleting tens of thousands of files
would slow every file created on the disk for minutes after (bench/fsprobe.py), the next
run's and other people's; remove it when nobody measures.
"""
from __future__ import annotations

import argparse
import itertools
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from channels import file_unnamed, file_writes  # noqa: E402

RUNS = itertools.count()
PAYLOAD = b"MSH|^~\\&|HIS|HOSP|LAB|HOSP|20240101||ADT^A01|C1|P|2.5\rPID|1||P1\r" * 10


def cpu() -> float:
    return sum(cpu_split())


def cpu_split() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


def run(folder: Path, label: str, batches: int, size: int, fsync: bool = True,
        write: Any = file_writes.write_batch) -> None:
    run_number = next(RUNS)
    started_cpu, started = cpu(), time.perf_counter()
    started_system = cpu_split()[1]
    for b in range(batches):
        items = [(str(folder / f"{label}-{run_number}-{b}-{n}.hl7"), PAYLOAD)
                 for n in range(size)]  # new names: a name taken costs more both ways
        results = write(items, fsync=fsync)
        assert all(isinstance(r, str) for r in results), results
    files = batches * size
    user, system = cpu_split()
    print(f"{label:<22} {(time.perf_counter() - started) / files * 1e6:8.0f} us wall/file "
          f"{(user + system - started_cpu) / files * 1e6:6.1f} us CPU/file (system "
          f"{(system - started_system) / files * 1e6:.1f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--directory", default=None)
    parser.add_argument("--no-flush", action="store_true",
                        help="only the writes and renames, no flush: the Python and system-call "
                             "cost per file, apart from the disk (try --directory /dev/shm)")
    parser.add_argument("--unnamed", action="store_true",
                        help="renamed temporary files against anonymous files (O_TMPFILE)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternations of the two ways (--unnamed, --links)")
    parser.add_argument("--links", action="store_true",
                        help="anonymous files linked by descriptor against through /proc")
    parser.add_argument("--prefill", type=int, default=0,
                        help="empty files put in the directory first (a day's output)")
    args = parser.parse_args()
    if args.unnamed or args.links:
        tmp = tempfile.mkdtemp(prefix="file_batch-", dir=args.directory)  # kept: see above
        for number in range(args.prefill):
            (Path(tmp) / f"adt-in-{number:012d}.hl7").touch()
        linkat = file_unnamed._LINK_BY_DESCRIPTOR["linkat"]
        for _ in range(args.rounds):  # alternated, so that both see the same disk
            if args.links:
                file_unnamed._LINK_BY_DESCRIPTOR["linkat"] = None
                run(Path(tmp), "linked through /proc", args.batches, args.size,
                    write=file_unnamed.write_batch)
                file_unnamed._LINK_BY_DESCRIPTOR["linkat"] = linkat
                run(Path(tmp), "linked by descriptor", args.batches, args.size,
                    write=file_unnamed.write_batch)
                continue
            run(Path(tmp), "renamed", args.batches, args.size)
            run(Path(tmp), "anonymous, linked", args.batches, args.size,
                write=file_unnamed.write_batch)
        print(f"kept {tmp}: remove it when nobody measures")
        return
    tmp = tempfile.mkdtemp(prefix="file_batch-", dir=args.directory)  # kept: see above
    if args.no_flush:
        for _ in range(3):
            run(Path(tmp), "not flushed", args.batches, args.size, fsync=False)
        return print(f"kept {tmp}: remove it when nobody measures")
    syncfs = file_writes._SYNCFS
    print(f"syncfs available: {syncfs is not None}; batches of {args.size}")
    for _ in range(2):  # alternated, so that both see the same disk
        file_writes._SYNCFS = None
        run(Path(tmp), "each file flushed", args.batches, args.size)
        file_writes._SYNCFS = syncfs
        if syncfs is not None:
            run(Path(tmp), "one syncfs per batch", args.batches, args.size)
    print(f"kept {tmp}: remove it when nobody measures")


if __name__ == "__main__":
    main()
