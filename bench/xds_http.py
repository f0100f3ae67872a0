"""
Benchmark: ITI-41 over loopback HTTP (the real XDSSite and XDSResource).

1. One request with a large document, client and server in one process (HTTPSender), MTOM or
   inline base64.
2. With --submissions N: throughput of N ProvideAndRegister requests of one 50 kB CDA each
   (MTOM) into the built-in registry on SQLite, stored by a GroupCommitter
   (xds/registry/grouped.py; --max-group 1 commits each alone). The requests are built and
   sent by --concurrency keep-alive connections from a client process of their own, so that
   the server process's CPU time per submission is measured alone (getrusage).

Prints the wall time, the throughput and the process's peak resident memory (VmHWM) above
its baseline, which says whether the document is held in memory on its way (MTOM should not
hold it: it is read from a file in blocks, spooled by Twisted and by the MTOM reader). Inline
base64 needs the document in memory, and its base64 text, by construction.

    .venv/bin/python bench/xds_http.py [--megabytes 64] [--inline]
    .venv/bin/python bench/xds_http.py --submissions 2000 [--concurrency 16] [--max-group 64]
"""
from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from twisted.internet import defer, task  # noqa: E402

from tests.xds.builders import submission  # noqa: E402
from xds.client.http import HTTPSender  # noqa: E402
from xds.client.transactions import XDSClient  # noqa: E402
from xds.metadata.vocabulary import RESPONSE_SUCCESS  # noqa: E402
from xds.server.decoding import ServerLimits  # noqa: E402
from xds.server.resource import XDSSite, xds_root  # noqa: E402
from xds.soap.mtom import MTOMLimits  # noqa: E402
from xds.registry.grouped import GroupCommitter  # noqa: E402
from xds.soap.response import RegistryResponse, status_for  # noqa: E402
from xds.tls import server_endpoint  # noqa: E402

BLOCK = 64 * 1024


