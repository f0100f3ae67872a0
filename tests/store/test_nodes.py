"""The nodes table on SQLite and PostgreSQL: upsert, leave, prune, and what status shows."""
from __future__ import annotations

from dataclasses import replace

from engine.store.nodes import (
    PRUNE_AFTER, HeartbeatOp, LeaveOp, NodeRow, list_nodes, node_entries)

ROW = NodeRow(process="n1/10/1.000000", name="n1", pid=10, role="intake+delivery",
              host="h", started_at=1.0, heartbeat_at=100.0, version="1.0")


def _write(engine, op, items) -> None:
    with engine.begin() as conn:
        op.apply(conn, items)


def test_a_heartbeat_inserts_then_updates_the_row(engine):
    """If a process beats twice, then it has one row carrying the second beat's values."""
    _write(engine, HeartbeatOp(), [ROW])
    _write(engine, HeartbeatOp(), [replace(ROW, heartbeat_at=105.0, received=7, sent=3)])
    with engine.connect() as conn:
        assert list_nodes(conn) == [replace(ROW, heartbeat_at=105.0, received=7, sent=3)]


def test_processes_of_several_nodes_are_listed_by_node_then_start(engine):
    """If three processes of two nodes beat, then all three are listed, node by node."""
    rows = [replace(ROW, process="n2/1/5", name="n2", pid=1, started_at=5.0),
            replace(ROW, process="n1/2/9", pid=2, started_at=9.0, role="delivery"), ROW]
    _write(engine, HeartbeatOp(), rows)
    with engine.connect() as conn:
        assert [r.process for r in list_nodes(conn)] == [ROW.process, "n1/2/9", "n2/1/5"]


def test_leave_deletes_only_that_row(engine):
    """If one process stops cleanly, then its row goes and the other stays."""
    other = replace(ROW, process="n1/11/2", pid=11)
    _write(engine, HeartbeatOp(), [ROW, other])
    _write(engine, LeaveOp(), [ROW.process])
    with engine.connect() as conn:
        assert list_nodes(conn) == [other]


def test_rows_silent_for_a_day_are_pruned_by_the_next_heartbeat(engine):
    """If a dead process's row is older than PRUNE_AFTER, then a heartbeat forgets it, while
    a row merely stale stays (the operator sees it)."""
    dead = replace(ROW, process="n1/1/0", pid=1, heartbeat_at=100.0 - PRUNE_AFTER - 1)
    stale = replace(ROW, process="n1/2/0", pid=2, heartbeat_at=50.0)
    _write(engine, HeartbeatOp(), [dead, stale])
    _write(engine, HeartbeatOp(), [ROW])
    with engine.connect() as conn:
        assert {r.process for r in list_nodes(conn)} == {ROW.process, stale.process}


def test_node_entries_mark_the_stale_ones():
    """If a heartbeat is older than stale_after, then its entry says stale, with its age."""
    entries = node_entries([ROW, replace(ROW, process="x", heartbeat_at=80.0)], 110.0, 15.0)
    assert [(e["process"], e["heartbeat_age"], e["stale"]) for e in entries] == [
        (ROW.process, 10.0, False), ("x", 30.0, True)]
