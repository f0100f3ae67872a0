"""
Benchmark: one ITI-41 request with a large document, client and server in one process over
loopback HTTP (the real XDSSite, XDSResource, HTTPSender), MTOM or inline base64.

Prints the wall time, the throughput and the process's peak resident memory (VmHWM) above
its baseline, which says whether the document is held in memory on its way (MTOM should not
hold it: it is read from a file in blocks, spooled by Twisted and by the MTOM reader). Inline
base64 needs the document in memory, and its base64 text, by construction.

    .venv/bin/python bench/xds_http.py [--megabytes 64] [--inline]
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
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


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megabytes", type=int, default=64)
    parser.add_argument("--inline", action="store_true")
    arguments = parser.parse_args()
    task.react(main, (arguments.megabytes, arguments.inline))
