"""
The ``application-ack`` destination on its own: the sender's open connection first, then the
return route, else a failure that parks the delivery in ERROR at once, saying why.
"""
from __future__ import annotations

from typing import Any

import pytest
from twisted.internet import defer

from engine.flow.appack import answerable
from engine.flow.appack_route import ApplicationAckDestination, peer_address
from engine.interfaces import DeliveryContext, DeliveryFailed, DeliveryOutcome, Destination, PeerInfo

APP_ACK = b"MSH|^~\\&|AIG|FAC|HIS|HOSP|20260101||ACK^A01^ACK|AP9-1|P|2.5|||NE|NE\rMSA|AA|C-7\r"


def context(peer: str | None = "mllp://10.0.0.1:4000") -> DeliveryContext:
    return DeliveryContext("adt", 1, 2, "C-7", "ADT^A01", 1, None, peer)


class Source:
    def __init__(self, open_addresses: tuple[str, ...] = ()):
        self.open = open_addresses
        self.written: list[tuple[str, bytes]] = []

    def write_application_ack(self, address: str, payload: bytes) -> defer.Deferred:
        if address not in self.open:
            return defer.succeed(False)
        self.written.append((address, payload))
        return defer.succeed(True)


class ReturnRoute:
    name = "application-ack"

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, DeliveryContext]] = []

    def start(self) -> None:
        return None

    def stop(self) -> None:
        return None

    def send(self, payload: bytes, context: DeliveryContext) -> defer.Deferred:
        self.sent.append((payload, context))
        return defer.succeed(DeliveryOutcome(b"ACK"))


def outcome(d: defer.Deferred) -> Any:
    results: list = []
    d.addBoth(results.append)
    return results[0]


def test_the_fakes_are_destinations() -> None:
    assert isinstance(ReturnRoute(), Destination)
    assert isinstance(ApplicationAckDestination("adt", lambda: None), Destination)


@pytest.mark.parametrize("peer, address", [
    ("mllp://10.0.0.1:4000", "10.0.0.1:4000"), ("mllp+tls://h:1", "h:1"),
    ("channel:adt/message 4", None), ("file:///in/a.hl7", None), (None, None)])
def test_peer_address(peer: str | None, address: str | None) -> None:
    assert peer_address(peer) == address


@pytest.mark.parametrize("peer, expected", [
    (PeerInfo("mllp", "h:1"), True), (PeerInfo("mllp+tls", "h:1"), True),
    (PeerInfo("channel", "adt/message 4"), False), (PeerInfo("file", "/in"), False),
    ("mllp://h:1", True), ("channel:adt/message 4", False), (None, False)])
def test_only_mllp_senders_are_answered(peer: Any, expected: bool) -> None:
    assert answerable(peer) is expected


def test_the_open_connection_comes_first() -> None:
    source, route = Source(("10.0.0.1:4000",)), ReturnRoute()
    destination = ApplicationAckDestination("adt", lambda: source, route)
    result = outcome(destination.send(APP_ACK, context()))
    assert isinstance(result, DeliveryOutcome) and "10.0.0.1:4000" in result.detail
    assert source.written == [("10.0.0.1:4000", APP_ACK)] and route.sent == []


def test_a_closed_connection_takes_the_return_route_answered_by_the_acks_own_id() -> None:
    """If the connection has closed, then the return route sends it, and its ACK is checked
    against the application ACK's MSH-10, not the message's."""
    route = ReturnRoute()
    destination = ApplicationAckDestination("adt", lambda: Source(), route)
    outcome(destination.send(APP_ACK, context()))
    [(payload, sent_context)] = route.sent
    assert payload == APP_ACK and sent_context.control_id == "AP9-1"


def test_without_a_return_route_it_fails_for_good_saying_why() -> None:
    destination = ApplicationAckDestination("adt", lambda: None)
    failure = outcome(destination.send(APP_ACK, context()))
    assert failure.check(DeliveryFailed)
    assert failure.value.retryable is False
    assert "10.0.0.1:4000 is closed" in failure.value.reason
    assert "response.application-ack" in failure.value.reason
