"""
Fixtures for the store tests that need no reactor: a database of each backend.

Trial test cases (the Store's Deferred API) get theirs from :class:`tests.store.storecase.StoreCase`.
"""
from __future__ import annotations

import pytest

from engine.store import migrate
from engine.store.store import make_engine
from tests.dbs import BACKENDS, database, postgres_database


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path):
    """The URL of an empty database, once per backend."""
    with database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def engine(db_url):
    """A SQLAlchemy engine on a database already at the newest schema."""
    engine = make_engine(db_url)
    migrate.ensure_current(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_engine():
    """A SQLAlchemy engine on a fresh PostgreSQL database at the newest schema (for what
    exists only on PostgreSQL)."""
    with postgres_database() as url:
        engine = make_engine(url)
        migrate.ensure_current(engine)
        yield engine
        engine.dispose()
