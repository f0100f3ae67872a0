"""
The shared record served by a real engine, over loopback HTTP: ITI-41, ITI-18 and ITI-43
per second and their latencies, as Document Sources and Consumers see them.

An engine (engine.app.Engine, as `aiguillage run` builds it) serves the shared record of a
fresh SQLite store (or --database URL, e.g. a PostgreSQL database that exists and is empty);
the clients are XDSClient over HTTPSender in the same process, --concurrency requests in
flight. Each submission is one DocumentEntry of --kilobytes bytes for a patient of its own,
sent as MTOM; then a FindDocuments per patient, then a retrieve per document (MTOM).

    .venv/bin/python bench/shared_record_http.py
    .venv/bin/python bench/shared_record_http.py --submissions 500 --concurrency 8
    .venv/bin/python bench/shared_record_http.py --database postgresql+psycopg://postgres@127.0.0.1/bench
    .venv/bin/python bench/shared_record_http.py --concurrency 16 --one-commit-each

The CPU column is the whole process's (getrusage: server and client, they share it) over a
phase, per request. With --client-process, the ITI-41 clients run in a process of their own
(the same XDSClient code; this script with --client-of) and the ITI-41 line's CPU is the
client's, the server's printed under it. With --client raw, the ITI-41 client is
bench/raw_iti41.py in a process of its own: one request rendered once, its ids swapped per
submission, sent over keep-alive connections; it costs a small part of what XDSClient does,
so the rate is the server's capacity (the way bench/mllp_throughput.py measures MLLP); every
answer must be a Success, a failure stops the bench. The queries and retrieves that follow
stay in one process. --one-commit-each serves ITI-41 as before group commit (each
submission its own transaction in one of the store's read threads), to compare in one run.

    .venv/bin/python bench/shared_record_http.py --submissions 600 --concurrency 16 --client raw
    .venv/bin/python bench/shared_record_http.py --submissions 600 --concurrency 16 --client-process
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import threading
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml  # noqa: E402
from lxml import etree  # noqa: E402
from twisted.internet import defer, task, threads  # noqa: E402

from engine.app import Engine, load_config  # noqa: E402
try:
    from engine.heap import settle  # noqa: E402
except ImportError:  # a tree from before engine.heap, run to compare (bench/README.md)
    settle = None
from tests.xds.builders import submission  # noqa: E402
from xds.client.http import HTTPSender  # noqa: E402
from xds.client.transactions import XDSClient  # noqa: E402
from xds.metadata.vocabulary import RESPONSE_SUCCESS  # noqa: E402
from xds.namespaces import QUERY, RIM, qname, rim  # noqa: E402
from xds.soap.retrieve import DocumentReference  # noqa: E402

REPOSITORY = "1.2.250.1.999.7.1"
RAW_CLIENT = Path(__file__).resolve().parent / "raw_iti41.py"
FIND_DOCUMENTS = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
APPROVED = "('urn:oasis:names:tc:ebxml-regrep:StatusType:Approved')"


def numbered(number: int, data: bytes):
    """Submission *number*: its own patient, document and submission set uniqueIds."""
    base = submission()
    patient = f"{100000000 + number}^^^&1.2.250.1.213.1.4.10&ISO^NH"
    entry = replace(base.documents[0], unique_id=f"1.2.250.1.999.1.{number}",
                    patient_id=patient, hash="", size="")
    package = replace(base.submission_sets[0], unique_id=f"1.2.250.1.999.2.{number}",
                      patient_id=patient)
    return replace(base, documents=[entry], submission_sets=[package]), patient


def find_documents(patient: str) -> etree._Element:
    request = etree.Element(qname(QUERY, "AdhocQueryRequest"), nsmap={"query": QUERY,
                                                                       "rim": RIM})
    etree.SubElement(request, qname(QUERY, "ResponseOption"), returnType="LeafClass",
                     returnComposedObjects="true")
    query = etree.SubElement(request, rim("AdhocQuery"), id=FIND_DOCUMENTS)
    for name, value in (("$XDSDocumentEntryPatientId", f"'{patient}'"),
                        ("$XDSDocumentEntryStatus", APPROVED)):
        slot = etree.SubElement(query, rim("Slot"), name=name)
        etree.SubElement(etree.SubElement(slot, rim("ValueList")), rim("Value")).text = value
    return request


@defer.inlineCallbacks
def timed(calls, concurrency: int, reactor):
    """Run the zero-argument callables *calls*, *concurrency* at a time; (seconds,
    sorted latencies)."""
    semaphore = defer.DeferredSemaphore(concurrency)
    latencies: list[float] = []

    @defer.inlineCallbacks
    def one(call):
        started = reactor.seconds()
        yield call()
        latencies.append(reactor.seconds() - started)

    began, cpu = time.perf_counter(), cpu_seconds()
    yield defer.gatherResults([semaphore.run(one, call) for call in calls], consumeErrors=True)
    return time.perf_counter() - began, sorted(latencies), cpu_seconds() - cpu


def server_usage(since: tuple[float, float] = (0.0, 0.0)) -> tuple[float, float]:
    """This process's user and system CPU seconds (less *since*)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime - since[0], usage.ru_stime - since[1]


