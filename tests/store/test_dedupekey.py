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


def test_encoding_is_the_json_text_the_stored_keys_digest():
    """If values are plain, escaped or unusual (quotes, backslashes, controls, accents, empty
    components, random text), then the encoded identity is byte for byte the compact JSON
    the keys already stored were made of, so that a copy received after an upgrade still
    meets its first."""
    import json
    import random

    from engine.store.dedupekey import encode

    def as_json(channel, identity):
        return json.dumps([channel, [list(part) for part in identity]], ensure_ascii=False,
                          separators=(",", ":"))

    samples = ["HIS", "", "A&B", 'quo"te', "back\\slash", "tab\there", "new\nline", "é ü",
               "\u2028", "\x7f", "日本", "^~&|"]
    rng = random.Random(8)
    alphabet = [chr(c) for c in range(0, 300)] + ["\u2028", "\ud800", "日"]
    samples += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
                for _ in range(500)]
    for n, value in enumerate(samples):
        identity = ((value, samples[n - 1]), (), (samples[n - 2],))
        assert encode(samples[n - 3], identity) == as_json(samples[n - 3], identity)
    assert encode("adt-in", (("HIS",), ("HOSP",), ("42",))) == \
        '["adt-in",[["HIS"],["HOSP"],["42"]]]'
