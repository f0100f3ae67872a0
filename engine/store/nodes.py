"""
The ``nodes`` table: which engine processes run on this store, and since when they were heard of.

Each process upserts its row when it starts and at every heartbeat (through the group-commit
writer, so the reactor never waits), and deletes it on a clean stop. A process that died
leaves its row behind with an old heartbeat: :func:`node_entries` marks it stale, which is
what an operator needs to see ("a worker died two minutes ago"), until it is pruned.

test-case-name: tests.store.test_nodes
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

from sqlalchemy import delete, insert, select, update

from engine.store.schema import nodes
from engine.store.writer import WriteOp

PRUNE_AFTER = 24 * 3600.0  # seconds without a heartbeat before a row is forgotten
SENDING_ROLE = "delivery"  # in the role of a process with lanes (engine.app: intake+delivery)


@dataclass(frozen=True)
class NodeRow:
    """One process as the table records it (see :data:`engine.store.schema.nodes`)."""

    process: str
    name: str
    pid: int
    role: str
    host: str
    started_at: float
    heartbeat_at: float
    version: str
    received: int = 0
    sent: int = 0


class HeartbeatOp(WriteOp):
    """Upsert each process's row; forget rows silent for :data:`PRUNE_AFTER` (writer thread).

    An UPDATE, then an INSERT when no row matched: the same two statements on SQLite and
    PostgreSQL, and only the process itself writes its row, so the two cannot race.
    """

    rank = 90

    def apply(self, conn: Any, items: Sequence[NodeRow]) -> list[None]:
        for row in items:
            values = asdict(row)
            done = conn.execute(update(nodes).where(nodes.c.process == row.process)
                                .values(**values))
            if done.rowcount == 0:
                conn.execute(insert(nodes).values(**values))
        oldest = min(row.heartbeat_at for row in items) - PRUNE_AFTER
        conn.execute(delete(nodes).where(nodes.c.heartbeat_at < oldest))
        return [None] * len(items)


class LeaveOp(WriteOp):
    """Delete the rows of processes that stop cleanly (items: their ``process`` names)."""

    rank = 90

    def apply(self, conn: Any, items: Sequence[str]) -> list[None]:
        conn.execute(delete(nodes).where(nodes.c.process.in_(list(items))))
        return [None] * len(items)


def list_nodes(conn: Any) -> list[NodeRow]:
    """Every process row, by node name then start time (blocking: a read thread or the CLI)."""
    rows = conn.execute(select(nodes).order_by(nodes.c.name, nodes.c.started_at)).mappings()
    return [NodeRow(**row) for row in rows]


def sending_since(conn: Any, since: float) -> set[str]:
    """``node/pid`` of each process with a delivery role heard of since ``since`` (blocking:
    a store thread; engine.delivery.claims counts them in the lanes' shares)."""
    query = select(nodes.c.name, nodes.c.pid).where(nodes.c.heartbeat_at >= since,
                                                     nodes.c.role.contains(SENDING_ROLE))
    return {f"{name}/{pid}" for name, pid in conn.execute(query)}


def node_entries(rows: Sequence[NodeRow], now: float, stale_after: float) -> list[dict]:
    """What ``status`` shows of each process: its row, seconds since its heartbeat, and
    ``stale`` when that is more than ``stale_after`` (it died, hangs, or lost the store)."""
    entries = []
    for row in rows:
        since = max(0.0, now - row.heartbeat_at)
        entries.append({**asdict(row), "heartbeat_age": round(since, 1),
                        "stale": since > stale_after})
    return entries
