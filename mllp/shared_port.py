"""
A listening port that several processes share (Linux ``SO_REUSEPORT``).

Twisted's ``listenTCP`` cannot set ``SO_REUSEPORT`` before it binds, so the socket is made
here, bound and set listening, then handed to the reactor with ``adoptStreamPort``. With the
option set in every process that binds the same address, the kernel spreads new connections
across those processes; a connection stays in the process that accepted it, so the order of
its ACKs is that process's business, as with one listener.

TLS wraps the factory (as ``SSL4ServerEndpoint`` does), so a shared TLS port works the same.

test-case-name: tests.mllp.test_shared_port
"""
from __future__ import annotations

import socket
from typing import Any

from twisted.protocols.tls import TLSMemoryBIOFactory

BACKLOG = 128  # pending connections the kernel keeps for each process, as Twisted's default


def reuse_port_supported() -> bool:
    """Whether this platform lets several sockets bind one port (``SO_REUSEPORT``)."""
    return hasattr(socket, "SO_REUSEPORT")


def bound_socket(host: str, port: int) -> socket.socket:
    """A non-blocking IPv4 socket listening on ``host:port`` with ``SO_REUSEPORT`` set.

    Raises :class:`OSError` when the address is taken by a socket without the option, or
    when the platform lacks it.
    """
    if not reuse_port_supported():
        raise OSError("SO_REUSEPORT is not available on this platform: "
                      "one process listens per port")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def listen_shared(reactor: Any, host: str, port: int, factory: Any, tls: Any = None) -> Any:
    """Listen on ``host:port`` beside other processes; return the IListeningPort.

    ``tls``: server TLS options (see :func:`mllp.tls.server_tls_options`) wrap ``factory``.
    The reactor gets a duplicate of the descriptor, so ours is closed once adopted.
    """
    if tls is not None:
        factory = TLSMemoryBIOFactory(tls, False, factory)
    sock = bound_socket(host, port)
    try:
        return reactor.adoptStreamPort(sock.fileno(), socket.AF_INET, factory)
    finally:
        sock.close()
