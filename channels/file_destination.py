"""
The ``file`` destination: write each message to its own file in a directory.

Files are how many laboratory and archiving systems still pick up HL7, usually by polling a
directory. Two things matter to them: never to see half a file, and never to lose one that
was reported written. So each message is written under a temporary dot-name in the target
directory, flushed to disk, renamed over its final name (atomic on POSIX) and the directory
entry itself flushed; only then is the delivery reported SENT. Rewriting the same message
after a crash replaces the same file, which keeps at-least-once delivery harmless. A batch
(:func:`write_batch`) writes all its files first and flushes them together, then renames them
and flushes the directory once: one journal commit for the batch rather than one per file.

Disk I/O never runs on the reactor: each destination instance (one per lane) owns a one-thread
pool, so a slow or hung mount stalls its own lane and nothing else.

File names come from a ``str.format`` template checked when the destination is built: an
unknown placeholder, or anything that could leave the directory, is refused then rather
than failing every delivery later. A rendered name never starts with a dot (pollers matching
``*.hl7`` skip dot-files, so a delivery reported SENT would never be picked up) and is cut to
the file system's name limit, keeping its extension, rather than failing every retry.

Messages are patient data: files are created 0600 and a directory the destination creates
0700, whatever the umask; ``file_mode`` and ``directory_mode`` open them to another account
(the poller's group, say). A write that fails because of the name itself (too long, invalid,
taken by a directory) fails the same way on every retry, so it is reported not retryable and
the delivery is parked at once; a failure of the place (full disk, permissions, a mount that
went away) is retryable, since an operator can fix it and the delivery then goes through.

test-case-name: tests.channels.test_file_destination
"""
from __future__ import annotations

import ctypes
import errno
import hashlib
import itertools
import os
import secrets
import platform
import string
import sys
import time
from typing import Any, Mapping

from twisted.internet import defer, threads
from twisted.python.threadpool import ThreadPool

from channels.options import label, resolve
from engine.interfaces import (
    ConnectorSpec, DeliveryContext, DeliveryFailed, DeliveryOutcome, OptionSpec)

DEFAULT_TEMPLATE = "{channel}-{message_id:012d}.hl7"
PLACEHOLDERS = ("channel", "destination", "message_id", "delivery_id", "control_id",
                "message_type", "date", "time")
LINE_ENDINGS = {"cr": b"\r", "lf": b"\n", "crlf": b"\r\n"}
_SAFE = frozenset(string.ascii_letters + string.digits + "._-")
_MISSING = "unknown"  # stands for an absent control id or message type in a name
DEFAULT_FILE_MODE = 0o600
DEFAULT_DIRECTORY_MODE = 0o700
DEFAULT_NAME_MAX = 255  # when the file system does not say (pathconf unsupported)
_TEMPORARY_EXTRA = 38  # what the temporary name adds: "." + "." + 32 hex digits + ".tmp"
# Temporary names: unique to this process (a random token drawn once, and the pid) and to the
# file within it (a counter), so that no name costs a call for random bytes. O_EXCL still
# refuses a name that exists.
_PROCESS_TOKEN = secrets.token_hex(6)
_TEMPORARY_NUMBERS = itertools.count()
_MAX_EXTENSION = 16  # a longer "extension" is part of the name, cut with it
# Failures caused by the name itself: the same name fails the same way on every retry.
PERMANENT_ERRNOS = frozenset(
    code for code in (errno.ENAMETOOLONG, errno.EINVAL, errno.EISDIR,
                      getattr(errno, "EILSEQ", None)) if code is not None)

SPEC = ConnectorSpec(
    role="destination", type_name="file",
    help="Write each message atomically to its own file in a directory.",
    options=(
        OptionSpec("directory", "path", required=True, help="created if missing"),
        OptionSpec("filename", "str", default=DEFAULT_TEMPLATE,
                   help="placeholders: " + ", ".join(PLACEHOLDERS)),
        OptionSpec("fsync", "bool", default=True,
                   help="flush file and directory to disk before reporting SENT"),
        OptionSpec("line_endings", "str", default="cr", choices=tuple(LINE_ENDINGS),
                   help="segment separator written: cr (as HL7 sends it), lf or crlf"),
        OptionSpec("file_mode", "str", default="0600",
                   help='permissions of the files written, in octal ("0640": group may read)'),
        OptionSpec("directory_mode", "str", default="0700",
                   help="permissions of a directory the destination creates, in octal"),
    ))


