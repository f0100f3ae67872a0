"""The random ids: version 4 UUIDs in uuid's own forms, never twice, per thread and after
a fork."""
from __future__ import annotations

import os
import re
import threading
import uuid

import pytest

from xds import randomids
from xds.metadata.writing import new_uuid
from xds.soap.envelope import new_message_id
from xds.soap.mtom import new_content_id, write_mtom

HEX = re.compile(r"[0-9a-f]{32}")


def test_the_forms_are_uuid4s():
    for _ in range(3 * randomids.BLOCK // 16):  # across several blocks
        value = uuid.UUID(randomids.uuid4_hex())
        assert value.version == 4 and value.variant == uuid.RFC_4122
    urn = randomids.uuid4_urn()
    assert urn == uuid.UUID(urn[len("urn:uuid:"):]).urn


def test_the_callers_use_them():
    assert uuid.UUID(new_uuid()[9:]).version == 4
    assert uuid.UUID(new_message_id()[9:]).version == 4
    assert HEX.fullmatch(new_content_id().split("@")[0])
    content_type, _ = write_mtom(b"<x/>", [], "urn:a")
    assert HEX.search(content_type.split("MIMEBoundary_")[1])


def test_never_twice_across_threads():
    seen: list[list[str]] = []

    def draw():
        seen.append([randomids.uuid4_hex() for _ in range(2000)])

    threads = [threading.Thread(target=draw) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [value for values in seen for value in values]
    assert len(set(every)) == len(every) == 8000


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_does_not_repeat_its_parent():
    randomids.uuid4_hex()  # this thread's block is drawn and partly used
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover (the child)
        os.write(write, randomids.uuid4_hex().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    from_child = os.read(read, 64).decode()
    os.close(read)
    assert from_child != randomids.uuid4_hex()
