"""
Benchmark tool: instructions the reactor thread's path of one plain message takes, without a
socket, a writer thread or a loaded machine in the figure, counted by valgrind's callgrind.

The path: MLLPServerProtocol.dataReceived (a StringTransport, a task.Clock) -> the MLLP
source -> Intake (read MSH, decode, decide, record) -> a store that commits at once -> the
ACK built and written. The channel is vs_baseline.py's plain one (intake alone: an MLLP
destination ordered by patient on two lanes); the messages are the load client's (ADT^A01
and ORU^R01 in turn, 500 patients). It runs itself under callgrind for ``--few`` and
``--many`` messages and prints the difference divided by the difference in messages. The
collector is kept off what the set-up made (``gc.freeze``), so that a full collection does not
land in one run and not the other; the cost of collecting what each message makes is still
counted. The figure still moves between runs of one tree (by up to 18 000 a message on
2026-12-07, see bench/README.md): run it more than once. What bench/callgrind_plain.py's
reactor figure adds is Twisted's loop (epoll, recv, send), the store's submit and its
answers' hop back, and the full collections.

    PYTHONPATH=TREE .venv/bin/python bench/callgrind_reactor.py [--few 100] [--many 600]

(``PYTHONPATH`` names the tree measured; ``--run N`` is the loop itself, what callgrind runs.)
"""
from __future__ import annotations

import argparse
import gc
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("AIGUILLAGE_SHARED", ROOT.parent / "shared"))
MESSAGES = 600  # made before the loop in every run, whatever its length


def frames(count: int) -> list[bytes]:
    """``count`` framed messages of the load client (tools/mllp_load), its mixed kinds."""
    sys.path.insert(0, str(SHARED / "tools" / "mllp_load"))
    import hl7msgs

    from mllp.framing import encode_frame

    made = []
    for number in range(count):
        text = hl7msgs.render(("adt", "oru")[number % 2], "abcdefgh%08d" % number)
        payload = text.encode("utf-8").replace(
            b"123456789^^^", b"%09d^^^" % (100000000 + number % 500), 1)
        made.append(encode_frame(payload))
    return made


class InstantStore:
    """Commits at once: what the real store answers a decided record, no I/O."""

    def __init__(self) -> None:
        self.count = 0

    def ingest(self, record, then=None):
        from engine.store.records import IngestResult

        self.count += 1
        decision = record.decision
        then(True, IngestResult(self.count, decision.status, None,
                                tuple(range(len(decision.deliveries)))))


class IdleDecider:
    """The plain channel is decided on the reactor: nothing is ever submitted."""

    def submit(self, channel, message):
        raise AssertionError("the plain channel has a fast plan")

    def holds(self, channel) -> bool:
        return False


def run(messages: int) -> None:
    """Feed ``messages`` frames through the path, each answered before the next."""
    from twisted.internet import task
    from twisted.internet.address import IPv4Address
    from twisted.internet.testing import StringTransport

    from channels.mllp_source import MLLPSource
    from engine.app import channel_plan, load_config
    from engine.flow.intake import Intake
    from engine.flow.queued import QueuedWork

    folder = Path(tempfile.mkdtemp(prefix="aiguillage-reactor-"))
    (folder / "channels").mkdir()
    (folder / "engine.yaml").write_text(
        f"node: bench\nstore:\n  url: sqlite:///{folder}/unused.db\nchannels:\n"
        "  - channels/*.yaml\nlog_level: warning\n")
    (folder / "channels" / "plain.yaml").write_text(
        "name: plain\nsource:\n  type: mllp\n  host: 127.0.0.1\n  port: 0\n"
        "destinations:\n  - name: archive\n    type: mllp\n    host: 127.0.0.1\n"
        "    port: 9\n    ordering:\n      key: patient\n      lanes: 2\n")
    plan = channel_plan(load_config(str(folder / "engine.yaml")).channels[0])
    clock = task.Clock()
    intake = Intake(InstantStore(), {plan.name: plan}, IdleDecider(),
                    QueuedWork(clock, lambda keys: None))
    source = MLLPSource("plain", "plain", {"port": 0}, intake, clock)
    address = IPv4Address("TCP", "127.0.0.1", 40000)
    protocol = source._factory.buildProtocol(address)
    transport = StringTransport(peerAddress=address)
    protocol.makeConnection(transport)
    chosen = frames(MESSAGES)[:messages]
    # What the set-up left (the engine's modules, Twisted, SQLAlchemy) out of the collector's
    # reach: a full collection would walk it, once in one run and not in the other.
    gc.collect()
    gc.freeze()
    written = 0
    for frame in chosen:
        protocol.dataReceived(frame)
        written += len(transport.value())
        transport.clear()
        clock.advance(0)  # the lanes told, as the reactor's next turn would
    if messages and written < 100 * messages:
        raise RuntimeError(f"{written} bytes of ACKs for {messages} messages")


def instructions(messages: int) -> int:
    """Instructions of one whole run of ``messages`` under callgrind."""
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
         __file__, "--run", str(messages)], capture_output=True, text=True, check=True)
    found = re.search(r"Collected : (\d+)", out.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count from callgrind: {out.stderr[-400:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    parser.add_argument("--few", type=int, default=100)
    parser.add_argument("--many", type=int, default=600)
    parser.add_argument("--run", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run is not None:
        run(args.run)
        return
    if not 0 <= args.few < args.many <= MESSAGES:
        parser.error(f"expected 0 <= --few < --many <= {MESSAGES}")
    few, many = instructions(args.few), instructions(args.many)
    print(f"{(many - few) / (args.many - args.few):,.0f} instructions per message on the "
          f"reactor's path ({few:,} for {args.few}, {many:,} for {args.many})")


if __name__ == "__main__":
    main()
