"""
The ``file`` destination: write each message to its own file in a directory.

Files are how many laboratory and archiving systems still pick up HL7, usually by polling a
directory. Two things matter to them: never to see half a file, and never to lose one that
was reported written. So each message is written under a temporary dot-name in the target
directory, flushed to disk, renamed over its final name (atomic on POSIX) and the directory
entry itself flushed; only then is the delivery reported SENT. Rewriting the same message
after a crash replaces the same file, which keeps at-least-once delivery harmless. A batch
writes all its files first and flushes them together, then renames them and flushes the
directory once: one journal commit for the batch rather than one per file. The writes are
in :mod:`channels.file_writes` (on Linux, a batch's files are anonymous until flushed, then
linked under their names: :mod:`channels.file_unnamed`), the names in
:mod:`channels.file_names`.

Disk I/O never runs on the reactor: each destination instance (one per lane) owns a thread
(:mod:`channels.file_thread`), so a slow or hung mount stalls its own lane and nothing else.

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

import errno
import os
from typing import Any, Mapping

from twisted.internet import defer

from channels import file_unnamed
from channels.file_names import DEFAULT_TEMPLATE, PLACEHOLDERS, FileNamer, check_template
from channels.file_thread import WritingThread
from channels.file_writes import write_atomically, write_batch
from channels.options import label, resolve
from engine.interfaces import (
    ConnectorSpec, DeliveryContext, DeliveryFailed, DeliveryOutcome, OptionSpec)

LINE_ENDINGS = {"cr": b"\r", "lf": b"\n", "crlf": b"\r\n"}
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
        self._namer = FileNamer(self.template, name)
        # the directory with its separator: a path is this and a rendered name (never "/")
        self._prefix = os.path.join(self.directory, "")
        self._reactor = reactor
        self._thread = WritingThread(reactor, f"file-destination-{channel}-{name}-{lane}")
        self._shutdown_trigger: Any = None

    def start(self) -> None:
        """Start the writing thread (stopped with the reactor if stop() is never called)."""
        if self._shutdown_trigger is None:
            self._thread.start()
            self._shutdown_trigger = self._reactor.addSystemEventTrigger(
                "during", "shutdown", self._thread.stop)

    def stop(self) -> None:
        """Stop the writing thread, after the write under way if any."""
        if self._shutdown_trigger is not None:
            self._reactor.removeSystemEventTrigger(self._shutdown_trigger)
            self._shutdown_trigger = None
            self._thread.stop()

    def send(self, payload: bytes, context: DeliveryContext) -> defer.Deferred:
        """Write ``payload``; Deferred[DeliveryOutcome] whose response is the file's path."""
        if self._shutdown_trigger is None:
            return defer.fail(RuntimeError(f"{label(SPEC, self.name)}: send() before start()"))
        try:
            path = self._prefix + self._namer.name(context, self._reactor.seconds())
        except ValueError as error:
            return defer.fail(DeliveryFailed(f"{label(SPEC, self.name)}: {error}",
                                             retryable=False))
        data = convert_line_endings(payload, self.line_ending)
        written = self._thread.call(write_atomically, path, data, self.fsync,
                                    file_mode=self.file_mode,
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
        name, prefix, ending = self._namer.name, self._prefix, self.line_ending
        now = self._reactor.seconds()  # one instant for the batch's dates and times
        for payload, context in zip(payloads, contexts):
            try:
                path = prefix + name(context, now)
            except ValueError as error:
                refused.append(DeliveryFailed(f"{label(SPEC, self.name)}: {error}",
                                              retryable=False))
                break
            items.append((path, convert_line_endings(payload, ending)))
        write = file_unnamed.write_batch if file_unnamed.usable(self.fsync) else write_batch
        written = self._thread.call(write, items, self.fsync, file_mode=self.file_mode,
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


def convert_line_endings(payload: bytes, ending: bytes) -> bytes:
    """``payload`` with each segment separator (CR, CRLF or LF) written as ``ending``.

    CR is HL7's own separator: asking for it writes the payload byte for byte.
    """
    if ending == b"\r":
        return payload
    segments = payload.replace(b"\r\n", b"\r").replace(b"\n", b"\r").split(b"\r")
    return ending.join(segments)
