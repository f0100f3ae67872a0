"""
Benchmark: the store's intake on PostgreSQL when senders resend part of what they send.

An HL7 sender resends what it got no ACK for (after a timeout or a reconnect), so a share of
what reaches the intake are copies of stored messages. ``--senders`` senders each submit one
message and wait for its commit before the next (as an MLLP sender waits for its ACK); a
``--resend`` share of the messages are copies of a message committed earlier. Prints
messages/s, the latency of a submission (p50, p99) and the connections the store opened
while measuring, for the tree on ``PYTHONPATH`` (run it against two trees, alternated).

Usage: ``.venv/bin/python bench/pg_resend.py [--messages 20000] [--senders 64]
[--resend 0.1] [--runs 3]``
"""
from __future__ import annotations

import argparse
import json
import random
import secrets
import statistics
import time

import psycopg
from sqlalchemy import event
from twisted.internet import defer, reactor

import engine
from engine import status as st
from engine.store.records import Decision, InboundRecord, NewDelivery
from engine.store.store import Store

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
RAW = (b"MSH|^~\\&|HIS|HOSP|ENG|HOSP|20260101120000||ADT^A01^ADT_A01|%s|P|2.5\r"
       b"EVN|A01|20260101120000\rPID|1||P%s^^^HOSP^PI||DOE^JOHN||19700101|M\r"
       b"PV1|1|I|W^1^1\r")


def record(control_id: str) -> InboundRecord:
    """A message decided before its commit, as a fast channel plan has it: one delivery."""
    return InboundRecord(
        channel="adt-in", received_at=time.time(), peer="127.0.0.1:40000",
        raw=RAW % (control_id.encode(), control_id.encode()), status=st.RECEIVED,
        sender="HIS|HOSP", control_id=control_id, message_type="ADT^A01^ADT_A01",
        charset="UNICODE UTF-8",
        decision=Decision(st.TRANSFORMED, deliveries=(NewDelivery("out"),)))


class Senders:
    """``count`` submissions by ``senders`` senders, a ``resend`` share of them copies."""

    def __init__(self, store: Store, resend: float, seed: int):
        self.prefix = f"R{seed}-"  # each run's new messages are new
        self.store = store
        self.resend = resend
        self.random = random.Random(seed)
        self.stored: list[str] = []  # control ids committed, for copies
        self.serial = 0
        self.latencies: list[float] = []
        self.copies = 0

    def next_id(self) -> str:
        if self.stored and self.random.random() < self.resend:
            self.copies += 1
            return self.random.choice(self.stored[-2000:])  # a recent one, as a resend is
        self.serial += 1
        return f"{self.prefix}{self.serial}"

    @defer.inlineCallbacks
    def sender(self, count: int):
        for _ in range(count):
            control_id = self.next_id()
            began = time.perf_counter()
            result = yield self.store.ingest(record(control_id))
            self.latencies.append(time.perf_counter() - began)
            if result.status != st.DUPLICATE:
                self.stored.append(control_id)

    def run(self, count: int, senders: int) -> defer.Deferred:
        return defer.gatherResults([self.sender(count // senders) for _ in range(senders)])


@defer.inlineCallbacks
def measure(args: argparse.Namespace, url: str):
    store = Store(url, reactor, node="bench", batch_max=1000)
    store.start()
    opened = []
    event.listen(store.engine, "connect", lambda *_: opened.append(1))
    figures = []
    try:
        for run in range(args.runs + 1):  # the first warms up (psycopg prepares)
            senders = Senders(store, args.resend, seed=run)
            before, batches = len(opened), store.writer.batches
            began = time.perf_counter()
            yield senders.run(args.messages, args.senders)
            wall = time.perf_counter() - began
            if run == 0:
                continue
            lat = sorted(senders.latencies)
            figures.append({
                "msg_per_s": round(len(lat) / wall),
                "p50_ms": round(statistics.median(lat) * 1e3, 2),
                "p99_ms": round(lat[int(len(lat) * 0.99)] * 1e3, 2),
                "copies": senders.copies, "connects": len(opened) - before,
                "batches": store.writer.batches - batches})
    finally:
        yield store.stop()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--senders", type=int, default=64)
    parser.add_argument("--resend", type=float, default=0.1)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    name = f"aiguillage_bench_{secrets.token_hex(6)}"
    with psycopg.connect(ADMIN, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    outcome: dict = {}
    try:
        d = measure(args, f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}")
        d.addCallbacks(lambda figures: outcome.update(figures=figures),
                       lambda failure: outcome.update(error=failure))
        d.addBoth(lambda _: reactor.stop())
        reactor.run()
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    if "error" in outcome:
        outcome["error"].raiseException()
    print(json.dumps({"tree": engine.__file__.rsplit("/engine/", 1)[0], "resend": args.resend,
                      "senders": args.senders, "runs": outcome["figures"]}))


if __name__ == "__main__":
    main()
