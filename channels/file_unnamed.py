"""
The ``file`` destination's batches as anonymous files, named once flushed (Linux).

A file written under a temporary name and renamed (:mod:`channels.file_writes`) costs its
directory an entry added, looked up, removed, and the final one looked up and added: for a
message of a few kilobytes, the larger part of the kernel's work (bench/README.md). Here each
file of a batch is created without a name (``O_TMPFILE``) in its directory, written, flushed
with the others, then linked under its final name: one entry added per file, and a process
that dies before naming its files leaves nothing behind (no temporary dot-files for an
operator to clean up). The link is made from the open file itself (``linkat`` with
``AT_EMPTY_PATH``, which Linux allows an unprivileged process since 6.10), not through its
path in ``/proc/self/fd`` (as open(2) describes): that path costs the kernel a walk of four
components per file. A kernel that refuses the first way gets the second for the rest of the
process's life.

Durability is as with renames. The data is flushed (one ``syncfs`` of the directory's file
system) before any name is given, so a name never points at data that is not on disk; the
names are flushed before the batch is reported written. That second flush is a ``syncfs``
too, not an ``fsync`` of the directory: linking also gives each file its link count, which a
flush of the directory alone leaves to a later write-back on a file system without a
journal. So this path is taken only where ``syncfs`` reports write-back errors (Linux 5.8),
or when nothing is flushed at all (``fsync: false``).

A final name that exists already (a message written again after a crash) cannot be linked
over: that file is linked under a temporary dot-name and renamed over it, replacing the old
one as before. A directory whose file system refuses ``O_TMPFILE`` gets named temporary files
(:mod:`channels.file_writes`' way) for the rest of the process's life.

Everything here blocks: it runs in the destination's own thread, never on the reactor.

test-case-name: tests.channels.test_file_unnamed
"""
from __future__ import annotations

import ctypes
import errno
import os
import sys
from dataclasses import dataclass
from typing import Any

from channels import file_writes
from channels.file_names import fit_name, name_limit
from channels.file_writes import (
    DEFAULT_DIRECTORY_MODE, DEFAULT_FILE_MODE, make_directory)

__all__ = ["usable", "write_batch"]


_O_TMPFILE = getattr(os, "O_TMPFILE", 0)
_PROC_FD = "/proc/self/fd/"  # an open file's path, for linkat to give it a name
_PROC_FD_PRESENT = os.path.isdir(_PROC_FD)
# what open(O_TMPFILE) answers where the file system (or the kernel) does not have it
_NO_TMPFILE = frozenset({errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL})
_NAMED_ONLY: set[str] = set()  # directories whose file system refused O_TMPFILE
_AT_EMPTY_PATH = 0x1000  # linkat(2): link the file open as the first descriptor itself
# a name as os.fsencode gives it, without that function's own checks per file
_FS_ENCODING, _FS_ERRORS = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()


