"""
A minimal MLLP server, the yardstick of bench/cpu_per_message.py: what persisting and
acknowledging a message costs at the least, in the same language and framework.

Twisted protocol, frames split on FS CR, MSH-10 read with one split, the raw bytes queued to a
writer thread that inserts each batch (everything queued) into SQLite in WAL mode,
``synchronous=FULL``, one ``executemany`` and one commit per batch, then hands the batch's
ACKs (``MSA|AA|<MSH-10>``) back to the reactor in one ``callFromThread``. No character set,
no dedupe, no journal, no deliveries, no validation of anything: not an engine.

    python bench/baseline_server.py --database /tmp/baseline.db   # prints PORT <n>
"""
from __future__ import annotations

import argparse
import queue
import sqlite3
import threading
import time

from twisted.internet import protocol, reactor

START, END = b"\x0b", b"\x1c\r"


class Writer:
    """The group-commit thread."""

    def __init__(self, path: str):
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.path = path
        threading.Thread(target=self.run, daemon=True).start()

    def run(self) -> None:
        db = sqlite3.connect(self.path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY, "
                   "received_at REAL, control_id TEXT, raw BLOB)")
        while True:
            batch = [self.queue.get()]
            while True:
                try:
                    batch.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            db.execute("BEGIN")
            db.executemany("INSERT INTO messages (received_at, control_id, raw) VALUES (?, ?, ?)",
                           [(at, control_id, raw) for _, at, control_id, raw in batch])
            db.execute("COMMIT")
            reactor.callFromThread(answer, batch)


def answer(batch: list) -> None:
    for transport, _, control_id, _ in batch:
        transport.write(START + b"MSH|^~\\&|BASE|BASE|||20260101||ACK|" + control_id
                        + b"|P|2.5\rMSA|AA|" + control_id + b"\r" + END)


class MLLP(protocol.Protocol):
    def __init__(self, writer: Writer):
        self.writer = writer
        self.buffer = b""

    def dataReceived(self, data: bytes) -> None:
        *frames, self.buffer = (self.buffer + data).split(END)
        for frame in frames:
            raw = frame.lstrip(START)
            control_id = raw.split(b"\r", 1)[0].split(b"|", 10)[9]
            self.writer.queue.put((self.transport, time.time(), control_id, raw))


class Factory(protocol.Factory):
    def __init__(self, writer: Writer):
        self.writer = writer

    def buildProtocol(self, addr) -> MLLP:
        return MLLP(self.writer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", required=True)
    args = parser.parse_args()
    port = reactor.listenTCP(0, Factory(Writer(args.database)), interface="127.0.0.1")
    print(f"PORT {port.getHost().port}", flush=True)
    reactor.run()


if __name__ == "__main__":
    main()
