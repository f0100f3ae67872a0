"""
Speed of the XDS.b channel connectors and transforms.

1. The transforms, as the decision runs them: an ORU^R01 (samples/oru/r01-biochemistry.hl7)
   through ``oru-to-cda``, and through ``oru-to-cda`` then ``cda-to-xds`` (the CDA header
   read, the DocumentEntry built, the ITI-41 body written): milliseconds per message, one
   thread, the channel loaded from YAML as the engine loads it.
2. ITI-41 into the ``xds`` source of a real engine (SQLite in a temp dir, a routing-only
   channel with a ``file`` destination): --submissions requests of one --kilobytes CDA each,
   sent by --clients concurrent HTTP clients on loopback, MTOM or inline; submissions per
   second acknowledged (each answered Success only after its commit).

    .venv/bin/python bench/xds_connectors.py
    .venv/bin/python bench/xds_connectors.py --submissions 1000 --clients 8 --inline
"""
from __future__ import annotations

import argparse
import io
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402
from twisted.internet import defer, task  # noqa: E402
from twisted.web.client import Agent, FileBodyProducer, readBody  # noqa: E402
from twisted.web.http_headers import Headers  # noqa: E402

from engine.app import Engine, channel_plan, load_config  # noqa: E402
from engine.config.loader import load_channel_file  # noqa: E402
from engine.app import connector_specs  # noqa: E402
from engine.flow.decision import decide  # noqa: E402
from engine.flow.plan import InboundMessage  # noqa: E402
from xds.cda.submission import submission_from_cda  # noqa: E402
from xds.metadata.vocabulary import ACTION_PNR  # noqa: E402
from xds.soap.documents import provide_and_register_request  # noqa: E402
from xds.soap.envelope import request_envelope  # noqa: E402
from xds.soap.framing import write_message  # noqa: E402
from xds.transforms.options import metadata_options  # noqa: E402

SAMPLE = ROOT / "samples" / "oru" / "r01-biochemistry.hl7"
SETTINGS = {"source-id": "1.2.250.1.999.1.7",
            "class-code": {"code": "11", "scheme": "1.2.250.1.213.1.1.4.1"},
            "practice-setting-code": {"code": "LAB", "scheme": "1.2.250.1.213.1.1.4.9"},
            "healthcare-facility-code": {"code": "SA01", "scheme": "1.2.250.1.71.4.2.4"}}


def transform_cost(directory: Path, messages: int) -> None:
    channel = {"name": "lab", "source": {"type": "mllp", "port": 0},
               "transform": {"name": "oru-to-cda"},
               "destinations": [
                   {"name": "cda", "type": "file", "directory": str(directory / "cda")},
                   {"name": "xds", "type": "file", "directory": str(directory / "xds"),
                    "transform": {"name": "cda-to-xds", **SETTINGS}}]}
    path = directory / "lab.yaml"
    path.write_text(yaml.safe_dump(channel))
    plan = channel_plan(load_channel_file(path, connector_specs()))
    only_cda = plan.__class__(plan.name, plan.destinations[:1])
    raw = SAMPLE.read_bytes()
    message = InboundMessage(1, raw.decode("utf-8"), raw=raw)
    for label, chosen in (("oru-to-cda", only_cda), ("oru-to-cda + cda-to-xds (both)", plan)):
        decide(chosen, message)  # warm up
        start = time.perf_counter()
        for _ in range(messages):
            decision = decide(chosen, message)
        elapsed = time.perf_counter() - start
        assert decision.status == "TRANSFORMED", decision.error
        print(f"decide with {label}: {elapsed / messages * 1000:.2f} ms/message "
              f"({messages} messages)")


def cda(number: int, size: int) -> bytes:
    head = ("<ClinicalDocument xmlns='urn:hl7-org:v3'>"
            f"<id root='1.2.250.1.999.1.{number}'/>"
            "<code code='11502-2' codeSystem='2.16.840.1.113883.6.1'/>"
            "<effectiveTime value='20240312101522+0100'/>"
            "<recordTarget><patientRole><id root='1.2.250.1.999.1.1' extension='IPP7'/>"
            "</patientRole></recordTarget><component><nonXMLBody><text>").encode()
    tail = b"</text></nonXMLBody></component></ClinicalDocument>"
    return head + b"x" * max(0, size - len(head) - len(tail)) + tail


def requests(count: int, size: int, mtom: bool, url: str) -> list[tuple[bytes, bytes]]:
    """(Content-Type, body) of each ITI-41, built before the clock starts."""
    options = metadata_options(SETTINGS)
    built = []
    for number in range(count):
        made = submission_from_cda(cda(number, size), options)
        body, parts = provide_and_register_request(made.submission, made.documents,
                                                   optimise=mtom)
        content_type, chunks = write_message(request_envelope(ACTION_PNR, body, to=url),
                                             parts, ACTION_PNR, mtom)
        built.append((content_type.encode(), b"".join(chunks)))
    return built


@defer.inlineCallbacks
def source_speed(reactor, directory: Path, count: int, clients: int, size: int, mtom: bool):
    (directory / "channels").mkdir(parents=True)
    (directory / "engine.yaml").write_text(yaml.safe_dump({
        "node": "bench", "store": {"url": f"sqlite:///{directory / 'bench.db'}"},
        "channels": ["channels/*.yaml"], "log_level": "warning"}))
    (directory / "channels" / "hospital.yaml").write_text(yaml.safe_dump({
        "name": "hospital", "source": {"type": "xds", "port": 0},
        "destinations": [{"name": "archive", "type": "file",
                          "directory": str(directory / "out"), "fsync": False}]}))
    engine = Engine(load_config(str(directory / "engine.yaml")), reactor)
    yield engine.start()
    try:
        url = f"http://127.0.0.1:{engine.source_port('hospital')}/xds/recipient"
        built = requests(count, size, mtom, url)
        agent = Agent(reactor)
        answers = []

        @defer.inlineCallbacks
        def client(mine):
            for content_type, body in mine:
                response = yield agent.request(b"POST", url.encode(), Headers(
                    {b"Content-Type": [content_type]}), FileBodyProducer(io.BytesIO(body)))
                answers.append((yield readBody(response)))

        start = time.perf_counter()
        yield defer.gatherResults([client(built[i::clients]) for i in range(clients)],
                                  consumeErrors=True)
        elapsed = time.perf_counter() - start
        ok = sum(b"ResponseStatusType:Success" in answer for answer in answers)
        print(f"ITI-41 into the xds source ({'MTOM' if mtom else 'inline'}, {size // 1000} kB "
              f"CDA, {clients} clients): {count} in {elapsed:.2f} s, "
              f"{count / elapsed:.0f} submissions/s, {ok} answered Success")
    finally:
        yield engine.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--submissions", type=int, default=500)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--kilobytes", type=int, default=50)
    parser.add_argument("--inline", action="store_true")
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="aiguillage-bench-xds-"))
    try:
        transform_cost(directory, args.messages)
        task.react(lambda reactor: source_speed(
            reactor, directory / "engine", args.submissions, args.clients,
            args.kilobytes * 1000, not args.inline))
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