class FileDestination:
    """Write each payload to ``directory``, named by the ``filename`` template."""

    def __init__(self, name: str, channel: str, lane: int, options: Mapping[str, Any],
                 reactor: Any):
        values = resolve(SPEC, name, options)
        self.name = name
        self.channel = channel
        self.lane = lane
        self.directory = values["directory"]
        self.template = values["filename"]
        self.fsync = values["fsync"]
        self.line_ending = LINE_ENDINGS[values["line_endings"]]
        self.file_mode = parse_mode(values["file_mode"], "file_mode", label(SPEC, name))
        self.directory_mode = parse_mode(values["directory_mode"], "directory_mode",
                                         label(SPEC, name))
        check_template(self.template, label(SPEC, name))
        self._reactor = reactor
        self._pool = ThreadPool(minthreads=0, maxthreads=1,
                                name=f"file-destination-{channel}-{name}-{lane}")
        self._shutdown_trigger: Any = None

    def start(self) -> None:
        """Start the writing thread (stopped with the reactor if stop() is never called)."""
        if self._shutdown_trigger is None:
            self._pool.start()
            self._shutdown_trigger = self._reactor.addSystemEventTrigger(
                "during", "shutdown", self._pool.stop)

    def stop(self) -> None:
        """Stop the writing thread, after the write under way if any."""
        if self._shutdown_trigger is not None:
            self._reactor.removeSystemEventTrigger(self._shutdown_trigger)
            self._shutdown_trigger = None
            self._pool.stop()

    def send(self, payload: bytes, context: DeliveryContext) -> defer.Deferred:
        """Write ``payload``; Deferred[DeliveryOutcome] whose response is the file's path."""
        if self._shutdown_trigger is None:
            return defer.fail(RuntimeError(f"{label(SPEC, self.name)}: send() before start()"))
        try:
            fields = name_fields(context, self.name, self._reactor.seconds())
            filename = render(self.template, fields)
        except ValueError as error:
            return defer.fail(DeliveryFailed(f"{label(SPEC, self.name)}: {error}",
                                             retryable=False))
        path = os.path.join(self.directory, filename)
        data = convert_line_endings(payload, self.line_ending)
        written = threads.deferToThreadPool(self._reactor, self._pool, write_atomically,
                                            path, data, self.fsync, file_mode=self.file_mode,
                                            directory_mode=self.directory_mode)
        written.addCallbacks(lambda final: DeliveryOutcome(response=os.fsencode(final),
                                                           detail="written"),
                             self._write_failed, errbackArgs=(path,))
        return written

    def send_batch(self, payloads: list[bytes],
                   contexts: list[DeliveryContext]) -> defer.Deferred:
        """Write several payloads, flushing each file and the directory once; Deferred[list]
        of one DeliveryOutcome per file written, then the failure that stopped the batch if
        any (see engine.interfaces.BatchDestination)."""
        if self._shutdown_trigger is None:
            return defer.fail(RuntimeError(f"{label(SPEC, self.name)}: send() before start()"))
        items: list[tuple[str, bytes]] = []
        refused: list[Exception] = []
        for payload, context in zip(payloads, contexts):
            try:
                fields = name_fields(context, self.name, self._reactor.seconds())
                filename = render(self.template, fields)
            except ValueError as error:
                refused.append(DeliveryFailed(f"{label(SPEC, self.name)}: {error}",
                                              retryable=False))
                break
            items.append((os.path.join(self.directory, filename),
                          convert_line_endings(payload, self.line_ending)))
        written = threads.deferToThreadPool(self._reactor, self._pool, write_batch,
                                            items, self.fsync, file_mode=self.file_mode,
                                            directory_mode=self.directory_mode)
        written.addCallback(self._batch_outcomes, refused)
        return written

    def _batch_outcomes(self, results: list[str | OSError], refused: list) -> list:
        outcomes: list[Any] = []
        for result in results:
            if isinstance(result, OSError):
                outcomes.append(self._describe_os_error(result, result.filename or "?"))
                return outcomes
            outcomes.append(DeliveryOutcome(response=os.fsencode(result), detail="written"))
        return outcomes + refused

    def _describe_os_error(self, error: OSError, path: str) -> DeliveryFailed:
        code = errno.errorcode.get(error.errno, "") if error.errno else ""
        reason = f"[{code}] {error.strerror}" if code else str(error)
        return DeliveryFailed(f"{label(SPEC, self.name)}: cannot write {path}: {reason}",
                              retryable=error.errno not in PERMANENT_ERRNOS)

    def _write_failed(self, failure: Any, path: str) -> Any:
        failure.trap(OSError)
        raise self._describe_os_error(failure.value, path)


