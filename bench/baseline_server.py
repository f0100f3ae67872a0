"""
The baseline the engine's intake is compared with: the least a durable MLLP server must do.

A Twisted MLLP server that splits each frame's MSH on its field separator, hands the message
to one writer thread that commits whatever is queued as soon as it is free (group commit),
and writes the ACK (AA, MSA-2 = MSH-10) only after the commit. Nothing else: no routing, no
journal, no deliveries. What the engine spends beyond this per message is the price of being
an engine; bench/vs_baseline.py measures both in one run.

Stores:
- ``sqlite:PATH``: SQLite in WAL mode, ``synchronous=FULL``, one ``executemany`` per batch;
- ``postgresql:DSN``: PostgreSQL through psycopg 3, one ``COPY`` per batch.

    python bench/baseline_server.py --port 2600 --store sqlite:/tmp/baseline.db

It prints ``listening on PORT`` once it serves, and runs until SIGTERM or SIGINT.
"""
from __future__ import annotations

import argparse
import queue
import sqlite3
import threading
import time

from twisted.internet import protocol, reactor

START, END = b"\x0b", b"\x1c\r"
SCHEMA = ("CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY, received_at REAL, "
          "control_id TEXT, raw BLOB)")
_STOP = object()


class SQLiteSink:
    """Commits batches to SQLite WAL with synchronous=FULL (writer thread only)."""

    def __init__(self, path: str):
        self._path = path

    def open(self) -> None:
        self._db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(SCHEMA)

    def commit(self, rows: list[tuple]) -> None:
        self._db.execute("BEGIN")
        self._db.executemany(
            "INSERT INTO messages (received_at, control_id, raw) VALUES (?, ?, ?)", rows)
        self._db.execute("COMMIT")


class PostgresSink:
    """Commits batches to PostgreSQL with one COPY each (writer thread only)."""

    def __init__(self, dsn: str):
        self._dsn = dsn

    def open(self) -> None:
        import psycopg

        self._db = psycopg.connect(self._dsn)
        with self._db.cursor() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS messages (id BIGSERIAL PRIMARY KEY, "
                        "received_at DOUBLE PRECISION, control_id TEXT, raw BYTEA)")
        self._db.commit()

    def commit(self, rows: list[tuple]) -> None:
        with self._db.cursor() as cur:
            with cur.copy("COPY messages (received_at, control_id, raw) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        self._db.commit()


class GroupWriter:
    """One thread; each batch is everything queued while the previous commit ran."""

    def __init__(self, sink) -> None:
        self._sink = sink
        self._queue: queue.SimpleQueue = queue.SimpleQueue()

    def start(self) -> None:
        self._sink.open()
        threading.Thread(target=self._run, daemon=True).start()

    def submit(self, row: tuple, done) -> None:
        self._queue.put((row, done))

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._sink.commit([row for row, _ in batch])
            reactor.callFromThread(_answer_all, [done for _, done in batch])


def _answer_all(callbacks: list) -> None:
    for done in callbacks:
        done()


def ack_for(message: bytes) -> bytes:
    """AA for ``message``, MSA-2 = its MSH-10 (fields split on MSH's own separator)."""
    fs = message[3:4]
    msh = message.split(b"\r", 1)[0].split(fs)
    control_id = msh[9] if len(msh) > 9 else b""
    return (START + b"MSH" + fs + msh[1] + fs + fs.join(msh[4:6] + msh[2:4]) + fs
            + time.strftime("%Y%m%d%H%M%S").encode() + fs + fs + b"ACK" + fs + b"A"
            + control_id + fs + b"P" + fs + (msh[11] if len(msh) > 11 else b"2.5")
            + b"\rMSA" + fs + b"AA" + fs + control_id + b"\r" + END)


class BaselineMLLP(protocol.Protocol):
    """Frames in, rows to the writer, ACKs out in the order the frames came."""

    def __init__(self, writer: GroupWriter):
        self._writer = writer
        self._buffer = b""

    def dataReceived(self, data: bytes) -> None:
        self._buffer += data
        while True:
            end = self._buffer.find(END)
            if end < 0:
                return
            frame, self._buffer = self._buffer[:end], self._buffer[end + 2:]
            message = frame[frame.find(START) + 1:]
            fs = message[3:4]
            control_id = message.split(b"\r", 1)[0].split(fs)[9:10]
            row = (time.time(), (control_id[0] if control_id else b"").decode("latin-1"),
                   message)
            ack = ack_for(message)
            self._writer.submit(row, lambda ack=ack: self.transport.write(ack))


class BaselineFactory(protocol.Factory):
    def __init__(self, writer: GroupWriter):
        self._writer = writer

    def buildProtocol(self, addr):
        return BaselineMLLP(self._writer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--store", required=True, help="sqlite:PATH or postgresql:DSN")
    args = parser.parse_args()
    kind, _, target = args.store.partition(":")
    sink = SQLiteSink(target) if kind == "sqlite" else PostgresSink(target)
    writer = GroupWriter(sink)
    writer.start()
    port = reactor.listenTCP(args.port, BaselineFactory(writer), interface="127.0.0.1",
                             backlog=128)
    print(f"listening on {port.getHost().port}", flush=True)
    reactor.run()


if __name__ == "__main__":
    main()
