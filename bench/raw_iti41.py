"""
A light ITI-41 load client, so that a bench measures the server and not the client: one
real Provide and Register request (MTOM, a --kilobytes CDA, rendered once by the project's
own writers as XDSClient would send it), then, for each submission, the same bytes with its
own ids put in (the patient, the DocumentEntry and SubmissionSet uniqueIds, the
wsa:MessageID), POSTed over --concurrency keep-alive HTTP/1.1 connections (asyncio, plain
sockets), one request in flight on each. The document's bytes do not change, so the size
and hash the server computes stay those of a valid document; entryUUIDs are symbolic
(``Document01``) and assigned by the registry.

Every answer must be HTTP 200 with a Success RegistryResponse relating to its request:
anything else counts as a failure, the first one is printed, and the exit status is 1.
The client's own CPU (getrusage) per submission is printed with the rate and latencies.

    .venv/bin/python bench/raw_iti41.py http://127.0.0.1:PORT --submissions 600 --concurrency 16

(bench/shared_record_http.py --client raw runs it against an engine it starts.)
"""
from __future__ import annotations

import argparse
import asyncio
import re
import resource
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

#: The submission number rendered once; its ids are the placeholders swapped per request.
_SENTINEL = 87654321
_SUCCESS = b'status="urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"'


class Template:
    """One rendered ITI-41 request, cut where the per-submission ids go."""

    def __init__(self, url: str, kilobytes: int):
        from shared_record_http import numbered
        from xds.metadata.vocabulary import ACTION_PNR
        from xds.soap.documents import provide_and_register_request
        from xds.soap.envelope import new_message_id, request_envelope
        from xds.soap.framing import write_message

        data = b"<ClinicalDocument xmlns='urn:hl7-org:v3'/>".ljust(kilobytes * 1024)
        spec, _ = numbered(_SENTINEL, data)
        message_id = new_message_id()
        body, parts = provide_and_register_request(spec, {"Document01": data}, optimise=True)
        content_type, chunks = write_message(
            request_envelope(ACTION_PNR, body, to=url, message_id=message_id), parts,
            ACTION_PNR, True)
        body = b"".join(chunks)
        self.fillers = {
            b"%d^" % (100000000 + _SENTINEL): lambda n, m: b"%d^" % (100000000 + n),
            b'1.2.250.1.999.1.%d"' % _SENTINEL: lambda n, m: b'1.2.250.1.999.1.%d"' % n,
            b'1.2.250.1.999.2.%d"' % _SENTINEL: lambda n, m: b'1.2.250.1.999.2.%d"' % n,
            message_id.encode("ascii"): lambda n, m: m,
        }
        self.pieces = re.split(b"(" + b"|".join(map(re.escape, self.fillers)) + b")", body)
        found = {token: self.pieces.count(token) for token in self.fillers}
        if found[message_id.encode("ascii")] != 1 or min(found.values()) < 1:
            raise SystemExit(f"the rendered request does not hold its ids as expected: {found}")
        parts = urlsplit(url)
        self.head = (f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                     f"Content-Type: {content_type}\r\nContent-Length: ").encode("latin-1")

    def request(self, number: int) -> tuple[bytes, bytes]:
        """The bytes of submission *number* (head and body) and its wsa:MessageID."""
        message_id = b"urn:uuid:00000000-0000-4000-8000-%012d" % number
        fillers = self.fillers
        body = b"".join([fillers[piece](number, message_id) if i % 2 else piece
                         for i, piece in enumerate(self.pieces)])
        return self.head + b"%d\r\n\r\n" % len(body) + body, message_id


class Exchange(asyncio.Protocol):
    """One keep-alive connection sending the submissions it takes, one at a time."""

    def __init__(self, run: "Run"):
        self.run = run
        self.buffer = bytearray()
        self.closed = asyncio.get_running_loop().create_future()
        self.transport = None
        self.message_id = b""  # of the request in flight, b"" when none is
        self.started = 0.0

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.send_next()

    def send_next(self) -> None:
        number = self.run.take()
        if number is None:
            self.message_id = b""
            self.transport.close()
            return
        data, self.message_id = self.run.template.request(number)
        self.started = time.perf_counter()
        self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        answer = _complete(self.buffer)
        if answer is None:
            return
        status, body, used = answer
        del self.buffer[:used]
        self.run.latencies.append(time.perf_counter() - self.started)
        if status != 200 or _SUCCESS not in body or self.message_id not in body:
            self.run.failed(f"HTTP {status}: {_gist(body)!r}")
        self.send_next()

    def connection_lost(self, exc) -> None:
        if self.message_id:
            self.run.failed(f"connection lost with a request in flight: {exc}")
            self.message_id = b""
        if not self.closed.done():
            self.closed.set_result(None)


