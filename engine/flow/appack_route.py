"""
The ``application-ack`` destination: sends enhanced-mode application ACKs back to their sender.

Each channel has one lane of it (built by the composition root, :mod:`engine.app`), reading the
deliveries :mod:`engine.flow.appack` queued with each decision; the payload is the ACK itself.
It goes:

1. on the connection the message came in on, when that connection is still open both ways
   in this process (the channel's source, looked up by the peer address stored with the
   message), behind the accept ACKs that connection is still owed; a sender that shut its
   side has its accept ACKs, not this one (see ``MLLPServerProtocol.readConnectionLost``);
2. otherwise by the channel's return route, ``response.application-ack``: an ``mllp``
   destination, which must answer it (most MLLP listeners acknowledge every frame);
3. with neither, it is parked in ERROR at once, saying so: retrying cannot reopen a
   connection that the sender closed.

Its lane runs with the intake (:meth:`engine.app.Engine.start_application_ack_lane`), in
the process holding the connections; with several listener processes, a connection held by
another one than the lane's is not found here, and the return route is the way.

test-case-name: tests.flow.test_appack_route
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable

from twisted.internet import defer

from engine.flow.appack import APPLICATION_ACK
from engine.interfaces import DeliveryContext, DeliveryFailed, DeliveryOutcome, Destination
from mllp.header import read_header_leniently


def peer_address(peer: str | None) -> str | None:
    """``host:port`` of a stored peer (``mllp://host:port``, ``mllp+tls://...``), else None."""
    if not peer or "://" not in peer:
        return None
    scheme, _, address = peer.partition("://")
    return address if scheme.startswith("mllp") else None


class ApplicationAckDestination:
    """Implements :class:`engine.interfaces.Destination` for one channel's application ACKs.

    ``source`` returns the channel's running source (or None), asked at each send since a
    reload may replace it; a source that can write on a connection has
    ``write_application_ack(address, payload) -> bool``. ``return_route`` is the
    :class:`~engine.interfaces.Destination` built from ``response.application-ack``, or None.
    """

    name = APPLICATION_ACK

    def __init__(self, channel: str, source: Callable[[], Any],
                 return_route: Destination | None = None):
        self.channel = channel
        self._source = source
        self._return_route = return_route
        self.on_connection = 0  # written on the sender's open connection
        self.by_return_route = 0

    def start(self) -> Any:
        return None if self._return_route is None else self._return_route.start()

    def stop(self) -> Any:
        return None if self._return_route is None else self._return_route.stop()

    def send(self, payload: bytes, context: DeliveryContext) -> defer.Deferred:
        address = peer_address(context.peer)
        writer = getattr(self._source(), "write_application_ack", None)
        if address is None or writer is None:
            return self._otherwise(payload, context, address)
        written = defer.maybeDeferred(writer, address, payload)
        return written.addCallback(self._written, payload, context, address)

    def _written(self, written: bool, payload: bytes, context: DeliveryContext,
                 address: str) -> Any:
        if not written:
            return self._otherwise(payload, context, address)
        self.on_connection += 1
        return DeliveryOutcome(detail=f"written on the connection from {address}")

    def _otherwise(self, payload: bytes, context: DeliveryContext,
                   address: str | None) -> defer.Deferred:
        """The return route, or a failure saying there is none."""
        if self._return_route is not None:
            self.by_return_route += 1
            # The peer's ACK answers the application ACK's own MSH-10, not the message's.
            context = replace(context, control_id=read_header_leniently(payload).control_id)
            return defer.maybeDeferred(self._return_route.send, payload, context)
        where = f"the connection from {address}" if address else "the message's connection"
        return defer.fail(DeliveryFailed(
            f"{where} is closed (or held by another process) and channel {self.channel} has "
            "no return route: set response.application-ack (host, port) to deliver "
            "application ACKs after a reconnect", retryable=False))


__all__ = ["ApplicationAckDestination", "peer_address"]
