"""
Writing an ACK to its socket at once, instead of at the reactor's next turn.

Why: Twisted's ``transport.write`` only buffers; it asks the reactor to watch the socket for
writability (one ``epoll_ctl``), and the reactor's next turn dispatches a write event (its
log-context wrappers, ``doWrite``, ``send``) and stops watching (another ``epoll_ctl``). For a
peer that waits for each ACK before its next frame, that is one more event and two system
calls per message, on the reactor thread, to send some hundred bytes the kernel would have
taken at once. :func:`write_now` tries the ``send`` itself when nothing is buffered before
it, and buffers only what the kernel did not take, so the bytes leave in the same order.

Only a plain TCP connection of the reactor (``twisted.internet.tcp.Server``, TLS not started)
is written this way; anything else (TLS, a test's ``StringTransport``) gets
``transport.write``. The attributes read here are those of Twisted's ``FileDescriptor`` that
its own ``doWrite`` reads; :func:`supported` checks they exist, so that a Twisted that moved
them falls back to ``transport.write`` rather than failing.

test-case-name: tests.mllp.test_sendnow
"""
from __future__ import annotations

from typing import Any

from twisted.internet import tcp

_NEEDED = ("dataBuffer", "_tempDataLen", "connected", "disconnecting", "_writeDisconnected",
           "writeSomeData", "TLS")


def supported(transport: Any) -> bool:
    """Whether ``transport`` is one :func:`write_now` can send on directly."""
    return type(transport) is tcp.Server and all(hasattr(transport, a) for a in _NEEDED)


def write_now(transport: Any, data: bytes) -> None:
    """Write ``data`` on ``transport``: sent now when the connection has nothing buffered,
    what the kernel does not take (or all of it, elsewhere) buffered as ``write`` does."""
    if (transport.TLS or transport.dataBuffer or transport._tempDataLen
            or not transport.connected or transport.disconnecting
            or transport._writeDisconnected):
        transport.write(data)
        return
    sent = transport.writeSomeData(data)
    if isinstance(sent, Exception):  # the connection is gone: the reactor's write finds it
        sent = 0
    if sent < len(data):
        transport.write(data[sent:])