def _complete(buffer: bytearray) -> tuple[int, bytes, int] | None:
    """(status, body, bytes used) of the first whole HTTP answer in *buffer*, or None."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buffer[:end]).decode("latin-1").split("\r\n")
    status = int(head[0].split(" ", 2)[1])
    headers = dict(line.lower().split(": ", 1) for line in head[1:] if ": " in line)
    start = end + 4
    if "content-length" in headers:
        stop = start + int(headers["content-length"])
        return (status, bytes(buffer[start:stop]), stop) if len(buffer) >= stop else None
    body, at = bytearray(), start  # chunked
    while True:
        line_end = buffer.find(b"\r\n", at)
        if line_end < 0:
            return None
        size = int(bytes(buffer[at:line_end]).split(b";")[0], 16)
        if len(buffer) < line_end + 2 + size + 2:
            return None
        if size == 0:
            return status, bytes(body), line_end + 4
        body += buffer[line_end + 2:line_end + 2 + size]
        at = line_end + 2 + size + 2


def _gist(body: bytes) -> bytes:
    """Where an answer says what went wrong: from its RegistryResponse or Fault on."""
    found = [at for at in (body.find(b"RegistryResponse "), body.find(b"Fault")) if at >= 0]
    return body[min(found, default=0):][:500]


class Run:
    """The submissions still to send, the latencies seen, the failures counted."""

    def __init__(self, template: Template, submissions: int):
        self.template = template
        self.next = 0
        self.submissions = submissions
        self.latencies: list[float] = []
        self.failures = 0
        self.first_failure = ""

    def take(self) -> int | None:
        if self.next >= self.submissions:
            return None
        self.next += 1
        return self.next - 1

    def failed(self, why: str) -> None:
        self.failures += 1
        self.first_failure = self.first_failure or why


async def send_all(base: str, submissions: int, concurrency: int, kilobytes: int) -> Run:
    """Send every submission, *concurrency* connections at a time; the finished run."""
    template = Template(base + "/repository", kilobytes)
    run = Run(template, submissions)
    parts = urlsplit(base)
    loop = asyncio.get_running_loop()
    began, cpu = time.perf_counter(), cpu_seconds()
    connections = [await loop.create_connection(lambda: Exchange(run), parts.hostname,
                                                parts.port)
                   for _ in range(min(concurrency, submissions))]
    await asyncio.gather(*(protocol.closed for _, protocol in connections))
    run.seconds, run.cpu = time.perf_counter() - began, cpu_seconds() - cpu
    run.failures += run.submissions - run.next  # never sent (every connection was lost)
    return run


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def report(run: Run) -> None:
    latencies = sorted(run.latencies) or [0.0]

    def pick(share: float) -> float:
        return latencies[min(len(latencies) - 1, int(len(latencies) * share))] * 1000

    count = run.submissions
    print(f"ITI-41 (raw client)    {count:>6} in {run.seconds:6.2f} s"
          f"  {count / run.seconds:7.1f}/s  p50 {pick(0.5):6.1f} ms  p99 {pick(0.99):6.1f} ms"
          f"  max {latencies[-1] * 1000:6.1f} ms  client CPU {run.cpu / count * 1000:5.2f} ms each"
          f"  failures {run.failures}")
    if run.failures:
        print(f"  FAILED: {run.failures} of {count} not answered Success; first: "
              f"{run.first_failure}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base_url", help="the engine's shared record, http://host:port")
    parser.add_argument("--submissions", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--kilobytes", type=int, default=50)
    options = parser.parse_args()
    run = asyncio.run(send_all(options.base_url, options.submissions, options.concurrency,
                               options.kilobytes))
    report(run)
    return 1 if run.failures else 0


if __name__ == "__main__":
    sys.exit(main())