def thread_usage() -> dict[str, tuple[int, int]]:
    """User and system clock ticks of this process's threads, by kind of thread (the
    numbers of Twisted's pool threads and of writers left out); empty without /proc."""
    kinds: dict[str, tuple[int, int]] = {}
    names = {thread.native_id: thread.name for thread in threading.enumerate()}
    tasks = Path("/proc/self/task")
    for task_dir in tasks.iterdir() if tasks.exists() else ():
        try:
            fields = (task_dir / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended
            continue
        name = names.get(int(task_dir.name), "(not a Python thread)")
        kind = name.rstrip("-0123456789") or name
        user, system = kinds.get(kind, (0, 0))
        kinds[kind] = (user + int(fields[11]), system + int(fields[12]))
    return kinds


def print_thread_usage(before: dict, after: dict, count: int) -> None:
    """The server's CPU per request, by kind of thread, between *before* and *after*."""
    tick = os.sysconf("SC_CLK_TCK")
    for kind, (user, system) in sorted(after.items(), key=lambda item: -sum(item[1])):
        user0, system0 = before.get(kind, (0, 0))
        if user + system > user0 + system0:
            print(f"    {kind:<28} {(user - user0) / tick / count * 1000:5.2f} ms user"
                  f"  {(system - system0) / tick / count * 1000:5.2f} ms system")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def report(name: str, count: int, seconds: float, latencies: list[float], cpu: float) -> None:
    p50 = latencies[len(latencies) // 2] * 1000
    p95 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))] * 1000
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    print(f"{name:<22} {count:>6} in {seconds:6.2f} s  {count / seconds:7.1f}/s"
          f"  p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  p99 {p99:6.1f} ms"
          f"  max {latencies[-1] * 1000:6.1f} ms"
          f"  CPU {cpu / count * 1000:5.2f} ms each")


@defer.inlineCallbacks
def provide_all(reactor, client, made, data: bytes, concurrency: int):
    """The ITI-41 phase: every submission of *made*, *concurrency* in flight; reported."""
    def provide(spec):
        def call():
            d = client.provide_and_register(spec, {"Document01": data})
            return d.addCallback(_success)
        return call

    seconds, latencies, cpu = yield timed([provide(spec) for spec, _ in made], concurrency,
                                          reactor)
    report("ITI-41 (MTOM)", len(made), seconds, latencies, cpu)


@defer.inlineCallbacks
def client_of(reactor, options):
    """--client-of BASE: the ITI-41 phase only, against an engine another process serves
    (its CPU line is this client process's)."""
    base = options.client_of
    client = XDSClient(HTTPSender(reactor, timeout=300, connections_per_host=options.concurrency),
                       repository_url=base + "/repository",
                       registry_url=base + "/registry")
    data = b"<ClinicalDocument xmlns='urn:hl7-org:v3'/>".ljust(options.kilobytes * 1024)
    made = [numbered(n, data) for n in range(options.submissions)]
    yield provide_all(reactor, client, made, data, options.concurrency)
    sys.stdout.flush()


