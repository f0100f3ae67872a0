"""
Where the served shared record's CPU goes for one ITI-41, stage by stage, without HTTP or
threads: the request shared_record_http.py's clients send (tests/xds/builders.submission, a
50 KiB document over MTOM) read by the endpoint's functions (MTOM and envelope, the
metadata, validation), stored by the registry in groups of --group on a SQLite file, and
answered (the response's bytes). Each stage's CPU (process_time) per submission, over
--submissions requests built before the clock starts.

    .venv/bin/python bench/xds_stages.py [--submissions 2000] [--group 8]
"""
from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from engine.store import migrate  # noqa: E402
from engine.store.store import make_engine  # noqa: E402
from shared_record_http import REPOSITORY, numbered  # noqa: E402
from xds.metadata.vocabulary import ACTION_PNR  # noqa: E402
from xds.registry import register  # noqa: E402
from xds.registry.grouped import Queued, provide_and_register_group  # noqa: E402
from xds.server.answers import answer_message  # noqa: E402
from xds.server.decoding import ServerLimits, decode_call  # noqa: E402
from xds.server.resource import REPOSITORY_ACTIONS  # noqa: E402
from xds.soap.documents import provide_and_register_request  # noqa: E402
from xds.soap.envelope import request_envelope  # noqa: E402
from xds.soap.framing import read_message, write_message  # noqa: E402
from xds.soap.response import RegistryResponse, status_for  # noqa: E402


def request(number: int, data: bytes) -> tuple[str, bytes]:
    """The Content-Type and body of submission *number*, as XDSClient sends it."""
    spec, _ = numbered(number, data)
    body, parts = provide_and_register_request(spec, {"Document01": data}, optimise=True)
    content_type, chunks = write_message(request_envelope(ACTION_PNR, body, to="http://x/r"),
                                         parts, ACTION_PNR, True)
    return content_type, b"".join(chunks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submissions", type=int, default=2000)
    parser.add_argument("--group", type=int, default=8)
    parser.add_argument("--kilobytes", type=int, default=50)
    options = parser.parse_args()
    data = b"<ClinicalDocument xmlns='urn:hl7-org:v3'/>".ljust(options.kilobytes * 1024)
    requests = [request(n, data) for n in range(options.submissions + 1)]
    limits = ServerLimits()
    spent = dict.fromkeys(("read (MTOM, envelope)", "decode (metadata, validation)",
                           "store (group commit)", "answer (response bytes)"), 0.0)
    names = list(spent)
    engine = make_engine(f"sqlite:///{tempfile.mkdtemp()}/x.db", sqlite_synchronous="FULL")
    migrate.ensure_current(engine)

    def clock(name, started):
        now = time.process_time()
        spent[name] += now - started
        return now

    with engine.connect() as conn:
        for start in range(0, len(requests), options.group):
            calls, incomings = [], []
            for content_type, body in requests[start:start + options.group]:
                t = time.process_time()
                incoming = read_message(content_type, io.BytesIO(body),
                                        max_xml_bytes=limits.max_xml_bytes,
                                        mtom_limits=limits.mtom)
                t = clock(names[0], t)
                call = decode_call(incoming, REPOSITORY_ACTIONS, limits)
                clock(names[1], t)
                calls.append(call)
                incomings.append(incoming)
            t = time.process_time()
            group = [Queued(register.provide_and_register_checked,
                            (call.args[0].submission, call.args[0].documents, REPOSITORY))
                     for call in calls]
            results = provide_and_register_group(conn, group)
            t = clock(names[2], t)
            for incoming, errors in zip(incomings, results):
                if isinstance(errors, BaseException) or any(e.is_error for e in errors):
                    raise SystemExit(f"refused: {errors}")
                answer = RegistryResponse(status_for(errors), list(errors))
                _, chunks = answer_message(ACTION_PNR, answer, incoming.message.message_id, True)
                b"".join(chunks)
                incoming.close()
            clock(names[3], t)
            if start == 0:  # the first group warms caches: not counted
                spent = dict.fromkeys(names, 0.0)
    total = sum(spent.values())
    count = len(requests) - options.group
    for name, seconds in spent.items():
        print(f"{name:<32} {seconds / count * 1e6:8.0f} µs")
    print(f"{'total':<32} {total / count * 1e6:8.0f} µs per submission ({count} in groups of"
          f" {options.group})")


if __name__ == "__main__":
    main()
