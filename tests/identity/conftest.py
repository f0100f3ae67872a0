"""
Shared fixtures of the identity tests: where the reference standards are
(:func:`tests.standards.standards_dir`: skipped when absent, a failure under CI).
"""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.standards import standards_dir


@pytest.fixture
def standards() -> Path:
    """The standards folder, or a skip (a failure under CI) when it is absent."""
    return standards_dir()
