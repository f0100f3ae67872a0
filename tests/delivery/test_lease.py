"""Tests for engine.delivery.lease: the deadline arithmetic and the owner name (pure)."""
from __future__ import annotations

import pytest

from engine.delivery.lease import LeasePolicy, may_send, process_owner


def test_renewal_and_guard_are_a_third_of_the_lease():
    """If a lease lasts 30 s, then it is renewed every 10 s and sends stop 10 s before it
    ends, so two renewals in a row may fail before a send risks overlapping a takeover."""
    policy = LeasePolicy(30.0)
    assert (policy.renew_every, policy.guard) == (10.0, 10.0)


def test_deadline_counts_from_when_the_renewal_was_asked():
    """If a renewal was asked at t=100 (its answer may come much later), then sends may start
    until 120 and not at 120."""
    deadline = LeasePolicy(30.0).send_deadline(100.0)
    assert deadline == 120.0
    assert may_send(deadline, 119.999) and not may_send(deadline, 120.0)


@pytest.mark.parametrize("ttl", [0.0, -1.0])
def test_a_lease_must_last(ttl):
    """If a lease of 0 s or less is asked for, then LeasePolicy refuses it."""
    with pytest.raises(ValueError, match="more than 0"):
        LeasePolicy(ttl)


def test_owner_names_node_process_and_start():
    """If two processes share a node name, or one pid comes back after a restart, then their
    owner names still differ."""
    a = process_owner("chu-1", pid=42, started=1000.0)
    assert a == "chu-1/42/1000.000000"
    assert a != process_owner("chu-1", pid=43, started=1000.0)
    assert a != process_owner("chu-1", pid=42, started=1000.5)
    assert len(process_owner("n" * 400)) == 255
