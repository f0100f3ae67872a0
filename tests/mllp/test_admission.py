"""Tests for mllp.admission (pure) and the server factory applying it (in memory)."""
from __future__ import annotations

import pytest
from twisted.internet import task
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport

from mllp.admission import (
    ADDRESS_NOT_ALLOWED, CERTIFICATE_NOT_ALLOWED, MAX_CONNECTIONS, MAX_PER_PEER, Admission,
    RefusalLog, parse_networks)
from mllp.protocol import MLLPServerFactory
from tests.mllp.test_protocol import RecordingSink


def test_caps_in_all_and_per_peer():
    admission = Admission(max_connections=3, max_per_peer=2)
    assert admission.admit("10.0.0.1") is None and admission.admit("10.0.0.1") is None
    assert admission.admit("10.0.0.1") == MAX_PER_PEER
    assert admission.admit("10.0.0.2") is None
    assert admission.admit("10.0.0.3") == MAX_CONNECTIONS
    admission.release("10.0.0.1")
    assert admission.admit("10.0.0.3") is None
    assert dict(admission.refused) == {MAX_PER_PEER: 1, MAX_CONNECTIONS: 1}
    assert admission.open == 3


def test_allow_list_of_networks():
    admission = Admission(networks=parse_networks(["10.1.0.0/16", "::1", "192.168.1.7"]))
    assert admission.admit("10.1.200.3") is None
    assert admission.admit("::1") is None and admission.admit("192.168.1.7") is None
    assert admission.admit("::ffff:10.1.0.9") is None  # an IPv4 peer on a dual-stack socket
    assert admission.admit("10.2.0.1") == ADDRESS_NOT_ALLOWED
    assert admission.admit("not-an-address") == ADDRESS_NOT_ALLOWED
    assert admission.open == 4


def test_bad_network_is_named():
    with pytest.raises(ValueError, match="'10.0.0.0/33' is not an IP address"):
        parse_networks(["10.0.0.0/33"])


def test_certificate_allow_list():
    admission = Admission(subjects=["CN=lab,O=Hospital"])
    assert admission.admit_certificate("CN=lab,O=Hospital") is None
    assert admission.admit_certificate("CN=other") == CERTIFICATE_NOT_ALLOWED
    assert admission.admit_certificate(None) == CERTIFICATE_NOT_ALLOWED
    assert Admission().admit_certificate(None) is None


def test_refusal_log_writes_once_per_interval_with_the_counts():
    log = RefusalLog(60)
    assert log.note("a", 0) == {"a": 1}
    assert log.note("a", 10) is None and log.note("b", 59) is None
    assert log.note("a", 61) == {"a": 2, "b": 1}


def test_factory_closes_a_refused_connection_at_once_and_releases_admitted_ones():
    """If a connection is over the cap, then it is aborted before anything is read; when an
    admitted one closes, its place is free again."""
    clock = task.Clock()
    factory = MLLPServerFactory(RecordingSink(), clock=clock,
                                admission=Admission(max_per_peer=1))
    address = IPv4Address("TCP", "10.1.2.3", 4567)
    first = factory.buildProtocol(address)
    first.makeConnection(StringTransport(peerAddress=address))
    refused, transport = factory.buildProtocol(address), StringTransport(peerAddress=address)
    refused.makeConnection(transport)
    assert transport.disconnecting and factory.connections_open == 1
    assert dict(factory.admission.refused) == {MAX_PER_PEER: 1}
    first.connectionLost(None)
    again = factory.buildProtocol(address)
    again.makeConnection(StringTransport(peerAddress=address))
    assert factory.connections_open == 1 and factory.admission.open == 1
