"""
Atomic, flushed file writes for the ``file`` destination (:mod:`channels.file_destination`):
each file is written under a temporary dot-name in its directory, flushed to disk, renamed
over its final name (atomic on POSIX) and the directory entry itself flushed, so that a
poller never sees half a file and a file reported written survives a power cut. A batch
(:func:`write_batch`) writes all its files first and flushes them together, then renames them
and flushes the directory once: one journal commit for the batch rather than one per file.

On Linux the ``file`` destination writes its batches as anonymous files instead
(:mod:`channels.file_unnamed`).

Everything here blocks: it runs in the destination's own thread, never on the reactor.

test-case-name: tests.channels.test_file_destination
"""
from __future__ import annotations

import ctypes
import itertools
import os
import platform
import secrets
import sys
from typing import Any

from channels.file_names import fit_name, name_limit

__all__ = ["DEFAULT_DIRECTORY_MODE", "DEFAULT_FILE_MODE", "flush_files", "make_directory",
           "temporary_name", "write_atomically", "write_batch"]

DEFAULT_FILE_MODE = 0o600
DEFAULT_DIRECTORY_MODE = 0o700
_TEMPORARY_EXTRA = 38  # what the temporary name adds: "." + "." + 32 hex digits + ".tmp"
# Temporary names: unique to this process (a random token drawn once, and the pid) and to the
# file within it (a counter), so that no name costs a call for random bytes. O_EXCL still
# refuses a name that exists.
_PROCESS_TOKEN = secrets.token_hex(6)
_TEMPORARY_NUMBERS = itertools.count()


def write_atomically(path: str, data: bytes, fsync: bool, *,
                     file_mode: int = DEFAULT_FILE_MODE,
                     directory_mode: int = DEFAULT_DIRECTORY_MODE,
                     flush_directory: bool = True) -> str:
    """Write ``data`` to ``path`` all at once or not at all; returns the path written.

    Runs in the destination's thread, never on the reactor. The name is cut to the file
    system's limit first (:func:`fit_name`), so the path returned may be shorter than
    ``path``. The temporary file is a dot-name in the same directory (so that the rename stays
    on one file system and pollers matching ``*.hl7`` ignore it), created exclusively, and
    given ``file_mode`` exactly, whatever the umask.
    """
    directory = os.path.dirname(path)
    make_directory(directory, directory_mode)
    temporary, path = temporary_name(path, name_limit(directory))
    _write_temporary(temporary, data, file_mode, fsync)
    try:
        os.replace(temporary, path)
    except BaseException:
        _remove_quietly(temporary)
        raise
    if fsync and flush_directory:
        _fsync_directory(directory)
    return path


def temporary_name(path: str, limit: int) -> tuple[str, str]:
    """(temporary, final) paths for writing ``path``: its name cut to ``limit`` bytes, and a
    unique dot-name beside it."""
    directory, filename = os.path.split(path)
    return _names_in(os.path.join(directory, ""), filename, limit, _process_stem())


def _process_stem() -> str:
    """The first 20 hex digits of this process's temporary names (its token and pid)."""
    return f"{_PROCESS_TOKEN}{os.getpid() % 16**8:08x}"


def _names_in(prefix: str, filename: str, limit: int, stem: str) -> tuple[str, str]:
    """(temporary, final) paths of ``filename`` in the directory ``prefix`` (its path with
    its separator): :func:`temporary_name` with the directory's part done once per batch."""
    short = fit_name(filename, max(limit - _TEMPORARY_EXTRA, 1))
    number = next(_TEMPORARY_NUMBERS) % 16**12
    final = prefix + fit_name(filename, limit)
    return f"{prefix}.{short}.{stem}{number:012x}.tmp", final  # 32 hex digits


def _write_temporary(temporary: str, data: bytes, file_mode: int, fsync: bool,
                     masked: bool | None = None) -> bool:
    """Create ``temporary`` exclusively with ``file_mode`` and write ``data``, flushed to
    disk if ``fsync``; removed again if anything fails. Returns whether the umask took bits
    of ``file_mode`` away (the mode was then set again).

    Plain descriptor calls (no file object: that would add a stat, an ioctl and a seek per
    file). ``masked``: that answer when the caller knows it (a batch's first file gave it);
    unknown, the new file's mode tells. Asking the umask itself costs more: ``os.umask``
    sets it for every thread meanwhile, and ``/proc/self/status`` is a file the kernel
    writes out whole at each read."""
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, file_mode)
    try:
        try:
            if masked is None:
                masked = os.fstat(descriptor).st_mode & 0o777 != file_mode
            if masked:
                os.fchmod(descriptor, file_mode)  # the umask took bits away
            view, written = memoryview(data), 0
            while written < len(view):  # os.write may write less than asked
                written += os.write(descriptor, view[written:])
            if fsync:
                os.fsync(descriptor)
        finally:
            os.close(descriptor)
    except BaseException:
        _remove_quietly(temporary)
        raise
    return masked


