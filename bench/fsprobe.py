"""
What creating a file costs, right now, on the file system a bench writes to.

On ext4 without a journal (this workplace's disks), the kernel does not reuse an inode
freed in the last minute or so (five more while its inode table block is dirty): each new
file's inode is searched past every recently deleted one of its block group. After a tree of
20 000 files is removed, creating a file costs about ten times more for a few minutes, for
every process on the disk. A bench that deletes its output and starts the next run at once
measures that, not the engine; one that runs after another session's clean-up does too.

So the benches that write files print this probe beside their figures, keep every run's
output until the end, and delete it last. ``probe`` creates, writes and closes ``count``
small files in a folder of its own (kept, for the same reason) and returns the CPU time per
file in microseconds: a few tens on a quiet disk, hundreds just after a mass deletion.

    .venv/bin/python bench/fsprobe.py [--directory /tmp] [--count 300]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

PAYLOAD = b"x" * 2048  # about an ADT message


def probe(folder: Path, count: int = 300) -> float:
    """CPU microseconds (user + system) per file created, written and closed in a new folder
    under ``folder``, which is left in place."""
    target = Path(tempfile.mkdtemp(prefix="fsprobe-", dir=folder))
    started = time.process_time()
    for number in range(count):
        descriptor = os.open(target / f"{number}.probe", os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                             0o600)
        try:
            os.write(descriptor, PAYLOAD)
        finally:
            os.close(descriptor)
    return (time.process_time() - started) / count * 1e6


def line(folder: Path, count: int = 300) -> str:
    """The probe as the benches print it."""
    return f"file creation probe ({folder}): {probe(folder, count):.1f} us CPU per file"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--directory", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--count", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.directory) as folder:
        print(line(Path(folder), args.count))


if __name__ == "__main__":
    main()
