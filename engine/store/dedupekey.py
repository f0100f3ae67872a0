"""
The duplicate key: one value of at most 64 characters per (channel, sender, control id) that
no two different messages share.

Why the sender as a digest and the control id as it is: the key is the unique index of
``messages``, and the index is kept in key order. A digest of the whole identity sends every
message to a random page of the index, one more page written per message of a commit (and
on PostgreSQL a random B-tree page to dirty). Most senders number their messages: with the
sender's digest first and the control id after it, one sender's consecutive messages insert
next to each other, as a growing key does. So the key (:func:`sender_ordered_key`) is

- 26 base32 characters of SHA-256 of the sender part (channel, MSH-3, MSH-4: 130 bits), then
- ``:`` and the control id itself when it is printable and fits in what is left (37
  characters), or ``#`` and 37 base32 characters of SHA-256 of the whole identity.

The sender's digest has a fixed width, so the marker is always the 27th character and the
rest is read after it: a literal control id and a digest never meet (different markers),
two literals meet only if the control ids are equal, and neither form meets a key of the
earlier format (64 lowercase hex characters, no marker).

Why a digest of a JSON array (:func:`encode`): joining the values with a separator lets
``(X, Y, Z|W)`` and ``(X, Y|Z, W)`` meet when a sender's field separator is not ``|`` (the
separator may appear in the values). JSON writes every string with its own quotes and
escapes, so the encoding of a list of lists of strings is unambiguous.

The values are decoded (escape sequences resolved) by whoever reads the header
(engine.flow.dedupe): ``A\\T\\B`` and the same value written another way are one sender.

Each format is frozen: the store holds keys made by it, and a migration that recomputes them
(engine/store/migrations/versions) names the function it uses. A new format is a new function
and a new migration, never a change to one of these; their tests pin expected values.

test-case-name: tests.store.test_dedupekey
"""
from __future__ import annotations

import base64
import hashlib
import json
from functools import lru_cache
from typing import Sequence

KEY_LENGTH = 64  # the column's width, in characters
SENDER_WIDTH = 26  # base32 characters of the sender's digest: 130 bits
LITERAL = ":"  # the control id follows as it is
DIGEST = "#"  # a digest of the whole identity follows
CONTROL_ROOM = KEY_LENGTH - SENDER_WIDTH - 1  # characters left after the marker

Identity = tuple[tuple[str, ...], ...]  # (MSH-3 components, MSH-4 components, (MSH-10,))


def sender_ordered_key(channel: str, identity: Identity) -> str:
    """The sender's digest, then the control id as it is or a digest (see the module doc).

    ``identity``'s last part is the control id, the parts before it the sender's.
    """
    control = identity[-1]
    prefix = _sender(channel, identity[:-1])
    if len(control) == 1:
        value = control[0]
        if len(value) <= CONTROL_ROOM and value.isprintable():
            return prefix + LITERAL + value
    whole = hashlib.sha256(_utf8(encode(channel, identity))).digest()
    return prefix + DIGEST + base64.b32encode(whole)[:CONTROL_ROOM].decode("ascii")


key = sender_ordered_key  # the format the store writes today (the writer's hot path: no wrapper)


@lru_cache(maxsize=1024)
def _sender(channel: str, sender: Identity) -> str:
    """The sender's digest: a channel hears from a handful of senders, so it is computed once
    per sender rather than once per message."""
    whole = hashlib.sha256(_utf8(encode(channel, sender))).digest()
    return base64.b32encode(whole)[:SENDER_WIDTH].decode("ascii")


def _utf8(text: str) -> bytes:
    # A lone surrogate (no header reader produces one) still gets a key of its own.
    return text.encode("utf-8", "surrogatepass")


def sha256_key(channel: str, identity: Sequence[Sequence[str]]) -> str:
    """The earlier format (schema revisions 0003 to 0010): SHA-256 hex of the whole
    identity's :func:`encode`. Kept for the migrations that write or rewrite it."""
    return hashlib.sha256(encode(channel, identity).encode("utf-8")).hexdigest()


def encode(channel: str, identity: Sequence[Sequence[str]]) -> str:
    """The JSON text digested: ``[channel,[[MSH-3 components],...]]``, compact.

    Written here without the json module when every value is plain (printable, no quote and
    no backslash: what JSON writes as it is between quotes), as nearly all are: digests of
    this exact text are stored, so it must not change by a byte, and ``json.dumps`` with
    options costs an encoder object per call.
    """
    if _plain(channel + "".join(["".join(part) for part in identity])):
        parts = ",".join([f'["{_BETWEEN.join(part)}"]' if part else "[]" for part in identity])
        return f'["{channel}",[{parts}]]'
    return json.dumps([channel, [list(part) for part in identity]], ensure_ascii=False,
                      separators=(",", ":"))


_BETWEEN = '","'  # between two values of one part


def _plain(value: str) -> bool:
    """Whether JSON writes ``value`` as it is (ensure_ascii off): no escape needed."""
    return value.isprintable() and '"' not in value and "\\" not in value
