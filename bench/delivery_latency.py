"""
Benchmark: how long a message takes from its sender to the downstream system when the
engine is not busy: the latency an operator sees, not the throughput.

Starts ``aiguillage run`` on a channel of its own (MLLP in, MLLP out to a sink in this
process; ``--engine-args`` for the process model, default the engine's: delivery in a worker
process on two cores) and sends ``--messages`` ADT messages one at a time over one
connection, ``--gap`` milliseconds apart. Prints the ACK latency and the delivery latency
(from the send to the sink's receipt) p50 / p95 / max.

    .venv/bin/python bench/delivery_latency.py [--messages 200] [--gap 50]
        [--engine-args "--workers 0"]
"""
from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START, END = b"\x0b", b"\x1c\x0d"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def frames(connection: socket.socket):
    """Each MLLP payload read from ``connection`` until it closes."""
    buffer = b""
    while True:
        chunk = connection.recv(65536)
        if not chunk:
            return
        buffer += chunk
        while END in buffer:
            frame, buffer = buffer.split(END, 1)
            yield frame.lstrip(START)


def control_id(payload: bytes) -> str:
    return payload.split(b"\r", 1)[0].split(b"|")[9].decode()


def ack(payload: bytes) -> bytes:
    return (START + b"MSH|^~\\&|SINK|S|AIG|A|20260101||ACK|A" + control_id(payload).encode()
            + b"|P|2.5\rMSA|AA|" + control_id(payload).encode() + b"\r" + END)


class Sink:
    """The downstream system: records when each control id arrived, answers AA."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.arrived: dict[str, float] = {}
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            connection, _ = self.listener.accept()
            threading.Thread(target=self._read, args=(connection,), daemon=True).start()

    def _read(self, connection: socket.socket) -> None:
        for payload in frames(connection):
            self.arrived.setdefault(control_id(payload), time.perf_counter())
            connection.sendall(ack(payload))


def configure(folder: Path, port: int, sink_port: int) -> Path:
    (folder / "channels").mkdir(parents=True)
    (folder / "engine.yaml").write_text(
        f"node: latency\nstore:\n  url: sqlite:///{folder}/store.db\n"
        "channels:\n  - channels/*.yaml\nlog_level: warning\n")
    (folder / "channels" / "adt.yaml").write_text(
        f"name: adt\nsource:\n  type: mllp\n  host: 127.0.0.1\n  port: {port}\n"
        f"destinations:\n  - name: downstream\n    type: mllp\n    host: 127.0.0.1\n"
        f"    port: {sink_port}\n")
    return folder / "engine.yaml"


def message(number: int) -> bytes:
    return (START + f"MSH|^~\\&|HIS|H|AIG|R|20260101||ADT^A01|L{number:06d}|P|2.5\r"
            f"PID|1||{number % 50}^^^H^PI||DOE^JOHN\r".encode() + END)


def percentiles(values: list[float]) -> str:
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return f"p50 {pick(0.5):7.2f} ms  p95 {pick(0.95):7.2f} ms  max {ordered[-1] * 1000:7.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--gap", type=float, default=50.0, help="milliseconds between sends")
    parser.add_argument("--engine-args", default="", help="options of `aiguillage run`")
    args = parser.parse_args()
    sink = Sink()
    with tempfile.TemporaryDirectory(prefix="latency-") as tmp:
        port = free_port()
        config = configure(Path(tmp), port, sink.port)
        aiguillage = str(ROOT / ".venv" / "bin" / "aiguillage")
        subprocess.run([aiguillage, "db", "upgrade", "--config", str(config)], check=True,
                       capture_output=True)
        engine = subprocess.Popen([aiguillage, "run", "--config", str(config),
                                   *args.engine_args.split()],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            run(port, sink, args)
        finally:
            engine.terminate()
            engine.wait(60)


def run(port: int, sink: Sink, args: argparse.Namespace) -> None:
    deadline = time.time() + 60
    while True:
        try:
            client = socket.create_connection(("127.0.0.1", port))
            break
        except ConnectionRefusedError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)
    time.sleep(3)  # the worker processes start and claim their lanes
    sent: dict[str, float] = {}
    acks: list[float] = []
    answers = frames(client)
    for number in range(args.messages):
        payload = message(number)
        sent[f"L{number:06d}"] = started = time.perf_counter()
        client.sendall(payload)
        next(answers)
        acks.append(time.perf_counter() - started)
        time.sleep(args.gap / 1000)
    deadline = time.time() + 30
    while len(sink.arrived) < len(sent) and time.time() < deadline:
        time.sleep(0.05)
    delivered = [sink.arrived[cid] - at for cid, at in sent.items() if cid in sink.arrived]
    print(f"engine args: {args.engine_args or '(default)'}; {args.messages} messages, "
          f"{args.gap:g} ms apart; {len(delivered)} delivered")
    print(f"  ACK latency       {percentiles(acks)}")
    if delivered:
        print(f"  delivery latency  {percentiles(delivered)}")
    client.close()


if __name__ == "__main__":
    sys.exit(main())
