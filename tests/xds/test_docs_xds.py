"""The examples of docs/xds.md run, so that the page cannot rot."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[2] / "docs" / "xds.md"
BLOCKS = re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.S)


def test_page_has_examples():
    """If the page lost its examples, then this test would not notice them failing."""
    assert BLOCKS


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_example_runs(block):
    """If an example's assertions fail or it raises, then the page is wrong."""
    exec(compile(block, str(PAGE), "exec"), {})
