"""
Benchmark tool: instructions the engine's process executes per ITI-41 submission into the
served shared record, counted by valgrind's callgrind, which a loaded machine does not
disturb (CPU time does).

Runs the engine (``--workers 0``: reactor, reader, writer and registry threads all counted)
serving ``shared_record:`` on a fresh SQLite store (``log_level: warning``, as
shared_record_http.py) under ``valgrind --tool=callgrind``
twice; the clients of shared_record_http.py (``--client-of``: XDSClient, 16 in flight, one
50 KiB CDA over MTOM per submission) run in a process of their own, outside valgrind, once
for ``--few`` submissions and once for ``--many``; the difference divided by the difference
in submissions is what one costs, start-up excluded. System calls count as the
instructions that make them, not the kernel's work (the fsync of a commit). Slow: the
engine runs some 50 times slower under callgrind.

    .venv/bin/python bench/callgrind_shared_record.py [--few 100] [--many 300] [--keep DIR]
    .venv/bin/python bench/callgrind_shared_record.py --client raw  # bench/raw_iti41.py's clients
    .venv/bin/python bench/callgrind_shared_record.py --tree /work/main     # to compare
"""
from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from callgrind_plain import stopped_count  # noqa: E402
from vs_baseline import free_port  # noqa: E402

RUN = "import sys; from engine.cli.main import main; sys.argv = ['aiguillage'] + sys.argv[1:]; main()"
REPOSITORY = "1.2.250.1.999.7.1"


def instructions(submissions: int, concurrency: int, keep: Path, tree: Path = ROOT,
                 raw: bool = False) -> int:
    """Instructions of the engine's whole run (start, ``submissions`` ITI-41, stop), the
    engine of *tree* (another checkout, run with its own venv, to compare); the clients are
    XDSClient's, or bench/raw_iti41.py's when *raw*."""
    python = tree / ".venv" / "bin" / "python"
    python = str(python) if python.exists() else sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        config = Path(tmp) / "engine.yaml"
        config.write_text(yaml.safe_dump({
            "store": {"url": f"sqlite:///{tmp}/store.db"}, "log_level": "warning",
            "shared_record": {"listen": f"127.0.0.1:{port}",
                              "repository_unique_id": REPOSITORY}}))
        subprocess.run([python, "-c", RUN, "db", "upgrade", "--config", str(config)],
                       check=True, capture_output=True, cwd=tree)
        out = keep / f"callgrind.{submissions}"
        engine = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", python,
             "-c", RUN, "run", "--config", str(config), "--workers", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tree)
        _wait_listening(port, engine)
        base = f"http://127.0.0.1:{port}/xds"
        command = [str(ROOT / "bench" / "raw_iti41.py"), base] if raw else \
            [str(ROOT / "bench" / "shared_record_http.py"), "--client-of", base]
        client = subprocess.run(
            [sys.executable, *command, "--submissions", str(submissions), "--concurrency",
             str(concurrency)], cwd=ROOT, capture_output=True, text=True)
        if client.returncode != 0:
            engine.kill()
            raise RuntimeError(f"client failed: {client.stderr[-600:]}")
        time.sleep(2)
        return stopped_count(engine)


def _wait_listening(port: int, engine: subprocess.Popen) -> None:
    """Until the shared record accepts connections (start-up under callgrind takes minutes)."""
    while True:
        if engine.poll() is not None:
            raise RuntimeError(f"the engine ended: {engine.stdout.read()[-600:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    parser.add_argument("--few", type=int, default=100)
    parser.add_argument("--many", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--client", choices=("xds", "raw"), default="xds",
                        help="the ITI-41 client (outside valgrind): XDSClient or raw_iti41.py")
    parser.add_argument("--keep", type=Path, help="keep callgrind's files in this folder")
    parser.add_argument("--tree", type=Path, default=ROOT,
                        help="the checkout whose engine runs (default: this one)")
    args = parser.parse_args()
    keep = args.keep or Path(tempfile.mkdtemp(prefix="aiguillage-callgrind-"))
    keep.mkdir(parents=True, exist_ok=True)
    raw = args.client == "raw"
    few = instructions(args.few, args.concurrency, keep, args.tree, raw)
    many = instructions(args.many, args.concurrency, keep, args.tree, raw)
    print(f"{few:,} instructions for {args.few} submissions, {many:,} for {args.many}: "
          f"{(many - few) / (args.many - args.few):,.0f} per submission (files in {keep})")


if __name__ == "__main__":
    main()
