"""
One engine node with three delivery worker processes, the busiest worker killed with SIGKILL
mid-stream: issue 8's "the same with worker processes killed inside one node".

The node's workers share its lanes through the lease table, as nodes do
(tests/e2e/test_nodes.py runs three nodes): each holds its share (engine.delivery.claims). Here
the intake goes on taking every sender's messages while the worker holding the most lanes
dies, the supervisor starts another, and the dead one's lanes are taken over by living
workers once its leases run out (``lease_ttl: 2s``). On SQLite as on PostgreSQL: one node owns every lane of a SQLite
store, and its workers take turns on it.

Checked afterwards, from the sink's record and the store, as in test_nodes.py: every ACKed
message reached the sink; none reached it after its SENT was recorded; each delivery was
recorded SENT exactly once; per patient, first arrivals keep the ACK order; the lanes are
shared again by living workers, the killed one's replacement among them.
"""
from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import create_engine, select

from engine.flow.response import APPLICATION_ACK
from engine.store.schema import delivery_leases
from tests.dbs import postgres_database
from tests.e2e.test_crash import Process, processes
from tests.e2e.test_nodes import (Sender, arrivals, check_delivered, sending, sent_journal,
                                  start_sink, wait_until, write_node)
from tests.e2e.test_processes import _alive as alive

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

WORKERS = 3
LANES = 6  # the channel's ordering lanes (write_node)
SENDERS = 4
MESSAGES = int(os.environ.get("AIGUILLAGE_WORKERS_MESSAGES", "2400"))


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
    else:
        with postgres_database() as url:
            yield url


def lanes_by_process(store_url: str) -> dict[int, int]:
    """Live leases of the sink's lanes per owning process id (an owner is node/pid/start)."""
    engine = create_engine(store_url)
    try:
        with engine.connect() as conn:
            owners = conn.execute(select(delivery_leases.c.owner, delivery_leases.c.lease_until)
                                  .where(delivery_leases.c.owner.is_not(None),
                                         delivery_leases.c.destination != APPLICATION_ACK)
                                  ).all()
    finally:
        engine.dispose()
    held: dict[int, int] = {}
    for owner, until in owners:
        if until > time.time():  # PostgreSQL's clock is this machine's here
            pid = int(owner.split("/")[1])
            held[pid] = held.get(pid, 0) + 1
    return held



@pytest.mark.timeout(300)
def test_one_of_three_workers_killed(tmp_path: Path, store_url: str) -> None:
    """If one of three delivery workers, each holding its share of the lanes, is SIGKILLed
    while four senders stream, then every ACKed message is delivered, none after its SENT
    was recorded, each SENT once, per-patient order holds, and afterwards three living
    workers (the killed one's replacement among them) hold two lanes each."""
    with processes() as started:
        record, sink_port = start_sink(started, tmp_path)
        config, port = write_node(tmp_path, "w", store_url, sink_port)
        node = Process("node", [sys.executable, "-m", "engine.cli.main", "run", "--config",
                                str(config), "--workers", str(WORKERS)], tmp_path / "node.log")
        started.append(node)
        node.wait_for(f"supervising {WORKERS} child process(es)")
        node.wait_for(f"listening on port {port}")
        senders = [Sender(n + 1, port, MESSAGES // SENDERS) for n in range(SENDERS)]
        with sending(senders) as threads:
            wait_until(lambda: sum(len(s.acked) for s in senders) > MESSAGES // 3, 120,
                       "a third of the messages are acknowledged")
            wait_until(lambda: sorted(lanes_by_process(store_url).values()) == [2, 2, 2], 60,
                       "each worker holds its share of the lanes")
            held = lanes_by_process(store_url)
            victim = max(held, key=held.__getitem__)
            assert victim != node.pid, f"the intake holds the sink's lanes: {held}"
            os.kill(victim, signal.SIGKILL)
            for thread in threads:
                thread.join(240)
        acked = [a for s in senders for a in s.acked]
        problems = [p for s in senders for p in s.problems]
        assert not problems, problems[:5]
        assert len(acked) == MESSAGES // SENDERS * SENDERS  # the intake never stopped
        wanted = {c for c, _ in acked}
        wait_until(lambda: wanted <= {c for c, _, _ in arrivals(record)}, 120,
                   "every acknowledged message reaches the sink")
        wait_until(lambda: sent_journal(store_url)[1] == [], 60,
                   "every stored message is recorded delivered")
        node.wait_for(f"(pid {victim}) ended unexpectedly (signal 9)")
        # the killed worker's lanes taken over, then shared again with its replacement
        wait_until(lambda: victim not in (held_now := lanes_by_process(store_url))
                   and sorted(held_now.values()) == [2, 2, 2], 60,
                   "three living workers hold two lanes each, none the killed one")
        time.sleep(1.0)  # a late re-send would show now
        holders_after = lanes_by_process(store_url)
        living = {pid: alive(pid) for pid in holders_after}

    resent = check_delivered(acked, record, store_url)
    assert victim not in holders_after and all(living.values()), (holders_after, living)
    assert sorted(holders_after.values()) == [2, 2, 2], holders_after
    print(f"{len(acked)} acked, {len(arrivals(record))} arrivals, {resent} re-sent after the "
          f"kill of worker {victim} (held {held[victim]} of {LANES} lanes)")
