"""Tests for engine.store.dedupekey and ops.dedupe_key: keys no two messages share by accident."""
from __future__ import annotations

from dataclasses import replace

from engine import status as st
from engine.store import ops
from engine.store.dedupekey import KEY_LENGTH, digest
from tests.store.storecase import inbound


def test_values_holding_the_old_separator_do_not_meet():
    """If MSH-3, MSH-4, MSH-10 are (X, Y, Z|W) in one message and (X, Y|Z, W) in another,
    then their keys differ (joined with "|" they were the same)."""
    assert digest("c", (("X",), ("Y",), ("Z|W",))) != digest("c", (("X",), ("Y|Z",), ("W",)))


def test_component_boundaries_count():
    """If the same characters are split into components differently, then the keys differ."""
    assert digest("c", (("A", "B"), (), ("1",))) != digest("c", (("AB",), (), ("1",)))
    assert digest("c", (("A",), ("B",), ("1",))) != digest("c", (("A", "B"), (), ("1",)))


def test_same_identity_same_fixed_length_key():
    """If channel and identity are equal, then so are the keys, 64 hex characters whatever
    the lengths of the values; another channel gives another key."""
    long = (("H" * 500,), ("F" * 500,), ("C" * 1000,))
    assert digest("c", long) == digest("c", long)
    assert len(digest("c", long)) == KEY_LENGTH
    assert digest("c", long) != digest("d", long)


def test_dedupe_key_uses_the_decoded_identity():
    """If a record carries its decoded identity, then its key is made of it, not of the
    sender text; unread or non-deduplicated records have none."""
    record = inbound("1", sender="A\\T\\B|HOSP")
    decoded = (("A&B",), ("HOSP",), ("1",))
    assert ops.dedupe_key(replace(record, identity=decoded)) == digest("adt-in", decoded)
    assert ops.dedupe_key(record) != ops.dedupe_key(replace(record, identity=decoded))
    assert ops.dedupe_key(replace(record, status=st.ERROR)) is None
    assert ops.dedupe_key(replace(record, dedupe=False)) is None
