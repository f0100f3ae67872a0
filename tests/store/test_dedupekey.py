"""Tests for engine.store.dedupekey and ops.dedupe_key: keys no two messages share by accident,
one sender's messages next to each other, and formats that do not change under the keys
already stored."""
from __future__ import annotations

import base64
import hashlib
from dataclasses import replace

from hypothesis import example, given, settings
from hypothesis import strategies as hs

from engine import status as st
from engine.flow.dedupe import identity as decoded_identity
from engine.store import ops
from engine.store.dedupekey import (
    CONTROL_ROOM, DIGEST, KEY_LENGTH, LITERAL, SENDER_WIDTH, encode, key, sender_ordered_key,
    sha256_key)
from mllp.header import read_header
from tests.store.storecase import inbound

# -- the key written today --------------------------------------------------------------------

values = hs.text(max_size=45)  # beyond CONTROL_ROOM: some control ids are digested
parts = hs.lists(values, max_size=3).map(tuple)
identities = hs.tuples(parts, parts, hs.lists(values, min_size=1, max_size=2).map(tuple))
channels = hs.text(max_size=12)


@settings(max_examples=400)
@given(channels, identities, channels, identities)
@example("c", (("X",), ("Y",), ("Z|W",)), "c", (("X",), ("Y|Z",), ("W",)))
@example("c", (("A", "B"), (), ("1",)), "c", (("AB",), (), ("1",)))
@example("c", (("A",), ("B",), ("1",)), "c", (("A", "B"), (), ("1",)))
@example("c", ((), (), ("1",)), "c", ((), (), ("1", "")))
@example("c", ((), (), ("x" * CONTROL_ROOM,)), "c", ((), (), ("x" * (CONTROL_ROOM + 1),)))
@example("c", ((), (), ("\t",)), "c", ((), (), (" ",)))
def test_different_identities_different_keys(channel_a, identity_a, channel_b, identity_b):
    """If two (channel, identity) pairs differ anywhere (a value, a component boundary, a
    field boundary), then their keys differ; equal pairs have equal keys; every key fits the
    column."""
    a, b = key(channel_a, identity_a), key(channel_b, identity_b)
    assert (a == b) == ((channel_a, identity_a) == (channel_b, identity_b))
    assert len(a) <= KEY_LENGTH and len(b) <= KEY_LENGTH


@given(channels, parts, parts, hs.text(max_size=45))
def test_key_reads_back_to_its_sender_and_control_id(channel, application, facility, control):
    """If the control id is printable and fits, then the key is the sender's digest, the
    literal marker and the control id as it is; else the digest marker and a digest. Either
    way the marker is the character after the sender's fixed-width digest."""
    made = key(channel, (application, facility, (control,)))
    sender, marker, rest = made[:SENDER_WIDTH], made[SENDER_WIDTH], made[SENDER_WIDTH + 1:]
    assert sender == key(channel, (application, facility, ("other",)))[:SENDER_WIDTH]
    if control.isprintable() and len(control) <= CONTROL_ROOM:
        assert (marker, rest) == (LITERAL, control)
    else:
        assert (marker, len(made)) == (DIGEST, KEY_LENGTH)


def test_one_senders_messages_are_neighbours():
    """If a sender numbers its messages, then their keys sort in that order, next to each
    other: between two of them lies no key of another sender or channel."""
    sender = (("HIS",), ("HOSP",))
    ours = [key("adt", sender + ((f"ADT{n:09d}",),)) for n in range(1000, 1100)]
    others = [key(channel, (app, ("HOSP",), (f"ADT{n:09d}",)))
              for channel in ("adt", "oru") for app in (("LAB",), ("RIS",), ("HIS",))
              for n in range(1000, 1100) if (channel, app) != ("adt", ("HIS",))]
    everything = sorted(ours + others)
    start = everything.index(ours[0])
    assert everything[start:start + len(ours)] == ours


@given(hs.sampled_from(["A&B", "X|Y", "a^b", "~", "\\", "#", "plain"]),
       hs.sampled_from(["C1", "1|2", "x\\y", "x#y"]))