def _load_linkat() -> Any:
    """libc's ``linkat`` on Linux (None elsewhere, or without it)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).linkat
    except (OSError, AttributeError):
        return None
    # int linkat(int, const char *, int, const char *, int): called with Python ints and
    # bytes only, which ctypes passes as such; declared argument types would convert each
    # argument at every call, which costs more than the call itself
    function.restype = ctypes.c_int
    return function


# how this process links an anonymous file: by its descriptor (``linkat`` with
# ``AT_EMPTY_PATH``) until the kernel refuses that once, then through /proc/self/fd
_LINK_BY_DESCRIPTOR = {"linkat": _load_linkat()}


@dataclass
class _Place:
    """One directory of a batch: its path with its separator, its name limit, an open
    descriptor of it (None where O_TMPFILE was refused before), and whether its files are
    anonymous (False once its file system refused O_TMPFILE: named temporary files)."""

    prefix: str
    limit: int
    descriptor: int | None
    anonymous: bool


@dataclass
class _Staged:
    """One file of a batch, written, not yet named: an anonymous file (``descriptor``) or a
    named temporary file (``temporary``)."""

    final: str
    place: _Place
    temporary: str | None = None
    descriptor: int | None = None


def usable(fsync: bool) -> bool:
    """Whether this process can write batches this way (``fsync``: with flushes)."""
    return bool(_O_TMPFILE) and _PROC_FD_PRESENT and (file_writes._SYNCFS is not None
                                                      or not fsync)


def write_batch(items: list[tuple[str, bytes]], fsync: bool, *,
                file_mode: int = DEFAULT_FILE_MODE,
                directory_mode: int = DEFAULT_DIRECTORY_MODE) -> list[str | OSError]:
    """:func:`channels.file_writes.write_batch` with anonymous files (see the module's
    docstring), same arguments and results: written, flushed, named in order, the names
    flushed. Only where :func:`usable`."""
    places: dict[str, _Place] = {}
    staged: list[_Staged] = []
    try:
        error = _stage_anonymous(items, file_mode, directory_mode, places, staged)
        if fsync and staged:
            try:
                for place in _places_of(staged):
                    _flush_place(place, [s.temporary for s in staged
                                         if s.place is place and s.temporary is not None])
            except OSError as failure:  # nothing of the batch is known to be on disk
                _discard(staged)
                failure.filename = failure.filename or staged[0].final
                return [failure]
        results, failed = _publish(staged)
        error = failed or error
        if fsync and results:
            try:
                for place in _places_of(staged[:len(results)]):
                    _flush_names(place)
            except OSError as failure:  # nothing of the batch is known to be on disk
                failure.filename = failure.filename or place.prefix
                return [failure]
        return results + ([error] if error is not None else [])
    finally:
        for place in places.values():
            if place.descriptor is not None:
                os.close(place.descriptor)


def _stage_anonymous(items: list[tuple[str, bytes]], file_mode: int, directory_mode: int,
                     places: dict[str, _Place], staged: list[_Staged]) -> OSError | None:
    """Write each item, not flushed, into ``staged``, until one fails; the error if any."""
    masked = None  # whether the umask takes bits of file_mode away: the first file tells
    for path, data in items:
        directory, filename = os.path.split(path)
        try:
            place = places.get(directory)
            if place is None:
                place = places[directory] = _open_place(directory, directory_mode)
            final = place.prefix + fit_name(filename, place.limit)
            if place.anonymous:
                try:
                    descriptor, masked = _write_unnamed(place.descriptor, data, file_mode,
                                                        masked)
                except OSError as error:
                    if error.errno not in _NO_TMPFILE:
                        raise
                    _NAMED_ONLY.add(directory)  # this one and the next go by name
                    place.anonymous = False
                else:
                    staged.append(_Staged(final, place, descriptor=descriptor))
                    continue
            temporary, final = file_writes.temporary_name(path, place.limit)
            masked = file_writes._write_temporary(temporary, data, file_mode, False, masked)
            staged.append(_Staged(final, place, temporary=temporary))
        except OSError as error:
            error.filename = error.filename or path
            return error
    return None


def _open_place(directory: str, directory_mode: int) -> _Place:
    """``directory`` (created if missing) as a batch writes into it."""
    prefix = os.path.join(directory, "")
    if directory in _NAMED_ONLY:
        make_directory(directory, directory_mode)
        return _Place(prefix, name_limit(directory), None, False)
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    try:
        descriptor = os.open(directory, flags)
    except FileNotFoundError:
        make_directory(directory, directory_mode)
        descriptor = os.open(directory, flags)
    try:
        limit = name_limit(directory)
    except BaseException:
        os.close(descriptor)
        raise
    return _Place(prefix, limit, descriptor, True)


def _write_unnamed(directory: int, data: bytes, file_mode: int,
                   masked: bool | None) -> tuple[int, bool]:
    """An anonymous file in the directory open as ``directory``, with ``file_mode`` exactly
    and ``data`` written, not flushed: (its descriptor, whether the umask took bits away)."""
    descriptor = os.open(".", os.O_WRONLY | _O_TMPFILE, file_mode, dir_fd=directory)
    try:
        if masked is None:
            masked = os.fstat(descriptor).st_mode & 0o777 != file_mode
        if masked:
            os.fchmod(descriptor, file_mode)
        view, written = memoryview(data), 0
        while written < len(view):  # os.write may write less than asked
            written += os.write(descriptor, view[written:])
    except BaseException:
        os.close(descriptor)  # unnamed: nothing is left behind
        raise
    return descriptor, masked


def _publish(staged: list[_Staged]) -> tuple[list[str | OSError], OSError | None]:
    """Name each staged file, in order, until one fails (the rest discarded): the final
    paths named, and the error if any."""
    results: list[str | OSError] = []
    named: list[int] = []  # the descriptors of the files named, closed together at the end
    try:
        for index, item in enumerate(staged):
            try:
                if item.descriptor is not None:
                    _link(item)
                    named.append(item.descriptor)
                    item.descriptor = None
                else:
                    os.replace(item.temporary, item.final)
            except OSError as failure:
                failure.filename = failure.filename or item.final
                _discard(staged[index:])
                return results, failure
            results.append(item.final)
        return results, None
    finally:
        if named:
            _close_all(named)


def _close_all(descriptors: list[int]) -> None:
    """Close ``descriptors``, each open and this batch's own, in one call per run of
    consecutive numbers (``os.closerange``: one ``close_range`` on Linux 5.9 and later, else
    a ``close`` each): a batch's files are mostly opened in a row, and a call per file costs
    the kernel's entry and exit each time. A number inside a run is one of these, still
    open, so no other thread's descriptor can be in the range closed."""
    descriptors.sort()
    first = last = descriptors[0]
    for descriptor in descriptors[1:]:
        if descriptor != last + 1:
            _close_run(first, last)
            first = descriptor
        last = descriptor
    _close_run(first, last)


