"""Fixtures for the built-in registry tests: a store database of each backend, at head."""
from __future__ import annotations

import pytest

from engine.store import migrate
from engine.store.store import make_engine
from tests.dbs import BACKENDS, database


@pytest.fixture(params=BACKENDS)
def registry_engine(request, tmp_path):
    """A SQLAlchemy engine on a migrated database (SQLite, then PostgreSQL)."""
    with database(request.param, tmp_path) as url:
        engine = make_engine(url)
        migrate.ensure_current(engine)
        yield engine
        engine.dispose()
