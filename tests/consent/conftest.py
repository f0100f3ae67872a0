"""A store at the newest schema on each backend, for the consent tests."""
from __future__ import annotations

import pytest

from engine.store import migrate
from engine.store.store import make_engine
from tests.dbs import BACKENDS, database


@pytest.fixture(params=BACKENDS)
def engine(request, tmp_path):
    """A SQLAlchemy engine on an empty database at head, once per backend."""
    with database(request.param, tmp_path) as url:
        engine = make_engine(url)
        migrate.ensure_current(engine)
        yield engine
        engine.dispose()
