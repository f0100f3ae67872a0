"""
The duplicate key: one fixed-length value per (channel, sender, control id) that no two
different messages share.

Why a digest of a JSON array: joining the values with a separator lets ``(X, Y, Z|W)`` and
``(X, Y|Z, W)`` meet when a sender's field separator is not ``|`` (the separator may appear in
the values). JSON writes every string with its own quotes and escapes, so the encoding of a
list of lists of strings is unambiguous; SHA-256 of it fits a fixed-width indexed column
whatever the lengths of the values, on SQLite and PostgreSQL alike.

The values are decoded (escape sequences resolved) by whoever reads the header
(engine.flow.dedupe): ``A\\T\\B`` and the same value written another way are one sender.

test-case-name: tests.store.test_dedupekey
"""
from __future__ import annotations

import hashlib
import json
from typing import Sequence

KEY_LENGTH = 64  # hex characters of a SHA-256


def digest(channel: str, identity: Sequence[Sequence[str]]) -> str:
    """The key of a message of ``channel`` whose decoded identity is ``identity``."""
    return hashlib.sha256(encode(channel, identity).encode("utf-8")).hexdigest()


def encode(channel: str, identity: Sequence[Sequence[str]]) -> str:
    """The JSON text the key digests: ``[channel,[[MSH-3 components],...]]``, compact.

    Written here without the json module when every value is plain (printable, no quote and
    no backslash: what JSON writes as it is between quotes), as nearly all are: the keys
    stored already are digests of this exact text, so it must not change by a byte, and
    ``json.dumps`` with options costs an encoder object per call on the writer's hot path.
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
