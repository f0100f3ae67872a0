"""Tests for engine.store.sqlitelock: writers of one SQLite file take turns on a file lock,
across processes and within one; a failed batch gives its turn back."""
from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest

from engine.store.sqlitelock import WriteTurns, lock_path


@contextmanager
def inner(conn):
    conn.append("begin")
    yield
    conn.append("commit")


def test_the_lock_file_sits_beside_the_database(tmp_path):
    assert lock_path(tmp_path / "aiguillage.db") == tmp_path / "aiguillage.db.writelock"


def test_a_batch_runs_inside_the_inner_transaction_holding_the_lock(tmp_path):
    turns = WriteTurns(tmp_path / "store.db", inner)
    conn: list[str] = []
    with turns(conn):
        conn.append("write")
        assert _held_elsewhere(turns.path)
    assert conn == ["begin", "write", "commit"]
    assert not _held_elsewhere(turns.path)
    assert (turns.path.stat().st_mode & 0o777) == 0o600
    turns.close()


def test_a_failed_batch_gives_its_turn_back(tmp_path):
    turns = WriteTurns(tmp_path / "store.db", inner)
    with pytest.raises(RuntimeError):
        with turns([]):
            raise RuntimeError("the batch failed")
    assert not _held_elsewhere(turns.path)
    turns.close()


def test_a_writer_waits_for_another_process_to_finish(tmp_path):
    turns = WriteTurns(tmp_path / "store.db", inner)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(turns.path)], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        entered = threading.Event()

        def write():
            with turns([]):
                entered.set()

        writer = threading.Thread(target=write)
        writer.start()
        assert not entered.wait(0.3)  # still the other process's turn
        holder.stdin.write("release\n")
        holder.stdin.flush()
        writer.join(10)
        assert entered.is_set()
        assert turns.waits == 1
    finally:
        holder.kill()
        holder.wait()
        turns.close()


def test_two_writers_of_one_process_take_turns_too(tmp_path):
    first = WriteTurns(tmp_path / "store.db", inner)
    second = WriteTurns(tmp_path / "store.db", inner)
    inside = threading.Event()
    with first([]):
        thread = threading.Thread(target=_enter_and_signal, args=(second, inside))
        thread.start()
        assert not inside.wait(0.3)
    thread.join(10)
    assert inside.is_set() and second.waits == 1
    first.close()
    second.close()


def _enter_and_signal(turns: WriteTurns, inside: threading.Event) -> None:
    with turns([]):
        inside.set()


def _held_elsewhere(path: Path) -> bool:
    """Whether another open file of ``path`` would have to wait for the lock."""
    descriptor = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(descriptor)
    return False


HOLDER = """
import fcntl, os, sys
descriptor = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(descriptor, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.readline()
"""
