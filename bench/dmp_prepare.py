"""
Benchmark: the cost of preparing an ITI-41 request for the DMP (prepare_for_dmp: the value
and INS checks, SHA-256 of each document, the XAdES and VIHF RSA-2048 signatures, the added
signature document), per request, with N documents of a given size, MTOM form.

The structure's key and certificate are made here (cryptography); the value sets come from
the standards folder (AIGUILLAGE_STANDARDS, or ../shared/standards).

    .venv/bin/python bench/dmp_prepare.py [--requests 50] [--documents 1] [--kib 50]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.xds.builders import submission  # noqa: E402
from tests.xds.dmp.pki import NOW, pki  # noqa: E402
from xds.client.http import SOAPRequest  # noqa: E402
from xds.dmp.prepare import DMPContext, prepare_for_dmp  # noqa: E402
from xds.dmp.values import load_value_sets  # noqa: E402
from xds.dmp.vihf import Practitioner  # noqa: E402
from xds.metadata.model import Code  # noqa: E402
from xds.metadata.vocabulary import ACTION_PNR  # noqa: E402
from xds.soap.documents import provide_and_register_request  # noqa: E402
from xds.soap.envelope import request_envelope  # noqa: E402

URL = "https://dmp.example/repository"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--documents", type=int, default=1)
    parser.add_argument("--kib", type=int, default=50)
    options = parser.parse_args()
    standards = Path(os.environ.get("AIGUILLAGE_STANDARDS", ROOT.parent / "shared" / "standards"))
    context = DMPContext(
        Practitioner("801234567897", "DUPONT Jean", (Code("10", "1.2.250.1.213.1.1.4.5"),)),
        load_value_sets(standards / "terminology" / "ans-jdv"), identity_status="QUAL", now=NOW)
    credentials = pki().credentials()
    sub = submission(options.documents)
    documents = {f"Document{n:02d}": os.urandom(options.kib * 1024)
                 for n in range(1, options.documents + 1)}
    body, parts = provide_and_register_request(sub, documents, optimise=True)
    request = SOAPRequest(URL, ACTION_PNR, request_envelope(ACTION_PNR, body, URL), parts, True)
    prepare_for_dmp(request, credentials, context)          # warm-up (imports, schema caches)
    times = []
    for _ in range(options.requests):
        start = time.perf_counter()
        prepare_for_dmp(request, credentials, context)
        times.append(time.perf_counter() - start)
    times.sort()
    p95 = times[max(0, int(len(times) * 0.95) - 1)]
    print(f"prepare_for_dmp: {options.requests} requests, {options.documents} document(s) of"
          f" {options.kib} KiB, MTOM")
    print(f"  median {statistics.median(times) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms,"
          f" {1 / statistics.mean(times):.0f} requests/s on one core")


if __name__ == "__main__":
    main()
