"""
A fast MLLP sink for the benchmark: acknowledges every message AA and reports, on stdout, the
moment it has received the number of messages it was told to expect.

Run by bench/mllp_throughput.py in a process of its own so that its CPU is not the engine's.
"""
from __future__ import annotations

import argparse
import sys
import time

from twisted.internet import defer, reactor

from mllp.ack import ACCEPT, ack_code, ack_mode_for, build_ack
from mllp.header import read_header
from mllp.protocol import MLLPServerFactory
from mllp.tls import server_endpoint


class CountingSink:
    def __init__(self, expect: int):
        self.expect = expect
        self.count = 0
        self.first = None

    def receive(self, payload: bytes, peer: object) -> defer.Deferred:
        header = read_header(payload)
        self.count += 1
        if self.first is None:
            self.first = time.time()
        if self.count == self.expect:
            print(f"DONE {self.count} {self.first:.6f} {time.time():.6f}", flush=True)
        code = ack_code(ACCEPT, ack_mode_for(header))
        return defer.succeed(build_ack(header, code, control_id=f"S{self.count}",
                                       timestamp="20260101000000"))

    def frame_error(self, peer: object, error: Exception, prefix: bytes) -> None:
        print(f"FRAME-ERROR {error}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--expect", type=int, required=True)
    args = parser.parse_args()
    factory = MLLPServerFactory(CountingSink(args.expect), max_frame_size=16 << 20,
                                idle_timeout=3600)
    d = server_endpoint(reactor, "127.0.0.1", args.port).listen(factory)
    d.addCallback(lambda port: print(f"PORT {port.getHost().port}", flush=True))
    reactor.run()


if __name__ == "__main__":
    main()
