"""Tests for Intake.receive_then: the MLLP source's way in, answered through a reply function
rather than a Deferred, with the same ACKs as Intake.receive."""
from __future__ import annotations

from typing import Any

from twisted.python.failure import Failure

from engine import status as st
from engine.store.records import IngestResult
from engine.flow.intake import PEERS_KEPT, Intake
from engine.interfaces import PeerInfo
from tests.flow.intake_support import (
    PEER, FakeDecider, FakeQueued, HeldStore, err_code, failing_store, field_of, make, message,
    parse, plan, result_of)


def received(intake: Intake, payload: bytes) -> list[Any]:
    replies: list[Any] = []
    assert intake.receive_then("adt", payload, PEER, replies.append) is None
    return replies


def test_reply_gets_the_ack_receive_would_give() -> None:
    """If a message is committed, then the reply gets once the ACK that receive's Deferred
    fires with (MSH-7 aside, a clock reading)."""
    [ack] = received(make().intake, message("R1", msh15="AL"))
    expected = result_of(make().intake.receive("adt", message("R1", msh15="AL"), PEER))
    fields = [("MSH", 3), ("MSH", 9), ("MSH", 10), ("MSA", 1), ("MSA", 2)]
    assert [field_of(parse(ack), s, n) for s, n in fields] == \
        [field_of(parse(expected), s, n) for s, n in fields]
    assert field_of(parse(ack), "MSA", 1) == "CA"


def test_no_reply_before_the_commit() -> None:
    """If the commit has not happened yet, then nothing is replied; once it has, the ACK."""
    store = HeldStore()
    intake = Intake(store, {"adt": plan()}, FakeDecider(), FakeQueued())
    replies = received(intake, message("H1"))
    assert replies == []
    store.pending[0].callback(None)
    assert field_of(parse(replies[0]), "MSA", 2) == "H1"


def test_store_failure_replies_ae_207() -> None:
    """If the commit fails, then the reply is the AE/207 'send it again later', not a
    Failure, and nothing is queued."""
    setup = make(answer=failing_store)
    [ack] = received(setup.intake, message("F1"))
    parsed = parse(ack)
    assert (field_of(parsed, "MSA", 1), err_code(parsed)) == ("AE", 207)
    assert "send it again later" in ack.decode()
    assert setup.delivered == []


def test_store_failure_of_unreadable_input_replies_ar() -> None:
    """If unreadable input cannot be stored either, then the reply is still its AR."""
    [ack] = received(make(answer=failing_store).intake, b"garbage")
    parsed = parse(ack)
    assert (field_of(parsed, "MSA", 1), err_code(parsed)) == ("AR", 100)


def test_ack_that_cannot_be_made_replies_a_failure() -> None:
    """If building the ACK raises, then the reply is a Failure (the protocol answers it
    AR/207), once."""
    setup = make(answer=lambda record, message_id: IngestResult(message_id, st.DUPLICATE,
                                                                duplicate_of=None))
    setup.intake._ack = lambda *args, **kwargs: 1 / 0
    [outcome] = received(setup.intake, message("D1"))
    assert isinstance(outcome, Failure) and outcome.check(ZeroDivisionError)


def test_unknown_channel_raises_before_anything_is_stored() -> None:
    """If the channel is not run here, then receive_then raises (the source answers AR) and
    stores nothing."""
    setup = make()
    replies: list[Any] = []
    try:
        setup.intake.receive_then("nope", message("U1"), PEER, replies.append)
    except KeyError:
        pass
    else:
        raise AssertionError("no KeyError")
    assert replies == [] and setup.store.records == []


def test_each_peer_is_described_by_its_own_text_and_few_are_kept() -> None:
    """If messages come from many connections (one PeerInfo each), then each record carries
    its own peer's text, and the intake keeps at most PEERS_KEPT descriptions."""
    setup = make()
    peers = [PeerInfo("mllp", f"10.0.0.{n % 250}:{40000 + n}") for n in range(PEERS_KEPT + 5)]
    for n, peer in enumerate(peers + peers[:3]):
        setup.intake.receive_then("adt", message(f"P{n}", msh15="AL"), peer, lambda _: None)
    assert [r.peer for r in setup.store.records] == \
        [f"mllp://{peer.address}" for peer in peers + peers[:3]]
    assert len(setup.intake._peers) <= PEERS_KEPT
    handed = PeerInfo("channel", "adt-in/message 7")
    setup.intake.receive_then("adt", message("H1", msh15="AL"), handed, lambda _: None)
    assert setup.store.records[-1].peer == "channel:adt-in/message 7"
