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
    encoded = json.dumps([channel, [list(part) for part in identity]], ensure_ascii=False,
                         separators=(",", ":"))
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()
