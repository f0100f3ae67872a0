"""The fakes in ``tests.channels.fakes`` keep the shape of the interfaces they stand for."""
from __future__ import annotations

import inspect

from engine.interfaces import DocumentReceiver, Receiver
from mllp.ack import parse_ack
from tests.channels.fakes import FakeDocumentReceiver, FakeReceiver, accept, message


def _public_methods(cls: type) -> dict[str, inspect.Signature]:
    return {name: inspect.signature(member) for name, member in vars(cls).items()
            if callable(member) and not name.startswith("_")}


def test_fake_receiver_has_every_receiver_method_with_its_parameters():
    """If engine.interfaces.Receiver changes, then the fake breaks here, not silently."""
    wanted = _public_methods(Receiver)
    fake = FakeReceiver()
    assert wanted, "Receiver declares no methods"
    for name, signature in wanted.items():
        assert list(inspect.signature(getattr(FakeReceiver, name)).parameters) == \
            list(signature.parameters), name
        assert callable(getattr(fake, name))


def test_fake_receiver_acknowledges_with_the_message_control_id():
    """If the fake acknowledges, then its ACK is an AA echoing MSH-10."""
    results = []
    FakeReceiver().receive("adt", message("C42"), None).addCallback(results.append)
    ack = parse_ack(results[0])
    assert (ack.code, ack.control_id_echoed) == ("AA", "C42")
    assert results[0] == accept(message("C42"))


def test_fake_document_receiver_has_the_document_receiver_method():
    """If engine.interfaces.DocumentReceiver changes, then the fake breaks here."""
    wanted = _public_methods(DocumentReceiver)
    assert wanted, "DocumentReceiver declares no methods"
    for name, signature in wanted.items():
        assert list(inspect.signature(getattr(FakeDocumentReceiver, name)).parameters) == \
            list(signature.parameters), name
