"""
A store at the newest schema on each backend, for the identity store tests.
"""
from __future__ import annotations

import pytest

from tests.dbs import BACKENDS, migrated_engine


@pytest.fixture(params=BACKENDS)
def engine(request, tmp_path):
    """A SQLAlchemy engine on an empty database at head, once per backend."""
    with migrated_engine(request.param, tmp_path) as engine:
        yield engine
