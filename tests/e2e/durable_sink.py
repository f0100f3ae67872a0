"""
A downstream MLLP system run as a process of its own by the crash and several-node tests:
``python -m tests.e2e.durable_sink PORT RECORD``. Each message it receives is recorded
before its AA goes back (MSH-10, the first PID-3 id or ``-``, the arrival time; fsync'd),
so that what the sink acknowledged survives the sink and can be checked after the engine
processes it talked to were killed.
"""
from __future__ import annotations

import os
import sys
import time

from twisted.internet import defer, reactor

from mllp.ack import build_ack
from mllp.header import read_header
from mllp.protocol import MLLPServerFactory


def patient_of(payload: bytes) -> str:
    """PID-3's first identifier, or ``-`` when the message has no PID."""
    _, found, rest = payload.partition(b"\rPID|")
    if not found:
        return "-"
    return rest.split(b"|", 3)[2].split(b"^")[0].decode() or "-"


class DurableSink:
    """Records, fsyncs, answers AA with a control id of its own."""

    def __init__(self, record_path: str) -> None:
        self._record = open(record_path, "a", encoding="ascii")
        self.count = 0

    def receive(self, payload: bytes, peer: str) -> defer.Deferred:
        header = read_header(payload)
        self._record.write(f"{header.control_id} {patient_of(payload)} {time.time():.6f}\n")
        self._record.flush()
        os.fsync(self._record.fileno())
        self.count += 1
        return defer.succeed(build_ack(header, "AA", control_id=f"SINK{self.count}",
                                       timestamp="20260101000000"))

    def frame_error(self, peer: str, error: object, prefix: bytes) -> None:
        print(f"sink frame error: {error}", flush=True)


def main(port: int, record_path: str) -> None:
    listening = reactor.listenTCP(port, MLLPServerFactory(DurableSink(record_path)),
                                  interface="127.0.0.1")
    print(f"sink listening on port {listening.getHost().port}", flush=True)
    reactor.run()


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
