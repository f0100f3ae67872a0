"""Tests for engine.store.idblocks.IdAllocator: ids from blocks reserved in id_blocks."""
from __future__ import annotations

import threading

from sqlalchemy import select

from engine.store import ops
from engine.store.schema import id_blocks
from engine.store.store import make_engine


def test_ids_increase_across_blocks(engine):
    """If a take spans the end of a block, then the ids still come out increasing and
    without repeats, and the next take starts after them."""
    allocator = ops.IdAllocator(engine, "messages", block_size=5)
    first = allocator.take(3)
    second = allocator.take(4)  # 2 left in the block, then a new one
    third = allocator.take(12)  # larger than a block
    ids = first + second + third
    assert ids == sorted(ids) and len(set(ids)) == len(ids) == 19
    assert first == [1, 2, 3]


def test_reserved_blocks_are_recorded(engine):
    """If an allocator reserves a block, then id_blocks moves past it, so another allocator
    (another node, or the next run) starts after it."""
    ops.IdAllocator(engine, "deliveries", block_size=100).take(1)
    with engine.connect() as conn:
        value = conn.execute(select(id_blocks.c.next_value)
                             .where(id_blocks.c.name == "deliveries")).scalar_one()
    assert value == 101
    assert ops.IdAllocator(engine, "deliveries", block_size=100).take(1) == [101]


def test_two_nodes_never_share_an_id(db_url, engine):
    """If two allocators on two engines (two nodes) take ids from the same sequence at once,
    from several threads each, then no id is handed out twice."""
    other = make_engine(db_url)
    try:
        nodes = [ops.IdAllocator(engine, "messages", block_size=7),
                 ops.IdAllocator(other, "messages", block_size=7)]
        taken: list[list[int]] = []
        lock = threading.Lock()
        start = threading.Barrier(4)

        def work(allocator: ops.IdAllocator) -> None:
            start.wait()
            mine = []
            for n in range(40):
                mine.extend(allocator.take(1 + n % 5))
            with lock:
                taken.append(mine)

        threads = [threading.Thread(target=work, args=(nodes[i % 2],)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not any(thread.is_alive() for thread in threads)
        everything = [i for mine in taken for i in mine]
        assert len(taken) == 4
        assert len(everything) == 4 * sum(1 + n % 5 for n in range(40))
        assert len(set(everything)) == len(everything)
        for mine in taken:
            assert mine == sorted(mine)
    finally:
        other.dispose()
