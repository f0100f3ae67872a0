"""
The ``file`` destination's flushes shared by the threads that write into one directory.

Why: each lane of a destination writes in a thread of its own, and each of its batches of
anonymous files is flushed twice (the data, then the names: :mod:`channels.file_unnamed`),
each time with a ``syncfs``, which writes back the whole file system, then flushes the
device. A call that started after a thread's writes ended flushes them, whichever thread
made it. So a thread that needs a flush here waits for the call in flight, if any, then
either finds that a call started after its request has ended well, or makes the next call
itself, for every thread waiting by then (a group commit of flushes). With two busy lanes
one lane's names often leave with the other lane's data.

Errors: ``syncfs`` reports a write-back error of the file system once per open descriptor
(Linux 5.8 and later), to the first call made on it after the error; a call made on a
descriptor opened after another call saw the error does not report it. So a call that
reports an error here fails every batch registered in its directory at that moment, not
only the caller's: a batch is registered before its first write into the directory (its
pages cannot be hit before) and stays so until its last flush, so an error that hit its
pages is reported to some call made while it is registered, which fails it. A batch may thus
fail for another lane's pages, as one calling ``syncfs`` itself already could.

Everything here blocks: it runs in the destinations' own threads, never on the reactor.

test-case-name: tests.channels.test_file_flush
"""
from __future__ import annotations

import os
import threading
from typing import Callable

__all__ = ["Registration", "register"]

_LOCK = threading.Condition()
_DIRECTORIES: dict[str, "_Directory"] = {}  # those with a batch registered, by path


class _Directory:
    """The shared flushes of one directory (guarded by ``_LOCK``)."""

    def __init__(self) -> None:
        self.started = 0  # calls started so far; a call's number is this when it starts
        self.ended = 0  # the number of the last call that ended (they run one at a time)
        self.running = False
        self.registered: set[Registration] = set()


class Registration:
    """One batch's place in a directory's shared flushes, from before its first write to
    after its last flush (:func:`register`, :meth:`end`)."""

    def __init__(self, path: str, directory: _Directory):
        self._path, self._directory = path, directory
        self.failure: OSError | None = None  # reported by a call while registered

    def flush(self, call: Callable[[], None]) -> None:
        """Make sure that everything written into the directory before this call is flushed:
        by a call of ``call`` (one ``syncfs``, raising OSError) started after now, made here
        or by another thread. Raises the OSError of any call that failed while this batch
        was registered (see the module's docstring)."""
        directory = self._directory
        with _LOCK:
            wanted = directory.started + 1  # the first call to start after this request
            while directory.running and self.failure is None:
                _LOCK.wait()
            if self.failure is None and directory.ended < wanted:
                directory.started += 1
                directory.running = True
                number = directory.started
            else:
                number = 0  # ended well since the request, or failed
        if number:
            failure = None
            try:
                call()
            except OSError as error:
                failure = error
            finally:
                with _LOCK:
                    directory.running = False
                    directory.ended = number
                    if failure is not None:
                        for registration in directory.registered:
                            registration.failure = registration.failure or failure
                    _LOCK.notify_all()
        if self.failure is not None:
            raise OSError(self.failure.errno, self.failure.strerror, self.failure.filename)

    def end(self) -> None:
        """The batch is done with the directory (flushed or not)."""
        with _LOCK:
            self._directory.registered.discard(self)
            if not self._directory.registered and not self._directory.running:
                del _DIRECTORIES[self._path]


def register(path: str) -> Registration:
    """Register a batch that is about to write into the directory ``path`` (its path as the
    batch names it: two batches share flushes if they name it alike); end it with
    :meth:`Registration.end`."""
    with _LOCK:
        directory = _DIRECTORIES.get(path)
        if directory is None:
            directory = _DIRECTORIES[path] = _Directory()
        registration = Registration(path, directory)
        directory.registered.add(registration)
        return registration


def _directories() -> dict[str, _Directory]:
    """The directories with a batch registered (for tests)."""
    return _DIRECTORIES


def _forgotten_in_child() -> None:
    """A forked child has none of its parent's threads: nothing registered, no lock held."""
    global _LOCK
    _LOCK = threading.Condition()
    _DIRECTORIES.clear()


os.register_at_fork(after_in_child=_forgotten_in_child)
