"""Tests for engine.store.sqlitebind: NULL and BLOB bound as before, through the adapters."""
from __future__ import annotations

import sqlite3

from engine.store import sqlitebind


def test_none_and_bytes_are_stored_as_null_and_blob():
    sqlitebind.register()
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (a, b, c)")
    db.executemany("INSERT INTO t VALUES (?, ?, ?)", [(None, b"\x00raw\xff", "text")])
    assert db.execute("SELECT a, b, c, typeof(a), typeof(b) FROM t").fetchall() == [
        (None, b"\x00raw\xff", "text", "null", "blob")]
    assert db.execute("SELECT count(*) FROM t WHERE a IS NULL").fetchone() == (1,)


def test_the_adapters_return_the_value_itself():
    value = b"MSH|^~\\&|A"
    adapters = dict(sqlitebind.ADAPTERS)
    assert adapters[bytes](value) is value
    assert adapters[type(None)](None) is None
    sqlitebind.register()
    assert sqlite3.adapters[(bytes, sqlite3.PrepareProtocol)] is bytes


def test_the_store_registers_them(tmp_path):
    from engine.store.store import make_engine

    sqlite3.adapters.pop((type(None), sqlite3.PrepareProtocol), None)
    make_engine(f"sqlite:///{tmp_path}/s.db").dispose()
    assert (type(None), sqlite3.PrepareProtocol) in sqlite3.adapters
