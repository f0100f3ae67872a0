"""
Shared fixtures for the MLLP tests: the reference HL7 samples.

The samples live outside the repository, in ``../shared/standards`` (or where
``AIGUILLAGE_STANDARDS`` points). Without them the tests that need them skip
with a message, except under CI where their absence is a failure.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def standards_dir() -> Path:
    """Where the reference standards are, from the environment or next to the repo."""
    configured = os.environ.get("AIGUILLAGE_STANDARDS")
    return Path(configured) if configured else REPO_ROOT.parent / "shared" / "standards"


@pytest.fixture
def hl7_sample():
    """Return a function reading one sample under ``standards/hl7v2`` as bytes."""
    root = standards_dir() / "hl7v2"
    if not root.is_dir():
        message = f"HL7 v2 samples not found at {root} (set AIGUILLAGE_STANDARDS)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)

    def read(relative: str) -> bytes:
        return (root / relative).read_bytes()

    return read
