"""Fixtures for the built-in registry tests: a store database of each backend, at head."""
from __future__ import annotations

import pytest

from tests.dbs import BACKENDS, migrated_engine


@pytest.fixture(params=BACKENDS)
def registry_engine(request, tmp_path):
    """A SQLAlchemy engine on a migrated database (SQLite, then PostgreSQL)."""
    with migrated_engine(request.param, tmp_path) as engine:
        yield engine
