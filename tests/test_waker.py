"""engine.waker: the reactor's waker reads twisted.python.util itself, not through the
deprecation proxy, and still wakes the reactor."""
from __future__ import annotations

import os
import sys
import threading

import pytest
from twisted.internet import _signals
from twisted.python import deprecate

from engine import waker


@pytest.fixture
def proxied_util():
    """The waker's module behind Twisted's deprecation proxy, as Twisted 24-25 leave it
    (wrapped here if this Twisted did not), put back as it was after the test. A Twisted
    without ``_ModuleProxy`` fails here: engine.waker would then have nothing to do."""
    before = _signals.util
    if isinstance(before, deprecate._ModuleProxy):
        proxied = before
    else:
        proxied = _signals.util = deprecate._ModuleProxy(before)
    yield proxied
    _signals.util = before


def test_the_waker_reads_the_module_without_its_proxy(proxied_util):
    assert waker.unproxy()
    assert not isinstance(_signals.util, deprecate._ModuleProxy)
    # the same function as through the proxy, and the proxy's other names still there
    assert _signals.util.untilConcludes is proxied_util.untilConcludes
    assert waker.unproxy()  # again: nothing left to do, still so
    assert _signals.util.untilConcludes is proxied_util.untilConcludes


def test_a_module_shaped_otherwise_is_left_as_it_is(proxied_util, monkeypatch):
    monkeypatch.setattr(_signals, "util", object())
    assert not waker.unproxy()


def test_a_twisted_without_those_modules_is_left_as_it_is(monkeypatch):
    monkeypatch.setitem(sys.modules, "twisted.python.deprecate", None)  # its import fails
    assert not waker.unproxy()


def test_a_reactor_is_still_woken_from_a_thread(proxied_util):
    waker.unproxy()
    reader = _signals._UnixWaker()
    try:
        thread = threading.Thread(target=reader.wakeUp)
        thread.start()
        thread.join()
        assert os.read(reader.i, 16) == b"x"  # the byte that wakes the reactor's poll
    finally:
        reader.connectionLost(None)
