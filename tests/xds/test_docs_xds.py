"""The examples of docs/xds.md run, so that the page cannot rot."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from twisted.internet import defer, reactor
from twisted.trial import unittest

from tests.xds.builders import DOCUMENT_BYTES, submission

PAGE = Path(__file__).resolve().parents[2] / "docs" / "xds.md"
BLOCKS = re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.S)


def test_page_has_examples():
    """If the page lost its examples, then this test would not notice them failing."""
    assert BLOCKS


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_example_runs(block):
    """If an example's assertions fail or it raises, then the page is wrong."""
    exec(compile(block, str(PAGE), "exec"), {})


class ServingExampleTests(unittest.TestCase):
    """The page's serving example, run on loopback: defining ``main`` is all that exec does."""

    timeout = 30

    @defer.inlineCallbacks
    def test_serving_example_round_trips_a_document(self):
        """If the example's server or client were wrong, then the document would not arrive."""
        block = next(block for block in BLOCKS if "def main(reactor" in block)
        namespace: dict = {}
        exec(compile(block, str(PAGE), "exec"), namespace)
        documents = yield namespace["main"](reactor, submission(), {"Document01": DOCUMENT_BYTES})
        self.assertEqual(documents, {"1.2.250.1.999.1.1": DOCUMENT_BYTES})


class SharedRecordExampleTests(unittest.TestCase):
    """The page's shared-record example: a real engine started on loopback, a document
    provided, found and retrieved through its endpoints."""

    timeout = 60

    @defer.inlineCallbacks
    def test_shared_record_example_round_trips_a_document(self):
        """If the example's configuration, endpoints or calls were wrong, then the document
        would not come back."""
        block = next(block for block in BLOCKS if "def shared_record_round_trip(" in block)
        namespace: dict = {}
        exec(compile(block, str(PAGE), "exec"), namespace)
        documents = yield namespace["shared_record_round_trip"](
            reactor, submission(), {"Document01": DOCUMENT_BYTES})
        self.assertEqual(documents, {"1.2.250.1.999.1.1": DOCUMENT_BYTES})
