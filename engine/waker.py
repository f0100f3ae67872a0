"""
The reactor's wake-up from another thread, without Twisted's deprecation proxy in its way.

Every group commit hands its answers to the reactor thread with ``callFromThread``, and so
does every read or file write done in a thread. Twisted's waker (twisted.internet._signals)
writes its byte through ``util.untilConcludes``, where ``util`` is twisted.python.util as
imported: a deprecation proxy (twisted.python.deprecate, for the module's deprecated
``OrderedDict``) whose ``__getattribute__`` runs in Python for every attribute read, so once
per wake-up, in the thread that wakes the reactor. :func:`unproxy` gives the waker's module
the proxied module itself: the same function is called, without the proxy's work.

A choice for the whole process, made by its owner (``aiguillage run``) as engine.heap's is;
nothing is done when Twisted's modules are not shaped as expected.

test-case-name: tests.test_waker
"""
from __future__ import annotations


def unproxy() -> bool:
    """Have the reactor's waker read twisted.python.util without its deprecation proxy;
    whether it now does (False: not applicable to this version of Twisted)."""
    try:  # private names of Twisted: another version may not have them
        from twisted.internet import _signals
        from twisted.python.deprecate import _ModuleProxy
    except ImportError:
        return False
    util = getattr(_signals, "util", None)
    if not isinstance(util, _ModuleProxy):
        return getattr(util, "untilConcludes", None) is not None  # done, or never proxied
    module = object.__getattribute__(util, "_module")
    if getattr(module, "untilConcludes", None) is None:
        return False
    _signals.util = module
    return True
