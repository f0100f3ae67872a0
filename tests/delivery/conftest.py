"""
Fixtures of the delivery tests: a started lane's :class:`~tests.delivery.lane_support.Harness`,
stopped after the test.
"""
from __future__ import annotations

import pytest

from tests.delivery.lane_support import Harness


@pytest.fixture
def harness():
    h = Harness()
    yield h
    h.lane.stop()
