"""
engine.store.records.made: frozen records built without their generated __init__ are the
same objects as those it builds.
"""
from __future__ import annotations

import dataclasses

import pytest

from engine.store.records import Decision, InboundRecord, IngestResult, NewDelivery, made


def test_made_equals_the_constructor_and_stays_frozen() -> None:
    """If a record is made with every field, then it equals the constructor's, hashes
    alike, reads its fields, and refuses a change as a frozen dataclass does."""
    values = dict(message_id=7, status="TRANSFORMED", duplicate_of=None, delivery_ids=(3, 4))
    quick, built = made(IngestResult, **values), IngestResult(**values)
    assert quick == built and hash(quick) == hash(built) and repr(quick) == repr(built)
    assert quick.delivery_ids == (3, 4)
    assert dataclasses.replace(quick, status="ERROR") == IngestResult(7, "ERROR", None, (3, 4))
    with pytest.raises(dataclasses.FrozenInstanceError):
        quick.status = "ERROR"  # type: ignore[misc]


def test_made_record_compares_with_a_built_one() -> None:
    decision = Decision("TRANSFORMED", deliveries=(NewDelivery("out", 1),))
    values = {f.name: None for f in dataclasses.fields(InboundRecord)}
    values.update(channel="adt", received_at=1.5, peer="mllp://h:1", raw=b"MSH|",
                  status="RECEIVED", dedupe=True, decision=decision)
    assert made(InboundRecord, **values) == InboundRecord(**values)
    assert made(InboundRecord, **values) != InboundRecord(**{**values, "raw": b"MSH^"})