@defer.inlineCallbacks
def main(reactor, options):
    if options.client_of:
        yield client_of(reactor, options)
        return
    directory = Path(tempfile.mkdtemp(prefix="aiguillage-bench-"))
    url = options.database or f"sqlite:///{directory / 'store.db'}"
    (directory / "engine.yaml").write_text(yaml.safe_dump({
        "store": {"url": url, "sqlite_synchronous": options.sqlite_synchronous},
        "log_level": "warning", "shared_record": {
            "listen": "127.0.0.1:0", "repository_unique_id": REPOSITORY}}))
    engine = Engine(load_config(str(directory / "engine.yaml")), reactor)
    yield engine.start()
    if settle is not None:
        settle()  # as `aiguillage run` does once the engine has started
    try:
        if options.one_commit_each:  # as before group commit: a transaction each, store threads
            engine.shared_record.handler._write = None
            engine.shared_record.handler._store = engine.store
        base = engine.shared_record.base_url
        client = XDSClient(HTTPSender(reactor, timeout=300, connections_per_host=options.concurrency),
                       repository_url=base + "/repository",
                           registry_url=base + "/registry")
        data = b"<ClinicalDocument xmlns='urn:hl7-org:v3'/>".ljust(options.kilobytes * 1024)
        made = [numbered(n, data) for n in range(options.submissions)]
        print(f"store {url.split(':')[0]}, {options.submissions} submissions of "
              f"{options.kilobytes} KiB, {options.concurrency} in flight")

        if options.client_process or options.client == "raw":
            command = [sys.executable, __file__, "--client-of", base] \
                if options.client == "xds" else [sys.executable, str(RAW_CLIENT), base]
            began, usage, by_thread = time.perf_counter(), server_usage(), thread_usage()
            done = yield threads.deferToThread(subprocess.run, command + [
                "--submissions", str(options.submissions), "--concurrency",
                str(options.concurrency), "--kilobytes", str(options.kilobytes)])
            seconds, (user, system) = time.perf_counter() - began, server_usage(usage)
            print(f"  server CPU {(user + system) / len(made) * 1000:5.2f} ms each"
                  f" ({system / len(made) * 1000:.2f} system), {seconds:.2f} s with the"
                  " client's start")
            print_thread_usage(by_thread, thread_usage(), len(made))
            if done.returncode:
                raise SystemExit(f"the ITI-41 client failed (exit status {done.returncode})")
        else:
            yield provide_all(reactor, client, made, data, options.concurrency)
        print(f"  {engine.shared_record.threads.groups} group commits")
        if options.only_iti41:
            return

        def query(patient):
            def call():
                return client.stored_query(find_documents(patient)).addCallback(_found_one)
            return call

        seconds, latencies, cpu = yield timed([query(patient) for _, patient in made],
                                         options.concurrency, reactor)
        report("ITI-18 FindDocuments", len(made), seconds, latencies, cpu)

        def retrieve(spec):
            def call():
                reference = DocumentReference(REPOSITORY, spec.documents[0].unique_id)
                return client.retrieve([reference]).addCallback(_retrieved, len(data))
            return call

        seconds, latencies, cpu = yield timed([retrieve(spec) for spec, _ in made],
                                         options.concurrency, reactor)
        report("ITI-43 (MTOM)", len(made), seconds, latencies, cpu)
    finally:
        yield engine.stop()


def _success(response):
    if response.status != RESPONSE_SUCCESS:
        raise AssertionError(f"ITI-41 refused: {response.errors}")


def _found_one(answer):
    if answer.get("status") != RESPONSE_SUCCESS or len(answer.find(rim("RegistryObjectList"))) != 1:
        raise AssertionError("FindDocuments did not find the one document")


def _retrieved(result, size: int):
    status, documents = result
    [document] = documents.values()
    if status.status != RESPONSE_SUCCESS or document.size != size:
        raise AssertionError("retrieve did not give the document back")
    document.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submissions", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--kilobytes", type=int, default=50)
    parser.add_argument("--database", help="SQLAlchemy URL of an empty database")
    parser.add_argument("--client", choices=("xds", "raw"), default="xds",
                        help="ITI-41 sent by XDSClient (end to end), or by bench/raw_iti41.py"
                        " (one request rendered once, ids swapped: a light client in a"
                        " process of its own)")
    parser.add_argument("--client-process", action="store_true",
                        help="the XDSClient ITI-41 clients in a process of their own"
                        " (server CPU alone)")
    parser.add_argument("--client-of", metavar="BASE_URL", help=argparse.SUPPRESS)
    parser.add_argument("--only-iti41", action="store_true",
                        help="stop after the ITI-41 phase (to profile it)")
    parser.add_argument("--one-commit-each", action="store_true",
                        help="ITI-41 as before group commit, to compare")
    parser.add_argument("--sqlite-synchronous", default="full", choices=("full", "normal"))
    task.react(main, [parser.parse_args()])
