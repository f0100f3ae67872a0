"""engine.heap: the start-up heap frozen once settled, given back to the collector for a
reload and frozen again after it; nothing done in a process that never settled."""
from __future__ import annotations

import gc
import weakref

import pytest
from twisted.internet import defer

from engine import heap


class Node:
    """An object that can sit in a reference cycle and be watched by a weak reference."""

    other = None


@pytest.fixture
def fresh_heap():
    yield
    gc.unfreeze()
    heap._settled = False


def cycle() -> weakref.ref:
    first, second = Node(), Node()
    first.other, second.other = second, first
    return weakref.ref(first)


def test_settle_freezes_what_remains(fresh_heap):
    heap.settle()
    assert heap.is_settled() and gc.get_freeze_count() > 0
    kept = cycle()  # made after the freeze: collected as usual
    gc.collect()
    assert kept() is None


def test_a_reload_gives_frozen_cycles_back_to_the_collector(fresh_heap):
    channel = [Node(), Node()]  # a channel's objects, made at start-up, in a cycle
    channel[0].other, channel[1].other = channel[1], channel[0]
    old = weakref.ref(channel[0])
    heap.settle()
    del channel  # the reload drops the channel: cyclic garbage, frozen
    gc.collect()
    assert old() is not None  # frozen: the collector does not see it
    finished = defer.Deferred()
    result = heap.unsettled(lambda: finished)
    assert gc.get_freeze_count() == 0 and not heap.is_settled()
    gc.collect()  # what the reload dropped is garbage the collector sees again
    assert old() is None
    finished.callback("report")
    assert result.result == "report"
    assert heap.is_settled() and gc.get_freeze_count() > 0


def test_nothing_happens_in_a_process_never_settled(fresh_heap):
    assert heap.unsettled(lambda: 42) == 42
    assert not heap.is_settled() and gc.get_freeze_count() == 0
