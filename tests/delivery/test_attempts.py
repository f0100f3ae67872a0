"""
engine.delivery.attempts: the context and the SENT outcome a lane makes for each delivery,
made without the frozen dataclasses' __init__, are the objects those would build.
"""
from __future__ import annotations

import dataclasses

import pytest

from engine import status as st
from engine.delivery.attempts import contexts_for, sent_update
from engine.interfaces import DeliveryContext
from engine.store.records import DeliveryUpdate, DueDelivery

FIRST = DueDelivery(11, 7, 0, 0.0, b"MSH|", "C1", "ADT^A01", "UNICODE UTF-8",
                    "mllp://127.0.0.1:4000")
RETRIED = DueDelivery(12, 8, 2, 5.0, b"MSH|", None, None, None)


def test_each_context_is_the_one_the_constructor_builds() -> None:
    """If a batch is sent, then each delivery's context counts this attempt and carries
    what the store read, as DeliveryContext(...) would, frozen alike."""
    made = contexts_for("adt", [FIRST, RETRIED])
    assert made == [DeliveryContext("adt", 7, 11, "C1", "ADT^A01", 1, "UNICODE UTF-8",
                                    "mllp://127.0.0.1:4000"),
                    DeliveryContext("adt", 8, 12, None, None, 3, None, None)]
    assert hash(made[1]) == hash(DeliveryContext("adt", 8, 12, None, None, 3))
    with pytest.raises(dataclasses.FrozenInstanceError):
        made[0].attempt = 2  # type: ignore[misc]


def test_a_sent_update_is_the_one_the_constructor_builds() -> None:
    """If a delivery went through, then its outcome is SENT with this attempt counted, the
    attempts it was read with, the answer and the note, as DeliveryUpdate(...) would be."""
    made = sent_update(RETRIED, 9.5, b"/out/a.hl7", "registry warning")
    built = DeliveryUpdate(12, 8, st.SENT, 3, 9.5, None, b"/out/a.hl7", "registry warning", 2)
    assert made == built and hash(made) == hash(built) and repr(made) == repr(built)
    assert sent_update(FIRST, 1.0, None, None) == DeliveryUpdate(11, 7, st.SENT, 1, 1.0,
                                                                 tried=0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.status = st.ERROR  # type: ignore[misc]