def vm(field: str) -> int:
    """A /proc/self/status figure in bytes (VmRSS, VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


class SizingHandler:
    """Accepts ITI-41 and records the size of what arrived, without reading it."""

    def __init__(self):
        self.sizes = []

    def provide_and_register(self, request):
        self.sizes.extend(document.size for document in request.documents.values())
        return defer.succeed(type("R", (), {"status": RESPONSE_SUCCESS, "errors": []})())


def document_file(megabytes: int):
    """A temporary file of random bytes, and its SHA-1."""
    digest, document = hashlib.sha1(), tempfile.TemporaryFile()
    for _ in range(megabytes * 16):
        block = os.urandom(BLOCK)
        digest.update(block)
        document.write(block)
    document.seek(0)
    return document, digest.hexdigest()


@defer.inlineCallbacks
def main(reactor, megabytes: int, inline: bool):
    document, sha1 = document_file(megabytes)
    spec = submission()
    spec.documents[0].hash, spec.documents[0].size = sha1, str(megabytes * 1024 * 1024)
    big = 2 * megabytes * 1024 * 1024 + 2**20
    limits = ServerLimits(max_body_bytes=2 * big, max_xml_bytes=2 * big, max_inline_bytes=big,
                          mtom=MTOMLimits(max_part_bytes=big, max_total_bytes=2 * big))
    handler = SizingHandler()
    port = yield server_endpoint(reactor, 0, "127.0.0.1").listen(
        XDSSite(xds_root(handler, limits), max_body_bytes=2 * big))
    client = XDSClient(HTTPSender(reactor, timeout=600, max_xml_bytes=2 * big),
                       repository_url=f"http://127.0.0.1:{port.getHost().port}/repository")
    source = document.read() if inline else document
    baseline = vm("VmRSS")
    started = time.perf_counter()
    response = yield client.provide_and_register(spec, {"Document01": source}, mtom=not inline)
    elapsed = time.perf_counter() - started
    yield port.stopListening()
    assert response.status == RESPONSE_SUCCESS, response.errors
    assert handler.sizes == [megabytes * 1024 * 1024], handler.sizes
    print(f"{'inline' if inline else 'MTOM'} {megabytes} MiB: {elapsed:.2f} s,"
          f" {megabytes / elapsed:.1f} MiB/s, baseline RSS {baseline / 2**20:.0f} MiB,"
          f" peak (VmHWM) {vm('VmHWM') / 2**20:.0f} MiB")


class RegistryHandler:
    """ITI-41 into the built-in registry, through a GroupCommitter; answered after the commit."""

    def __init__(self, reactor, committer: GroupCommitter, repository: str):
        self.reactor, self.committer, self.repository = reactor, committer, repository

    def provide_and_register(self, request):
        answer = defer.Deferred()

        def done(future):
            error = future.exception()
            if error is not None:
                self.reactor.callFromThread(answer.errback, error)
            else:
                self.reactor.callFromThread(answer.callback, future.result())

        self.committer.submit(request.submission, request.documents,
                              self.repository).add_done_callback(done)
        return answer.addCallback(lambda errors: RegistryResponse(status_for(errors), errors))


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@defer.inlineCallbacks
def throughput(reactor, submissions: int, concurrency: int, max_group: int, synchronous: str):
    from engine.store import migrate
    from engine.store.store import make_engine
    from xds_registry_speed import REPOSITORY
    directory = tempfile.TemporaryDirectory(prefix="xds-http-")
    engine = make_engine(f"sqlite:///{directory.name}/pnr.db", sqlite_synchronous=synchronous)
    migrate.ensure_current(engine)
    committer = GroupCommitter(engine, max_group=max_group)
    reactor.suggestThreadPoolSize(max(10, concurrency))
    port = yield server_endpoint(reactor, 0, "127.0.0.1").listen(
        XDSSite(xds_root(RegistryHandler(reactor, committer, REPOSITORY))))
    client = subprocess.Popen(
        [sys.executable, __file__, "--client", str(port.getHost().port), str(submissions),
         str(concurrency)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = yield _wait_line(reactor, client)      # "ready": the requests are built
    if line.strip() != "ready":
        raise SystemExit(f"client failed: {line}{client.stderr.read()}")
    cpu, groups = cpu_seconds(), committer.groups
    line = yield _wait_line(reactor, client)  # "<seconds> <answers ok> <client CPU seconds>"
    cpu = cpu_seconds() - cpu
    client.wait()
    yield port.stopListening()
    committer.stop()
    engine.dispose()
    directory.cleanup()
    if not line.strip():
        raise SystemExit(f"client failed: {client.stderr.read()}")
    wall, succeeded, client_cpu = line.split()
    wall, groups = float(wall), committer.groups - groups
    load = os.getloadavg()[0]
    print(f"ITI-41 over HTTP, {submissions} submissions of one 50 kB CDA (MTOM), SQLite "
          f"synchronous={synchronous}, {concurrency} connections, groups of <= {max_group}: "
          f"{submissions / wall:.0f} submissions/s ({succeeded} succeeded), server CPU "
          f"{cpu / submissions * 1000:.2f} ms each (client "
          f"{float(client_cpu) / submissions * 1000:.2f} ms), "
          f"{submissions / max(groups, 1):.1f} submissions per commit, load average {load:.1f}")


def _wait_line(reactor, process):
    """The client's next stdout line, read in a thread."""
    from twisted.internet.threads import deferToThread
    return deferToThread(process.stdout.readline)


def client_main(port: int, submissions: int, concurrency: int) -> None:
    """Build the requests, say ready, send them on *concurrency* connections, print
    the wall time and the number of Success answers."""
    from xds_registry_speed import pnr_message
    messages = [pnr_message(number) for number in range(submissions)]
    print("ready", flush=True)
    succeeded, lock = [0], threading.Lock()

    def sender(share):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        for content_type, body in share:
            connection.request("POST", "/repository", body, {"Content-Type": content_type})
            answer = connection.getresponse().read()
            if b"ResponseStatusType:Success" in answer:
                with lock:
                    succeeded[0] += 1
        connection.close()

    started, cpu = time.perf_counter(), cpu_seconds()
    threads = [threading.Thread(target=sender, args=(messages[index::concurrency],))
               for index in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(f"{time.perf_counter() - started:.3f} {succeeded[0]} {cpu_seconds() - cpu:.3f}",
          flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "bench"))
    if sys.argv[1:2] == ["--client"]:
        client_main(*(int(value) for value in sys.argv[2:5]))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megabytes", type=int, default=64)
    parser.add_argument("--inline", action="store_true")
    parser.add_argument("--submissions", type=int, default=0,
                        help="throughput of this many 50 kB submissions into the registry")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--max-group", type=int, default=64)
    parser.add_argument("--synchronous", choices=("FULL", "NORMAL"), default="FULL")
    arguments = parser.parse_args()
    if arguments.submissions:
        task.react(throughput, (arguments.submissions, arguments.concurrency,
                                arguments.max_group, arguments.synchronous))
    else:
        task.react(main, (arguments.megabytes, arguments.inline))
