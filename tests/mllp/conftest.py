"""
Shared fixtures for the MLLP tests: the reference HL7 samples, under ``hl7v2/`` of the
standards folder (:func:`tests.standards.standards_dir`: skipped when absent, a failure
under CI).
"""
from __future__ import annotations

import pytest

from tests.standards import standards_dir


@pytest.fixture
def hl7_sample():
    """Return a function reading one sample under ``standards/hl7v2`` as bytes."""
    root = standards_dir() / "hl7v2"

    def read(relative: str) -> bytes:
        return (root / relative).read_bytes()

    return read
