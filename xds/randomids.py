"""
Random (version 4) UUIDs for the ids Aiguillage makes up: ``urn:uuid`` ids of registry
objects and classifications, wsa:MessageIDs, MTOM Content-IDs and boundaries.

Each comes from the operating system's random bytes, as ``uuid.uuid4()`` does, but drawn
in blocks of :data:`BLOCK` bytes kept per thread: ``os.urandom`` is a system call that
releases the GIL, and a served ITI-41 takes some twenty ids (one per Classification and
ExternalIdentifier of each object the registry keeps); each release hands the GIL to
another thread of the server and the caller queues to get it back. A forked child starts
with an empty block, so that it never hands out the ids its parent does.

test-case-name: tests.xds.test_randomids
"""
from __future__ import annotations

import os
import threading

BLOCK = 4096
#: RFC 4122 version 4: the version nibble 4 and the variant bits 10 set in a random value.
_VERSION_4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_VERSION_4_SET = (0x4000 << 64) | (0x8000 << 48)

_pools = threading.local()


def _forget_pools() -> None:
    """In a forked child: the parent's unused random bytes are the parent's."""
    global _pools
    _pools = threading.local()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pools)


def random_bits() -> int:
    """128 random bits, from this thread's block of ``os.urandom`` bytes."""
    pool = _pools.__dict__
    data, at = pool.get("data", b""), pool.get("at", 0)
    if at >= len(data):
        data, at = os.urandom(BLOCK), 0
        pool["data"] = data
    pool["at"] = at + 16
    return int.from_bytes(data[at:at + 16], "big")


def uuid4_hex() -> str:
    """A random version 4 UUID as 32 hexadecimal digits (``uuid.uuid4().hex``)."""
    return f"{random_bits() & _VERSION_4_CLEAR | _VERSION_4_SET:032x}"


def uuid4_urn() -> str:
    """A random version 4 UUID as a ``urn:uuid:`` URN (``uuid.uuid4().urn``)."""
    digits = uuid4_hex()
    return (f"urn:uuid:{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}"
            f"-{digits[20:]}")