def parse_mode(text: Any, option: str, who: str) -> int:
    """Permission bits written in octal (``"0640"``); ValueError naming the option if not.

    Only read and write bits for owner, group and others: a message file is not executable,
    and set-id or sticky bits on an output directory are the operator's business, not ours.
    """
    try:
        mode = int(str(text), 8)
    except ValueError:
        raise ValueError(f'{who}: {option} must be octal permissions such as "0600", '
                         f"got {text!r}") from None
    if mode & ~0o777:
        raise ValueError(f'{who}: {option} must be permissions between 0000 and 0777, '
                         f"got {text!r}")
    return mode


def name_fields(context: DeliveryContext, destination: str, seconds: float) -> dict[str, Any]:
    """The values a file name template may use; ``date`` and ``time`` are UTC at ``seconds``."""
    now = time.gmtime(seconds)
    return {"channel": sanitise(context.channel), "destination": sanitise(destination),
            "message_id": context.message_id, "delivery_id": context.delivery_id,
            "control_id": sanitise(context.control_id),
            "message_type": sanitise(context.message_type),
            "date": time.strftime("%Y%m%d", now), "time": time.strftime("%H%M%S", now)}


def sanitise(value: str | None) -> str:
    """``value`` safe in a file name: characters outside ``[A-Za-z0-9._-]`` become ``_``."""
    if not value:
        return _MISSING
    return "".join(char if char in _SAFE else "_" for char in value)


def check_template(template: str, who: str) -> None:
    """Refuse a file name template that names unknown fields or could leave the directory."""
    if "/" in template or "\\" in template or ".." in template:
        raise ValueError(f'{who}: filename template "{template}" must not contain "/", '
                         '"\\" or "..": files stay in the configured directory')
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(template)
                  if field is not None]
    except ValueError as error:
        raise ValueError(f'{who}: filename template "{template}" is malformed: {error}') from None
    for field in fields:
        if field not in PLACEHOLDERS:
            raise ValueError(f'{who}: unknown placeholder "{{{field}}}" in filename template '
                             f'"{template}"; known: {", ".join(PLACEHOLDERS)}')
    sample = {"channel": "adt", "destination": "lab", "message_id": 1, "delivery_id": 1,
              "control_id": "MSG00001", "message_type": "ADT_A01", "date": "20240101",
              "time": "120000"}
    try:
        render(template, sample)
    except (ValueError, KeyError, IndexError, TypeError) as error:
        raise ValueError(f'{who}: filename template "{template}" cannot be used: '
                         f"{error}") from None


def render(template: str, fields: Mapping[str, Any]) -> str:
    """The file name for ``fields``, leading dots made ``_``; ValueError if not a plain name.

    A dot-file is hidden from the pollers that read the directory (and ``.`` or ``..`` is
    not a file at all), so every leading dot is replaced.
    """
    name = template.format_map(fields)
    if not name or "/" in name or "\\" in name or "\0" in name:
        raise ValueError(f'filename template "{template}" gives an unusable name {name!r}')
    stripped = name.lstrip(".")
    return "_" * (len(name) - len(stripped)) + stripped


def fit_name(name: str, limit: int) -> str:
    """``name`` cut to ``limit`` bytes (UTF-8), keeping its extension and a digest of the
    whole, so that two long names cut alike still differ; ``name`` itself if it fits."""
    encoded = name.encode("utf-8", "surrogateescape")
    if len(encoded) <= limit:
        return name
    stem, extension = os.path.splitext(name)
    if len(extension.encode("utf-8", "surrogateescape")) > _MAX_EXTENSION:
        stem, extension = name, ""
    digest = "-" + hashlib.sha256(encoded).hexdigest()[:12]
    room = limit - len(extension.encode("utf-8", "surrogateescape")) - len(digest)
    head = stem.encode("utf-8", "surrogateescape")[:max(room, 1)]
    return head.decode("utf-8", "ignore") + digest + extension


