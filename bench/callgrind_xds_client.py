"""
Benchmark tool: instructions the XDS.b client (XDSClient over HTTPSender) executes per
ITI-41 submission, ITI-18 FindDocuments and ITI-43 retrieve, counted by valgrind's
callgrind, which a loaded machine does not disturb (CPU time does).

An engine serves the shared record on a fresh SQLite store, outside valgrind, in a
process of its own; the client of each phase runs under ``valgrind --tool=callgrind``
twice, once for ``--few`` requests and once for ``--many`` (16 in flight, as
bench/shared_record_http.py sends them: one 50 KiB CDA over MTOM per submission, one
FindDocuments per patient, one MTOM retrieve per document); the difference divided by
the difference in requests is what one costs, start-up excluded. The documents that
ITI-18 and ITI-43 read are submitted first, outside valgrind. System calls count as the
instructions that make them, not the kernel's work. ``--tree`` runs another checkout's
client (its own modules; this checkout's bench/shared_record_http.py) to compare.

    .venv/bin/python bench/callgrind_xds_client.py [--few 50] [--many 250]
    .venv/bin/python bench/callgrind_xds_client.py --tree /work/wt/xdsclient-before
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVE = """
import sys, tempfile, yaml
from pathlib import Path
from twisted.internet import defer, task
from engine.app import Engine, load_config

@defer.inlineCallbacks
def main(reactor):
    folder = Path(tempfile.mkdtemp(prefix="aiguillage-bench-"))
    (folder / "engine.yaml").write_text(yaml.safe_dump({
        "store": {"url": f"sqlite:///{folder / 'store.db'}"}, "log_level": "warning",
        "shared_record": {"listen": "127.0.0.1:0", "repository_unique_id": "1.2.250.1.999.7.1"}}))
    engine = Engine(load_config(str(folder / "engine.yaml")), reactor)
    yield engine.start()
    print(engine.shared_record.base_url, flush=True)
    yield defer.Deferred()

task.react(main)
"""


def client(options) -> None:
    """--client-phase: send one phase's requests (this process may run under callgrind)."""
    sys.path.insert(0, str(Path(options.tree) / "bench"))  # puts its tree first in turn
    from twisted.internet import defer, task

    from shared_record_http import (
        REPOSITORY, _found_one, _retrieved, _success, find_documents, numbered, timed,
    )
    from xds.client.http import HTTPSender
    from xds.client.transactions import XDSClient
    from xds.soap.retrieve import DocumentReference

    data = b"<ClinicalDocument xmlns='urn:hl7-org:v3'/>".ljust(50 * 1024)
    calls = {
        "41": lambda xds, spec, patient: xds.provide_and_register(
            spec, {"Document01": data}).addCallback(_success),
        "18": lambda xds, spec, patient: xds.stored_query(
            find_documents(patient)).addCallback(_found_one),
        "43": lambda xds, spec, patient: xds.retrieve([DocumentReference(
            REPOSITORY, spec.documents[0].unique_id)]).addCallback(_retrieved, len(data)),
    }

    @defer.inlineCallbacks
    def run(reactor):
        base = options.client_phase[1]
        xds = XDSClient(HTTPSender(reactor, timeout=300, connections_per_host=16),
                        repository_url=base + "/repository", registry_url=base + "/registry")
        call = calls[options.client_phase[0]]
        made = [numbered(number, data) for number in
                range(options.start, options.start + options.count)]
        yield timed([lambda spec=spec, patient=patient: call(xds, spec, patient)
                     for spec, patient in made], 16, reactor)

    task.react(run)


def counted(python: str, tree: str, phase: str, base: str, start: int, count: int,
            valgrind: bool) -> int:
    """Run one phase's client (under callgrind when *valgrind*); its instructions, or 0."""
    command = [python, __file__, "--client-phase", phase, base, "--start", str(start),
               "--count", str(count), "--tree", tree]
    with tempfile.TemporaryDirectory() as folder:
        if valgrind:
            command = ["valgrind", "--tool=callgrind",
                       f"--callgrind-out-file={folder}/callgrind.out"] + command
        done = subprocess.run(command, capture_output=True, text=True, cwd=tree)
        if done.returncode:
            raise SystemExit(f"the {phase} client failed: {done.stderr[-2000:]}")
        if not valgrind:
            return 0
        found = re.search(r"Collected : (\d+)", done.stderr)
        if found is None:
            raise RuntimeError(f"no instruction count from callgrind: {done.stderr[-400:]}")
        return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    parser.add_argument("--few", type=int, default=50)
    parser.add_argument("--many", type=int, default=250)
    parser.add_argument("--tree", default=str(ROOT), help="the checkout whose client runs")
    parser.add_argument("--phases", default="41,18,43")
    parser.add_argument("--client-phase", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--start", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.client_phase:
        client(options)
        return
    python = str(Path(options.tree) / ".venv" / "bin" / "python")
    server = subprocess.Popen([sys.executable, "-c", SERVE], cwd=str(ROOT),
                              stdout=subprocess.PIPE, text=True)
    try:
        base = server.stdout.readline().strip()
        start = 0
        for phase in options.phases.split(","):
            if phase != "41":  # the documents this phase reads, submitted outside valgrind
                counted(python, options.tree, "41", base, start, options.few + options.many,
                        False)
            few = counted(python, options.tree, phase, base, start, options.few, True)
            many = counted(python, options.tree, phase, base, start + options.few,
                           options.many, True)
            print(f"ITI-{phase}: {(many - few) / (options.many - options.few):12,.0f}"
                  f" instructions each ({few:,} for {options.few}, {many:,} for"
                  f" {options.many})", flush=True)
            start += options.few + options.many
    finally:
        server.kill()  # no graceful stop: its store is thrown away
        server.wait()


if __name__ == "__main__":
    main()
