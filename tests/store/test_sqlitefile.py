"""Tests for engine.store.sqlitefile: the SQLite store's file modes and bounded WAL."""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import stat
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from twisted.trial import unittest

from engine.store import migrate, sqlitefile
from engine.store.store import Store, make_engine


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def open_umask():
    """The usual umask (022), whatever the test runner's."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_new_store_is_private(tmp_path, open_umask):
    """If the engine creates its SQLite store under umask 022, then the folder is 0700 and
    the database, its -wal and its -shm are 0600."""
    path = tmp_path / "data" / "store.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.ensure_current(engine)
    with engine.connect() as conn:  # the WAL files exist while a connection is open
        conn.execute(text("SELECT 1"))
        assert _mode(path.parent) == 0o700
        assert {suffix: _mode(f"{path}{suffix}") for suffix in sqlitefile.SUFFIXES} == {
            "": 0o600, "-wal": 0o600, "-shm": 0o600}
    engine.dispose()


def test_store_readable_by_others_is_warned_about(tmp_path, caplog):
    """If an existing store file is readable by others, then starting the store logs a
    WARNING naming the file, its mode and the fix; a private store logs none."""
    from twisted.internet import reactor

    path = tmp_path / "store.db"
    store = Store(f"sqlite:///{path}", reactor)
    store.engine.dispose()
    os.chmod(path, 0o644)
    with caplog.at_level(logging.WARNING, logger="engine.store.sqlitefile"):
        sqlitefile.warn_if_exposed(path)
        os.chmod(path, 0o600)
        sqlitefile.warn_if_exposed(path)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and f"{path} (0644)" in warnings[0] and "chmod 600" in warnings[0]


def _busy_readers(engine, stop: threading.Event, count: int = 2) -> list[threading.Thread]:
    """Readers that keep overlapping snapshots open, as lanes and scans do under load."""
    def read() -> None:
        while not stop.is_set():
            with engine.connect() as conn:
                conn.exec_driver_sql("BEGIN")
                conn.exec_driver_sql("SELECT count(*) FROM id_blocks").all()
                time.sleep(0.004)
                conn.exec_driver_sql("COMMIT")

    threads = [threading.Thread(target=read, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads


def _largest_wal(tmp_path, checkpointer: bool) -> int:
    path = tmp_path / f"wal-{checkpointer}.db"
    engine = make_engine(f"sqlite:///{path}", sqlite_synchronous="NORMAL")
    migrate.ensure_current(engine)
    wal = sqlitefile.WALCheckpointer(engine, path, restart_bytes=1 << 20)
    stop = threading.Event()
    readers = _busy_readers(engine, stop)
    largest = 0
    try:
        for n in range(300):  # 300 commits of 64 KiB: 19 MiB through the WAL
            with engine.begin() as conn:
                conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS t (b BLOB)")
                conn.exec_driver_sql("DELETE FROM t")
                conn.execute(text("INSERT INTO t VALUES (:b)"), {"b": os.urandom(65536)})
            if checkpointer:
                wal.after_commit()
            largest = max(largest, wal.wal_bytes())
    finally:
        stop.set()
        for reader in readers:
            reader.join()
        engine.dispose()
    return largest


def test_wal_stays_bounded_under_readers(tmp_path):
    """If commits go on while readers always hold some snapshot, then without the writer's
    checkpoints the WAL grows past 8 MiB, and with them it stays under 4 MiB (bound 1 MiB
    plus what commits add while a checkpoint waits)."""
    assert _largest_wal(tmp_path, checkpointer=False) > 8 << 20
    assert _largest_wal(tmp_path, checkpointer=True) < 4 << 20


def test_wal_size_read_every_few_commits(tmp_path, monkeypatch):
    """If commits follow each other, then the WAL's size is read after the first and then
    once every CHECK_EVERY commits, not after each one; a checkpoint a reader kept from
    finishing waits RETRY_AFTER commits more."""
    wal = sqlitefile.WALCheckpointer(None, tmp_path / "none.db", restart_bytes=100)
    reads, busy = [], []
    monkeypatch.setattr(wal, "wal_bytes", lambda: reads.append(1) or 0)
    for _ in range(3 * sqlitefile.CHECK_EVERY):
        wal.after_commit()
    assert len(reads) == 3
    monkeypatch.setattr(wal, "wal_bytes", lambda: reads.append(1) or 1000)
    monkeypatch.setattr(wal, "checkpoint", lambda mode: busy.append(mode) and False)
    for _ in range(sqlitefile.RETRY_AFTER + 1):
        wal.after_commit()
    assert (len(reads), busy) == (4, ["RESTART"])
    wal.after_commit()
    assert (len(reads), busy) == (5, ["RESTART"] * 2)


def test_idle_truncates_the_wal(tmp_path):
    """If the writer goes idle, then the WAL is emptied (TRUNCATE)."""
    path = tmp_path / "idle.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.ensure_current(engine)
    wal = sqlitefile.WALCheckpointer(engine, path)
    with engine.connect() as keep_open:  # the WAL file lives while a connection is open
        keep_open.execute(text("SELECT 1"))
        with engine.begin() as conn:
            conn.execute(text("UPDATE id_blocks SET next_value = next_value + 1"))
        assert wal.wal_bytes() > 0
        wal.idle()
        assert wal.wal_bytes() == 0
    engine.dispose()


class StartWarningTests(unittest.TestCase):
    """The warning comes from Store.start, that is when the engine starts."""

    def test_start_warns_about_an_exposed_store(self):
        """If the store file is 0644 when the Store starts, then a WARNING names it."""
        from twisted.internet import reactor

        folder = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, folder, True)
        path = Path(folder) / "store.db"
        path.touch(mode=0o644)
        os.chmod(path, 0o644)
        records: list[logging.LogRecord] = []
        handler = logging.Handler(logging.WARNING)
        handler.emit = records.append
        logging.getLogger("engine.store.sqlitefile").addHandler(handler)
        self.addCleanup(logging.getLogger("engine.store.sqlitefile").removeHandler, handler)
        store = Store(f"sqlite:///{path}", reactor)
        store.start()
        self.assertEqual(len(records), 1)
        self.assertIn(f"{path} (0644)", records[0].getMessage())
        return store.stop()