def make_directory(directory: str, mode: int) -> None:
    """Create ``directory`` (and its parents) with ``mode`` exactly if it is missing.

    A directory that exists is left as it is: it is the operator's, and its permissions
    are theirs to choose.
    """
    if os.path.isdir(directory):
        return
    os.makedirs(directory, mode=mode, exist_ok=True)
    os.chmod(directory, mode)  # makedirs' mode passes through the umask


def write_batch(items: list[tuple[str, bytes]], fsync: bool, *,
                file_mode: int = DEFAULT_FILE_MODE,
                directory_mode: int = DEFAULT_DIRECTORY_MODE) -> list[str | OSError]:
    """Write each (path, data) atomically, in order; the path of each file written, then the
    error that stopped the batch, if any (its ``filename`` set to the path).

    Runs in the destination's thread. Every file is written under its temporary name first,
    then all are flushed together (:func:`flush_files`), renamed in order, and each directory
    flushed once, after the last rename: a file is reported written only once its data and
    its directory entry are on disk. Flushing a hundred files one by one costs a hundred
    journal commits; flushed together, one.
    """
    staged, error = _stage(items, file_mode, directory_mode)
    if fsync and staged:
        try:
            flush_files([temporary for temporary, _, _ in staged],
                        {directory for _, _, directory in staged})
        except OSError as failure:  # nothing of the batch is known to be on disk
            _remove_staged(staged)
            failure.filename = failure.filename or staged[0][1]
            return [failure]
    results, renamed_in, failed = _rename(staged)
    error = failed or error
    if fsync:
        try:
            for directory in sorted(renamed_in):
                _fsync_directory(directory)
        except OSError as failure:  # nothing of the batch is known to be on disk
            failure.filename = failure.filename or directory
            return [failure]
    return results + ([error] if error is not None else [])


def _rename(staged: list[tuple[str, str, str]]
            ) -> tuple[list[str | OSError], set[str], OSError | None]:
    """Rename each staged file over its final name, in order, until one fails (the rest
    removed): the final paths renamed, their directories, and the error if any."""
    results: list[str | OSError] = []
    renamed_in: set[str] = set()
    for index, (temporary, final, directory) in enumerate(staged):
        try:
            os.replace(temporary, final)
        except OSError as failure:
            failure.filename = failure.filename or final
            _remove_staged(staged[index:])
            return results, renamed_in, failure
        results.append(final)
        renamed_in.add(directory)
    return results, renamed_in, None


def _stage(items: list[tuple[str, bytes]], file_mode: int,
           directory_mode: int) -> tuple[list[tuple[str, str, str]], OSError | None]:
    """Write each item under its temporary name, not flushed, until one fails: the
    (temporary, final, directory) paths written, and the error that stopped them if any."""
    staged: list[tuple[str, str, str]] = []
    prefixes: dict[str, tuple[str, int]] = {}  # per directory: one pathconf per batch
    masked = None  # whether the umask takes bits of file_mode away: the first file tells
    stem = _process_stem()
    for path, data in items:
        directory, filename = os.path.split(path)
        try:
            if directory not in prefixes:
                make_directory(directory, directory_mode)
                prefixes[directory] = (os.path.join(directory, ""), name_limit(directory))
            prefix, limit = prefixes[directory]
            temporary, final = _names_in(prefix, filename, limit, stem)
            masked = _write_temporary(temporary, data, file_mode, False, masked)
        except OSError as error:
            error.filename = error.filename or path
            return staged, error
        staged.append((temporary, final, directory))
    return staged, None


def flush_files(paths: list[str], directories: set[str] | None = None) -> None:
    """Flush the data of the files at ``paths`` (in ``directories``, when the caller knows
    them) to disk.

    On Linux 5.8 or later, one ``syncfs`` of their file system does it for all of them at
    once (it guarantees what an ``fsync`` of each file would, and reports a failed write-back
    since 5.8); elsewhere each file is flushed in turn.
    """
    if _SYNCFS is not None:
        if directories is None:
            directories = {os.path.dirname(path) for path in paths}
        for directory in sorted(directories):
            descriptor = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
            try:
                if _SYNCFS(descriptor) != 0:
                    code = ctypes.get_errno()
                    raise OSError(code, os.strerror(code), directory)
            finally:
                os.close(descriptor)
        return
    for path in paths:
        descriptor = os.open(path, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _load_syncfs() -> Any:
    """libc's ``syncfs`` where it reports write-back errors (Linux 5.8 or later), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        version = tuple(int(part) for part in platform.release().split("-")[0].split(".")[:2])
        function = ctypes.CDLL(None, use_errno=True).syncfs
    except (ValueError, OSError, AttributeError):
        return None
    if version < (5, 8):
        return None
    function.argtypes = [ctypes.c_int]
    function.restype = ctypes.c_int
    return function


_SYNCFS = _load_syncfs()


def _remove_staged(staged: list[tuple[str, str, str]]) -> None:
    for temporary, _, _ in staged:
        _remove_quietly(temporary)


def _fsync_directory(directory: str) -> None:
    """Flush the directory entry, so the rename itself survives a power cut."""
    descriptor = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
