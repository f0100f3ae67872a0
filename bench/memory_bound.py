"""
Benchmark: the engine's peak memory under senders that never wait for their ACKs.

Starts the engine (`aiguillage run`, SQLite store, one MLLP channel writing each message to a
file) as a process of its own, opens C connections and writes M frames of S MiB on each as
fast as TCP takes them, without waiting for any ACK (a hostile or broken peer), while other
threads read the ACKs. The engine's resident memory is sampled every 20 ms from
/proc/<pid>/status; the bench prints its baseline, its peak (VmHWM) and the time until every
ACK came back. Run it with the source's default ``max_pending_bytes`` and with
``--unbounded`` (a byte budget of 64 GiB: only the count bound of ``max_pending`` left, as
before the budget existed) to compare.

    .venv/bin/python bench/memory_bound.py [--connections 3] [--frames 10] [--mib 12]
        [--max-pending-bytes 32MiB | --unbounded]

Linux only (reads /proc). Figures and the command that produced them: bench/README.md.
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mllp.framing import FrameDecoder, encode_frame  # noqa: E402

HEADER = ("MSH|^~\\&|HIS|HOSP|ENG|HOSP|20260101120000||ORU^R01^ORU_R01|{cid}|P|2.5\r"
          "PID|1||IPP1^^^HOSP^PI||DUPONT^JEAN\rOBX|1|ED|PDF||^application^pdf^Base64^")


def big_message(control_id: str, size: int) -> bytes:
    """An ORU whose OBX-5 carries base64-like text, ``size`` bytes in all."""
    head = HEADER.format(cid=control_id).encode()
    return head + b"A" * (size - len(head) - 1) + b"\r"


def rss_kib(pid: int, field: str) -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", text, re.M)[1])


def write_config(directory: Path, budget: str) -> Path:
    (directory / "channels").mkdir()
    (directory / "channels" / "big.yaml").write_text(
        "name: big\nsource:\n  type: mllp\n  host: 127.0.0.1\n  port: 0\n"
        f"  max_frame_size: 16MiB\n  max_pending_bytes: {budget}\n"
        "destinations:\n  - name: out\n    type: file\n    fsync: false\n"
        f"    directory: {directory / 'out'}\n")
    config = directory / "engine.yaml"
    config.write_text(f"node: bench\nstore:\n  url: sqlite:///{directory}/store.db\n"
                      "  sqlite_synchronous: normal\nchannels:\n  - channels/*.yaml\n"
                      "log_level: warning\n")
    return config


def start_engine(config: Path) -> tuple[subprocess.Popen, int]:
    engine = subprocess.Popen([sys.executable, "-m", "engine.cli.main", "run", "--config",
                               str(config)], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ, PYTHONPATH=str(ROOT)))
    deadline = time.time() + 30
    while time.time() < deadline:
        line = engine.stdout.readline()
        found = re.match(r"channel big: listening on port (\d+)", line)
        if found:
            return engine, int(found[1])
        if not line:
            break
    engine.kill()
    raise RuntimeError("the engine did not start")


def flood(port: int, frames: int, size: int, index: int, acks: list[int]) -> None:
    """One connection: write every frame at once, then count the ACKs that come back."""
    connection = socket.create_connection(("127.0.0.1", port))
    reader = threading.Thread(target=read_acks, args=(connection, frames, acks, index))
    reader.start()
    for n in range(frames):
        connection.sendall(encode_frame(big_message(f"C{index}M{n}", size)))
    reader.join()
    connection.close()


def read_acks(connection: socket.socket, frames: int, acks: list[int], index: int) -> None:
    decoder = FrameDecoder()
    while acks[index] < frames:
        chunk = connection.recv(65536)
        if not chunk:
            return
        acks[index] += len(decoder.feed(chunk))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=3)
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--mib", type=float, default=12)
    parser.add_argument("--max-pending-bytes", default="32MiB")
    parser.add_argument("--unbounded", action="store_true")
    args = parser.parse_args()
    budget = "64GiB" if args.unbounded else args.max_pending_bytes
    size = int(args.mib * 1024 * 1024)
    with tempfile.TemporaryDirectory(prefix="aiguillage-bench-") as directory:
        engine, port = start_engine(write_config(Path(directory), budget))
        try:
            time.sleep(1)
            baseline = rss_kib(engine.pid, "VmRSS")
            acks = [0] * args.connections
            senders = [threading.Thread(target=flood, args=(port, args.frames, size, i, acks))
                       for i in range(args.connections)]
            started = time.perf_counter()
            for sender in senders:
                sender.start()
            while any(sender.is_alive() for sender in senders):
                time.sleep(0.02)
                rss_kib(engine.pid, "VmRSS")  # VmHWM keeps the peak; this keeps us honest
            elapsed = time.perf_counter() - started
            peak = rss_kib(engine.pid, "VmHWM")
        finally:
            engine.terminate()
            engine.wait(60)
    print(f"python {platform.python_version()} ({sys.executable})")
    print(f"{args.connections} connections x {args.frames} frames of {args.mib:g} MiB, "
          f"no waiting for ACKs; max_pending_bytes {budget}")
    print(f"ACKs received: {sum(acks)} of {args.connections * args.frames} in {elapsed:.1f} s")
    print(f"engine RSS: baseline {baseline / 1024:.0f} MiB, peak {peak / 1024:.0f} MiB "
          f"(+{(peak - baseline) / 1024:.0f} MiB)")


if __name__ == "__main__":
    main()
