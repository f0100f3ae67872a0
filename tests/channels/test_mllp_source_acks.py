"""Tests for the MLLP source's consuming of a peer's commit ACKs (no sockets): an ACK frame is
neither stored nor answered; any other frame goes to the engine, whatever its body says."""
from __future__ import annotations

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from channels.mllp_source import MLLPSource
from mllp.framing import encode_frame
from tests.channels.fakes import FakeReceiver


def connected() -> tuple[FakeReceiver, object, StringTransport]:
    receiver = FakeReceiver()
    source = MLLPSource("in", "adt", {"port": 0}, receiver, Clock())
    address = IPv4Address("TCP", "10.0.0.1", 40000)
    protocol = source._factory.buildProtocol(address)
    transport = StringTransport(peerAddress=address)
    protocol.makeConnection(transport)
    return receiver, protocol, transport


@pytest.mark.parametrize("end", ["\r", "\n", "\r\n"])
def test_a_peers_commit_ack_is_consumed(end: str) -> None:
    """If a peer sends a commit ACK (CA), whatever its segments end with, then it is
    neither handed to the engine nor answered."""
    receiver, protocol, transport = connected()
    ack = f"MSH|^~\\&|LAB|H|AIG|E|20260101||ACK^A01^ACK|C9|P|2.5{end}MSA|CA|ACK12{end}"
    protocol.dataReceived(encode_frame(ack.encode()))
    assert receiver.received == [] and transport.value() == b""


def test_a_message_naming_ack_and_msa_in_its_body_is_received() -> None:
    """If a message that is not an ACK holds ACK and MSA in its body, then it goes to the
    engine and is answered."""
    receiver, protocol, transport = connected()
    text = ("MSH|^~\\&|LAB|H|AIG|E|20260101||ORU^R01|C10|P|2.5\r"
            "OBX|1|ST|ACK^MSA||ACK MSA\r")
    protocol.dataReceived(encode_frame(text.encode()))
    assert len(receiver.received) == 1 and transport.value() != b""
