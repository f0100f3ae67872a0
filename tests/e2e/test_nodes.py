"""
Three engine processes on one PostgreSQL database, one killed with SIGKILL mid-stream.

Each process is a node of its own (``node: n1`` ... ``n3``, its own MLLP port) sharing the
store; they agree on who sends which delivery lane through the lease table alone. Senders
stream ADT messages of their own patients to "their" node (a load balancer keeps a
connection on one node); the node holding the most lanes is killed while messages flow, its
senders stop (their last message may be unacknowledged), and its lanes are taken over by the
others once its leases run out (``lease_ttl: 2s`` here).

Checked afterwards, from the sink's record (MSH-10, PID-3 and arrival time of each message,
fsync'd) and from the store:

- every ACKed message reached the sink;
- none reached it after its SENT was recorded (a re-send is allowed only for what the killed
  node sent but had not recorded: the journal's SENT time is after every arrival);
- each delivery was recorded SENT exactly once;
- per patient, the first arrivals keep the order in which the messages were acknowledged;
- the surviving nodes hold every lane (the killed one's were taken over).

The message count is modest by default; ``AIGUILLAGE_NODES_MESSAGES=30000`` (bench/three_nodes.py)
runs the full-size version.
"""
from __future__ import annotations

import contextlib
import os
import sys
import textwrap
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import create_engine, func, select

from engine import status as st
from engine.flow.response import APPLICATION_ACK
from engine.store.schema import deliveries, delivery_leases, journal, messages
from mllp.ack import parse_ack
from tests.dbs import postgres_database
from tests.e2e.test_crash import SINK, Process, free_port, processes, read_frame

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

CHANNEL = "nodes"
NODES = ("n1", "n2", "n3")
SENDERS_PER_NODE = 2
PATIENTS_PER_SENDER = 5
MESSAGES = int(os.environ.get("AIGUILLAGE_NODES_MESSAGES", "3000"))
EVENTS = ("A01", "A08", "A02", "A08", "A03")