def name_limit(directory: str) -> int:
    """The longest file name, in bytes, the file system under ``directory`` takes."""
    try:
        return os.pathconf(directory, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        return DEFAULT_NAME_MAX


def convert_line_endings(payload: bytes, ending: bytes) -> bytes:
    """``payload`` with each segment separator (CR, CRLF or LF) written as ``ending``.

    CR is HL7's own separator: asking for it writes the payload byte for byte.
    """
    if ending == b"\r":
        return payload
    segments = payload.replace(b"\r\n", b"\r").replace(b"\n", b"\r").split(b"\r")
    return ending.join(segments)


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
    final = os.path.join(directory, fit_name(filename, limit))
    short = fit_name(filename, max(limit - _TEMPORARY_EXTRA, 1))
    number = next(_TEMPORARY_NUMBERS) % 16**12
    unique = f"{_PROCESS_TOKEN}{os.getpid() % 16**8:08x}{number:012x}"  # 32 hex digits
    return os.path.join(directory, f".{short}.{unique}.tmp"), final


def _write_temporary(temporary: str, data: bytes, file_mode: int, fsync: bool,
                     umask: int | None = None) -> None:
    """Create ``temporary`` exclusively with ``file_mode`` and write ``data``, flushed to
    disk if ``fsync``; removed again if anything fails.

    Plain descriptor calls (no file object: that would add a stat, an ioctl and a seek per
    file). ``umask``: the process's, when the caller knows it; the mode is set again only if
    it takes bits of ``file_mode`` away (unknown: always)."""
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, file_mode)
    try:
        try:
            if umask is None or file_mode & umask:
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


def process_umask() -> int | None:
    """This process's umask as Linux reports it (``/proc/self/status``), or None elsewhere.

    Read rather than set and restored: ``os.umask`` changes it for every thread meanwhile."""
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return None


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
            flush_files([temporary for temporary, _ in staged])
        except OSError as failure:  # nothing of the batch is known to be on disk
            _remove_staged(staged)
            failure.filename = failure.filename or staged[0][1]
            return [failure]
    results: list[str | OSError] = []
    for index, (temporary, final) in enumerate(staged):
        try:
            os.replace(temporary, final)
        except OSError as failure:
            failure.filename = failure.filename or final
            _remove_staged(staged[index:])
            error = failure
            break
        results.append(final)
    if fsync:
        try:
            for directory in sorted({os.path.dirname(path) for path in results}):
                _fsync_directory(directory)
        except OSError as failure:  # nothing of the batch is known to be on disk
            failure.filename = failure.filename or directory
            return [failure]
    return results + ([error] if error is not None else [])


def _stage(items: list[tuple[str, bytes]], file_mode: int,
           directory_mode: int) -> tuple[list[tuple[str, str]], OSError | None]:
    """Write each item under its temporary name, not flushed, until one fails: the
    (temporary, final) paths written, and the error that stopped them if any."""
    staged: list[tuple[str, str]] = []
    limits: dict[str, int] = {}  # per directory: one pathconf per batch, not per file
    umask = process_umask() if len(items) > 1 else None  # once per batch, not per file
    for path, data in items:
        directory = os.path.dirname(path)
        try:
            if directory not in limits:
                make_directory(directory, directory_mode)
                limits[directory] = name_limit(directory)
            temporary, final = temporary_name(path, limits[directory])
            _write_temporary(temporary, data, file_mode, fsync=False, umask=umask)
        except OSError as error:
            error.filename = error.filename or path
            return staged, error
        staged.append((temporary, final))
    return staged, None


def flush_files(paths: list[str]) -> None:
    """Flush the data of the files at ``paths`` to disk.

    On Linux 5.8 or later, one ``syncfs`` of their file system does it for all of them at
    once (it guarantees what an ``fsync`` of each file would, and reports a failed write-back
    since 5.8); elsewhere each file is flushed in turn.
    """
    if _SYNCFS is not None:
        for directory in sorted({os.path.dirname(path) for path in paths}):
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


def _remove_staged(staged: list[tuple[str, str]]) -> None:
    for temporary, _ in staged:
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
