"""
Databases for the store tests: a SQLite file, or a fresh PostgreSQL database per test.

Store tests run on both backends (buildbot style): the same test functions parametrized over
:data:`BACKENDS`, or, for Twisted trial tests, a mixin and two subclasses whose ``setUp``
calls :func:`open_database`. Every PostgreSQL database gets a random name, so tests can run
in parallel under pytest-xdist, and is dropped after its test.

The PostgreSQL server is the one at 127.0.0.1:5432 (trust authentication). When it cannot be
reached, PostgreSQL tests skip, except under CI (``CI=true``), where that is a failure.
"""
from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
import unittest
from pathlib import Path
from typing import Any, Iterator

import psycopg
import pytest

BACKENDS = ("sqlite", "postgresql")

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_ADMIN_DSN = f"postgresql://postgres@{PG_HOST}:{PG_PORT}/postgres"
PG_URL_TEMPLATE = f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/{{name}}"


def sqlite_url(tmp_path: Path) -> str:
    """A SQLAlchemy URL for a SQLite file under ``tmp_path`` (the store refuses :memory:)."""
    return f"sqlite:///{tmp_path / 'aiguillage.db'}"


def _unreachable(error: Exception) -> None:
    message = f"PostgreSQL at {PG_HOST}:{PG_PORT} is not reachable: {error}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI=true: the PostgreSQL tests must run)", pytrace=False)
    pytest.skip(message)


_last_failure: list[Exception] = []  # once unreachable, do not wait for each test again


def _admin_connection() -> psycopg.Connection:
    if _last_failure:
        _unreachable(_last_failure[0])
    try:
        return psycopg.connect(PG_ADMIN_DSN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        _last_failure.append(error)
        _unreachable(error)
        raise  # not reached: _unreachable always raises


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """Create ``aiguillage_test_<random hex>``, yield its SQLAlchemy URL, then drop it."""
    name = f"aiguillage_test_{secrets.token_hex(8)}"
    with _admin_connection() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_URL_TEMPLATE.format(name=name)
    finally:
        with _admin_connection() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def database(backend: str, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database of ``backend`` ("sqlite" or "postgresql")."""
    if backend == "sqlite":
        yield sqlite_url(tmp_path)
    elif backend == "postgresql":
        with postgres_database() as url:
            yield url
    else:
        raise ValueError(f"unknown backend {backend!r}")


@contextlib.contextmanager
def migrated_engine(backend: str, tmp_path: Path) -> Iterator[Any]:
    """A SQLAlchemy engine on an empty database of ``backend`` at the newest schema,
    disposed of (and the database dropped) afterwards."""
    from engine.store import migrate
    from engine.store.store import make_engine

    with database(backend, tmp_path) as url:
        engine = make_engine(url)
        try:
            migrate.ensure_current(engine)
            yield engine
        finally:
            engine.dispose()


def open_database(testcase: unittest.TestCase, backend: str) -> str:
    """For a trial/unittest ``setUp``: an empty database, dropped by a cleanup; its URL.

    pytest's skip and fail outcomes are turned into the unittest ones, which trial reports.
    """
    stack = contextlib.ExitStack()
    try:
        tmp_path = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="aiguillage-")))
        url = stack.enter_context(database(backend, tmp_path))
    except pytest.skip.Exception as skipped:
        stack.close()
        raise unittest.SkipTest(str(skipped.msg)) from None
    except pytest.fail.Exception as failed:
        stack.close()
        testcase.fail(str(failed.msg))
    except BaseException:
        stack.close()
        raise
    testcase.addCleanup(stack.close)
    return url
