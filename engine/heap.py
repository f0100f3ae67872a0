"""
The engine process's start-up heap, kept out of the cyclic garbage collector's way.

Start-up leaves some hundred thousand long-lived objects (modules, configuration,
channels, SQLAlchemy's tables and compiled statements, lxml's and Twisted's state). Each
full collection walks them all again (tens of milliseconds, every few thousand requests
under load) although none becomes garbage while the engine runs. :func:`settle` moves them
to the permanent generation (``gc.freeze``) once the engine has started, and only then:
it is a choice for the whole process, made by the process's owner (``aiguillage run``,
the benches that stand for it), not by :class:`engine.app.Engine`, which tests build by
the hundred in one process.

A frozen object that later becomes cyclic garbage would never be collected: a reload
replaces channels and their objects, so :func:`unsettled` gives the frozen objects back
to the collector for the time of a reload and settles the heap again after it. Nothing
happens in a process that never settled.

test-case-name: tests.test_heap
"""
from __future__ import annotations

import gc
from typing import Any, Callable

_settled = False


def settle() -> None:
    """Collect what start-up left as garbage, then freeze every object that remains."""
    global _settled
    gc.collect()
    gc.freeze()
    _settled = True


def is_settled() -> bool:
    return _settled


def unsettled(start: Callable[[], Any]) -> Any:
    """Run *start* (a reload: returns a Deferred, or not) with the frozen objects given
    back to the collector, and settle the heap again once it is done; only *start* in a
    process whose heap was never settled."""
    global _settled
    if not _settled:
        return start()
    gc.unfreeze()
    _settled = False
    result = start()

    def again(value: Any) -> Any:
        settle()
        return value

    if hasattr(result, "addBoth"):
        return result.addBoth(again)
    return again(result)