def _close_run(first: int, last: int) -> None:
    if first == last:
        os.close(first)
    else:
        os.closerange(first, last + 1)


def _link(item: _Staged) -> None:
    """Give the anonymous file of ``item`` its final name; one that exists is replaced (the
    file is linked under a temporary dot-name, then renamed over it). Leaves it open."""
    place = item.place
    name = item.final[len(place.prefix):]
    try:
        _link_as(item.descriptor, place.descriptor, name)
    except FileExistsError:
        temporary, _ = file_writes.temporary_name(item.final, place.limit)
        _link_as(item.descriptor, place.descriptor, temporary[len(place.prefix):])
        try:
            os.replace(temporary, item.final)
        except BaseException:
            file_writes._remove_quietly(temporary)
            raise


def _link_as(descriptor: int, directory: int, name: str) -> None:
    """Name the anonymous file open as ``descriptor`` ``name`` in the directory open as
    ``directory``; FileExistsError if the name is taken.

    By the descriptor itself where the kernel allows it; a kernel before 6.10 allows that
    only to a process with CAP_DAC_READ_SEARCH and answers ENOENT: then the file's path in
    /proc/self/fd is linked instead, now and for the rest of the process's life (a directory
    gone answers ENOENT both ways, and changes nothing)."""
    linkat = _LINK_BY_DESCRIPTOR["linkat"]
    if linkat is not None:
        if linkat(descriptor, b"", directory, name.encode(_FS_ENCODING, _FS_ERRORS),
                  _AT_EMPTY_PATH) == 0:
            return
        code = ctypes.get_errno()
        if code != errno.ENOENT:
            raise OSError(code, os.strerror(code))
    os.link(f"{_PROC_FD}{descriptor}", name, dst_dir_fd=directory)  # linkat(AT_SYMLINK_FOLLOW)
    if linkat is not None:  # refused by descriptor, linked by path: the kernel's rule
        _LINK_BY_DESCRIPTOR["linkat"] = None


def _places_of(staged: list[_Staged]) -> list[_Place]:
    """The directories of ``staged``, each once, in the order first met."""
    return list({id(item.place): item.place for item in staged}.values())


def _flush_place(place: _Place, temporaries: list[str]) -> None:
    """Flush the data of a place's staged files: a ``syncfs`` of its file system."""
    if place.descriptor is None:  # named temporaries only, the directory not open
        file_writes.flush_files(temporaries, {place.prefix[:-1] or os.sep})
    else:
        _syncfs(place.descriptor, place.prefix)


def _flush_names(place: _Place) -> None:
    """Flush the names given in a place, and the link counts of its anonymous files: a
    ``syncfs`` (a directory of named temporary files only: an ``fsync`` of it)."""
    if place.descriptor is None:
        file_writes._fsync_directory(place.prefix[:-1] or os.sep)
    else:
        _syncfs(place.descriptor, place.prefix)


def _syncfs(descriptor: int, where: str) -> None:
    syncfs = file_writes._SYNCFS
    if syncfs is None:  # not usable() with flushes
        raise RuntimeError("no syncfs to flush anonymous files with")
    if syncfs(descriptor) != 0:
        code = file_writes.ctypes.get_errno()
        raise OSError(code, os.strerror(code), where)


def _discard(staged: list[_Staged]) -> None:
    """Drop staged files not named: close the anonymous ones, remove the named ones."""
    for item in staged:
        if item.descriptor is not None:
            os.close(item.descriptor)
            item.descriptor = None
        elif item.temporary is not None:
            file_writes._remove_quietly(item.temporary)
