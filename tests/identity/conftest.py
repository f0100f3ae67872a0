"""
Shared fixtures of the identity tests: where the reference standards are.

As in tests/mllp, the samples live outside the repository, in
``../shared/standards`` (or where ``AIGUILLAGE_STANDARDS`` points); without
them the tests that read them skip, except under CI where that is a failure.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def standards() -> Path:
    """The standards folder, or a skip (a failure under CI) when it is absent."""
    configured = os.environ.get("AIGUILLAGE_STANDARDS")
    root = Path(configured) if configured else REPO_ROOT.parent / "shared" / "standards"
    if not root.is_dir():
        message = f"reference standards not found at {root} (set AIGUILLAGE_STANDARDS)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return root