def test_escaped_spellings_give_one_key(value, control):
    """If two messages write the same sender and control id with different escape
    characters, then their decoded identities, and so their keys, are equal."""
    def escaped(text, escape):
        for char, code in ((escape, "E"), ("|", "F"), ("^", "S"), ("&", "T"), ("~", "R")):
            text = text.replace(char, f"\x00{code}\x00")
        return text.replace("\x00", escape)

    def msh(escape):
        line = (f"MSH|^~{escape}&|{escaped(value, escape)}|HOSP|E|F|2026||ADT^A01|"
                f"{escaped(control, escape)}|P|2.5\rPID|1\r")
        return decoded_identity(read_header(line.encode()))

    first, second = msh("\\"), msh("#")
    assert first == second == ((value,), ("HOSP",), (control,))
    assert key("adt", first) == key("adt", second)


def test_sender_ordered_key_is_frozen():
    """If these values change, then keys already stored no longer meet their copies: the
    format of a stored key is frozen (a new one is a new function and a migration)."""
    expected = {
        (("HIS",), ("HOSP",), ("ADT000000042",)): "FV6RZ5PLXRAELRTV4X4XK4NJSG:ADT000000042",
        (("HIS",), ("HOSP",), ("ADT000000043",)): "FV6RZ5PLXRAELRTV4X4XK4NJSG:ADT000000043",
        (("HIS", "1.2.3", "ISO"), (), ("C" * 38,)):
            "QNKWVN3PMX4NOYEL2RDWFXV2HY#XSZAAEDTUVRAXFPEZRXSV6YW2NXEBKQZQXJ3M",
        (("A&B",), ("HOSP",), ("tab\there",)):
            "CVLTEG2U2J7E4WGQKJF65S527X#HJAN527ROSPMTYHTR3WLQ3YM7LXNGLJ5XRKSH",
    }
    assert {i: sender_ordered_key("adt-in", i) for i in expected} == expected
    # spelt out once: base32 of SHA-256 of the sender's JSON, then the control id
    sender = base64.b32encode(hashlib.sha256(b'["adt-in",[["HIS"],["HOSP"]]]').digest())
    assert expected[(("HIS",), ("HOSP",), ("ADT000000042",))] == \
        sender[:SENDER_WIDTH].decode() + ":ADT000000042"


def test_sha256_key_is_frozen():
    """If this value changes, then the migrations that write the earlier format (0003, and
    0011's downgrade) no longer write what the stores of revisions 0003 to 0010 hold."""
    assert sha256_key("adt-in", (("HIS",), ("HOSP",), ("42",))) == \
        "75302b99fcc5f4161a06c8ae649b298fe491b167402485941e54f40bb910dd67"


def test_keys_of_the_two_formats_never_meet():
    """If a key of each format is made, then the new one holds its marker where the old one
    (64 lowercase hex characters) holds a hex digit."""
    made = key("c", (("H",), (), ("1",))), key("c", (("H",), (), ("\t",)))
    assert all(k[SENDER_WIDTH] not in "0123456789abcdef" for k in made)


def test_dedupe_key_uses_the_decoded_identity():
    """If a record carries its decoded identity, then its key is made of it, not of the
    sender text; unread or non-deduplicated records have none."""
    record = inbound("1", sender="A\\T\\B|HOSP")
    decoded = (("A&B",), ("HOSP",), ("1",))
    assert ops.dedupe_key(replace(record, identity=decoded)) == key("adt-in", decoded)
    assert ops.dedupe_key(record) == key("adt-in", (("A\\T\\B|HOSP",), ("1",)))
    assert ops.dedupe_key(record) != ops.dedupe_key(replace(record, identity=decoded))
    assert ops.dedupe_key(replace(record, status=st.ERROR)) is None
    assert ops.dedupe_key(replace(record, dedupe=False)) is None


# -- the JSON text both formats digest ----------------------------------------------------------

def test_encoding_is_the_json_text_the_stored_keys_digest():
    """If values are plain, escaped or unusual (quotes, backslashes, controls, accents, empty
    components, random text), then the encoded identity is byte for byte the compact JSON
    the keys already stored were made of, so that a copy received after an upgrade still
    meets its first."""
    import json
    import random

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
