"""Tests for channels.file_flush: flushes shared by the threads writing into one directory."""
from __future__ import annotations

import errno
import threading

import pytest

from channels import file_flush


def _wait_for_waiters(count: int) -> None:
    """Until ``count`` threads wait on the module's condition (asked for a flush while a call
    runs): a deterministic hand-off, no sleep."""
    while len(file_flush._LOCK._waiters) < count:  # noqa: SLF001 (the condition's own list)
        threading.Event().wait(0.001)


def test_one_thread_flushes_by_itself_each_time():
    calls = []
    batch = file_flush.register("/d")
    batch.flush(lambda: calls.append(1))
    batch.flush(lambda: calls.append(2))
    batch.end()
    assert calls == [1, 2]  # a request after a call ended needs a call of its own
    assert file_flush._directories() == {}


def test_requests_made_during_a_call_share_the_next_one():
    """Two threads ask while a third's call runs: one call after it serves both (three
    requests, two calls); a request during a call is never served by that call."""
    release, calls = threading.Event(), []
    first, second, third = (file_flush.register("/d") for _ in range(3))

    def blocking_call():
        calls.append("first")
        release.wait()

    threads = [threading.Thread(target=first.flush, args=(blocking_call,))]
    threads[0].start()
    while not calls:
        threading.Event().wait(0.001)
    for batch in (second, third):
        threads.append(threading.Thread(target=batch.flush,
                                        args=(lambda: calls.append("shared"),)))
        threads[-1].start()
    _wait_for_waiters(2)
    release.set()
    for thread in threads:
        thread.join()
    assert calls == ["first", "shared"]
    for batch in (first, second, third):
        batch.end()
    assert file_flush._directories() == {}


def test_other_directories_do_not_share():
    calls = []
    one, other = file_flush.register("/a"), file_flush.register("/b")
    one.flush(lambda: calls.append("a"))
    other.flush(lambda: calls.append("b"))
    one.end()
    other.end()
    assert calls == ["a", "b"]


def test_an_error_fails_every_batch_registered_then():
    """syncfs reports a write-back error to one descriptor's call only: every batch
    registered in the directory then fails, its own flush made or not; a batch registered
    after the error does not."""
    def failing():
        raise OSError(errno.EIO, "I/O error", "/d/")

    calls = []
    failed, bystander = file_flush.register("/d"), file_flush.register("/d")
    with pytest.raises(OSError) as raised:
        failed.flush(failing)
    assert raised.value.errno == errno.EIO
    with pytest.raises(OSError) as raised:
        bystander.flush(lambda: calls.append("bystander"))
    assert raised.value.errno == errno.EIO and calls == []
    later = file_flush.register("/d")
    later.flush(lambda: calls.append("later"))
    for batch in (failed, bystander, later):
        batch.end()
    assert calls == ["later"]
