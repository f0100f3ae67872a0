"""
Benchmark: memory and time of reading an ITI-41 MTOM message with one large attachment.

The body is streamed from a temporary file in 64 KiB chunks through ``MTOMReader``; Python's
allocations are traced (tracemalloc) so the peak says whether the attachment is held in memory
(it should not be: past ``MTOMLimits.spool_bytes`` it goes to a spooled temporary file while
its SHA-1 is computed). Also reports the time and the throughput of the read.

    .venv/bin/python bench/mtom_memory.py [--megabytes 64] [--spool-kib 1024]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from xds.soap.mtom import MTOMLimits, MTOMReader, OutgoingPart, write_mtom  # noqa: E402

CHUNK = 64 * 1024


def write_body(path: Path, megabytes: int) -> str:
    """An MTOM message with one random attachment of *megabytes*, written to *path*."""
    with tempfile.TemporaryFile() as document:
        for _ in range(megabytes * 16):
            document.write(os.urandom(CHUNK))
        document.seek(0)
        content_type, chunks = write_mtom(b"<root/>", [OutgoingPart("doc@x", "application/pdf",
                                                                    document)], "urn:bench")
        with path.open("wb") as out:
            for chunk in chunks:
                out.write(chunk)
    return content_type


def read_body(path: Path, content_type: str, spool_kib: int) -> tuple[float, int, int]:
    """Seconds, peak traced bytes, attachment size."""
    limits = MTOMLimits(max_part_bytes=2**40, max_total_bytes=2**40, spool_bytes=spool_kib * 1024)
    tracemalloc.start()
    started = time.perf_counter()
    reader = MTOMReader(content_type, limits)
    with path.open("rb") as body:
        for chunk in iter(lambda: body.read(CHUNK), b""):
            reader.feed(chunk)
    package = reader.close()
    attachment = package.attachments["doc@x"]
    _ = attachment.sha1
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    size = attachment.size
    package.close()
    return elapsed, peak, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--megabytes", type=int, default=64)
    parser.add_argument("--spool-kib", type=int, default=1024)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "body.mime"
        content_type = write_body(path, args.megabytes)
        elapsed, peak, size = read_body(path, content_type, args.spool_kib)
    print(f"attachment: {size / 2**20:.0f} MiB, spool threshold {args.spool_kib} KiB, "
          f"chunks of {CHUNK // 1024} KiB")
    print(f"read + SHA-1: {elapsed:.2f} s ({size / 2**20 / elapsed:.0f} MiB/s)")
    print(f"peak Python allocations while reading: {peak / 2**20:.2f} MiB")


if __name__ == "__main__":
    main()