def message(sender: int, n: int) -> tuple[str, str, bytes]:
    """(control id, patient, payload) of sender ``sender``'s ``n``-th message."""
    control_id = f"S{sender}M{n:06d}"
    patient = f"P{sender}X{n % PATIENTS_PER_SENDER}"
    event = EVENTS[(n // PATIENTS_PER_SENDER) % len(EVENTS)]
    payload = (f"MSH|^~\\&|HIS|CHU|ENG|CHU|20260101120000||ADT^{event}|{control_id}|P|2.5\r"
               f"EVN|{event}|20260101120000\r"
               f"PID|1||{patient}^^^CHU^PI||NOM^PRENOM||19700101|M\r").encode()
    return control_id, patient, payload


@dataclass
class Sender:
    """A thread sending its own messages to one node, each after the previous one's ACK."""

    number: int
    port: int
    budget: int
    stop: threading.Event = field(default_factory=threading.Event)
    acked: list[tuple[str, str]] = field(default_factory=list)  # (control id, patient)
    problems: list[str] = field(default_factory=list)

    def run(self) -> None:
        try:
            with __import__("socket").create_connection(("127.0.0.1", self.port), 5) as sock:
                sock.settimeout(30)
                for n in range(self.budget):
                    if self.stop.is_set():
                        return
                    control_id, patient, payload = message(self.number, n)
                    sock.sendall(b"\x0b" + payload + b"\x1c\r")
                    answer = parse_ack(read_frame(sock))
                    if not answer.accepted or answer.control_id_echoed != control_id:
                        self.problems.append(f"{control_id}: {answer}")
                        return
                    self.acked.append((control_id, patient))
        except OSError:
            if not self.stop.is_set():  # only the killed node's senders may lose their node
                self.problems.append(f"sender {self.number} lost its connection")


@contextlib.contextmanager
def sending(senders: list[Sender]) -> Iterator[list[threading.Thread]]:
    threads = [threading.Thread(target=s.run, name=f"sender-{s.number}", daemon=True)
               for s in senders]
    for thread in threads:
        thread.start()
    try:
        yield threads
    finally:
        for sender in senders:
            sender.stop.set()
        for thread in threads:
            thread.join(60)


def write_node(tmp_path: Path, node: str, store_url: str, sink_port: int) -> tuple[Path, int]:
    """``engine.yaml`` and the channel of one node; (config path, its MLLP port)."""
    port = free_port()
    directory = tmp_path / node
    (directory / "channels").mkdir(parents=True)
    (directory / "channels" / f"{CHANNEL}.yaml").write_text(textwrap.dedent(f"""\
        name: {CHANNEL}
        source: {{type: mllp, host: 127.0.0.1, port: {port}}}
        destinations:
          - name: downstream
            type: mllp
            host: 127.0.0.1
            port: {sink_port}
            connect_timeout: 2s
            ack_timeout: 5s
            retry: {{max_attempts: 100000, initial_delay: 0.1s, max_delay: 0.5s}}
            ordering: {{key: patient, lanes: 6}}
        """))
    (directory / "engine.yaml").write_text(textwrap.dedent(f"""\
        node: {node}
        store: {{url: "{store_url}", lease_ttl: 2s}}
        channels: [channels/*.yaml]
        log_level: warning
        """))
    return directory / "engine.yaml", port


def lane_holders(store_url: str) -> dict[str, int]:
    """Live leases per node name (the owner's first part), of the sink's lanes (not the
    channel's application-ack lane, which every intake runs)."""
    engine = create_engine(store_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(delivery_leases.c.owner, func.count())
                                .where(delivery_leases.c.owner.is_not(None),
                                       delivery_leases.c.destination != APPLICATION_ACK)
                                .group_by(delivery_leases.c.owner)).all()
    finally:
        engine.dispose()
    return {owner.split("/")[0]: count for owner, count in rows}


def sent_journal(store_url: str) -> tuple[dict[str, list[float]], list[str]]:
    """Per control id the times its delivery was journaled SENT (the lines written, and the
    one its row implies: engine.store.history); ids of unsent deliveries."""
    engine = create_engine(store_url)
    try:
        with engine.connect() as conn:
            found: set[tuple[str, int, float]] = set()
            for control_id, delivery_id, at in conn.execute(
                    select(messages.c.control_id, journal.c.delivery_id, journal.c.at)
                    .join(journal, journal.c.message_id == messages.c.id)
                    .where(journal.c.status == st.SENT, journal.c.delivery_id.is_not(None))):
                found.add((control_id, delivery_id, at))
            for control_id, delivery_id, at in conn.execute(
                    select(messages.c.control_id, deliveries.c.id, deliveries.c.updated_at)
                    .join(deliveries, deliveries.c.message_id == messages.c.id)
                    .where(deliveries.c.status == st.SENT)):
                found.add((control_id, delivery_id, at))
            sent: dict[str, list[float]] = {}
            for control_id, _, at in sorted(found):
                sent.setdefault(control_id, []).append(at)
            unsent = [row[0] for row in conn.execute(
                select(messages.c.control_id).join(
                    deliveries, deliveries.c.message_id == messages.c.id)
                .where(deliveries.c.status != st.SENT))]
    finally:
        engine.dispose()
    return sent, unsent


def arrivals(record: Path) -> list[tuple[str, str, float]]:
    if not record.exists():
        return []
    found = []
    for line in record.read_text().splitlines():
        control_id, patient, at = line.split()
        found.append((control_id, patient, float(at)))
    return found


def start_sink(started: list, tmp_path: Path) -> tuple[Path, int]:
    """The downstream MLLP sink (tests.e2e.durable_sink), added to ``started``: the file it
    records each arrival in, and its port."""
    record = tmp_path / "sink-received.txt"
    port = free_port()
    sink = Process("sink", [*SINK, str(port), str(record)], tmp_path / "sink.log")
    started.append(sink)
    sink.wait_for(f"sink listening on port {port}")
    return record, port


def check_delivered(acked: list[tuple[str, str]], record: Path, store_url: str) -> int:
    """Assert what a kill mid-stream must leave: every stored delivery recorded SENT, once;
    none arrived at the sink after its SENT was recorded; per patient, the first arrivals in
    the order of the ACKs (``acked``: control id, patient). Returns the re-sent arrivals."""
    seen = arrivals(record)
    sent, unsent = sent_journal(store_url)
    assert unsent == []
    assert all(len(times) == 1 for times in sent.values()), "a delivery recorded SENT twice"
    late = [(c, at) for c, _, at in seen if c in sent and at > sent[c][0]]
    assert not late, f"sent again after its SENT was recorded: {late[:5]}"
    first: dict[str, int] = {}
    for position, (control_id, _, _) in enumerate(seen):
        first.setdefault(control_id, position)
    by_patient: dict[str, list[str]] = {}
    for control_id, patient in acked:
        by_patient.setdefault(patient, []).append(control_id)
    for patient, ids in by_patient.items():
        assert ids == sorted(ids, key=first.__getitem__), f"patient {patient} out of order"
    return len(seen) - len(first)


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting until {what}")
        time.sleep(0.2)


@pytest.fixture
def store_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url


@pytest.mark.timeout(300)
def test_three_nodes_one_killed(tmp_path: Path, store_url: str) -> None:
    """Three nodes share the stream and the lanes; the busiest is SIGKILLed mid-stream."""
    with processes() as started:
        record, sink_port = start_sink(started, tmp_path)
        nodes = {}
        for node in NODES:
            config, port = write_node(tmp_path, node, store_url, sink_port)
            process = Process(node, [sys.executable, "-m", "engine.cli.main", "run",
                                     "--config", str(config)], tmp_path / f"{node}.log")
            started.append(process)
            nodes[node] = (process, config, port)
            # One after the other: the first creates the schema in the empty database.
            process.wait_for(f"channel {CHANNEL}: listening on port {port}")
        budget = MESSAGES // (len(NODES) * SENDERS_PER_NODE)
        senders = {node: [Sender(i * SENDERS_PER_NODE + j + 1, nodes[node][2], budget)
                          for j in range(SENDERS_PER_NODE)]
                   for i, node in enumerate(NODES)}
        everyone = [s for group in senders.values() for s in group]
        with sending(everyone) as threads:
            wait_until(lambda: sum(len(s.acked) for s in everyone) > MESSAGES // 3, 120,
                       "a third of the messages are acknowledged")
            holders = lane_holders(store_url)
            victim = max(NODES, key=lambda n: holders.get(n, 0))
            assert holders.get(victim), f"no node holds a lane: {holders}"
            for sender in senders[victim]:
                sender.stop.set()
            nodes[victim][0].crash()
            for thread in threads:
                thread.join(240)
        acked = [a for s in everyone for a in s.acked]
        problems = [p for s in everyone for p in s.problems]
        assert not problems, problems[:5]
        survivors = [n for n in NODES if n != victim]
        assert all(len(s.acked) == budget for n in survivors for s in senders[n])
        wanted = {c for c, _ in acked}
        wait_until(lambda: wanted <= {c for c, _, _ in arrivals(record)}, 120,
                   "every acknowledged message reaches the sink")
        wait_until(lambda: sent_journal(store_url)[1] == [], 60,
                   "every stored message is delivered (the unacknowledged ones too)")
        time.sleep(1.0)  # a late re-send would show now
        holders_after = lane_holders(store_url)

    resent = check_delivered(acked, record, store_url)
    assert set(holders_after) <= set(survivors), holders_after
    assert sum(holders_after.values()) == 6, holders_after
    print(f"{len(acked)} acked, {len(arrivals(record))} arrivals, {resent} re-sent after the "
          f"kill of {victim} (held {holders[victim]} lanes)")
