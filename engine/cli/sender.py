"""
The test sender behind ``aiguillage send``: replay HL7 files (or synthetic messages) to an
MLLP listener and report each acknowledgement.

Files are read the way integration engineers keep them: one or several messages per file,
segments ended by CR, LF or CRLF (an editor may have rewritten them), each message starting
with ``MSH``. Anything else (a binary file, a file without MSH) is sent as it is, once, which
is how one tests that the engine refuses it.

test-case-name: tests.cli.test_sender
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from twisted.internet import defer

from mllp.ack import parse_ack
from mllp.client import MLLPClient


def split_messages(data: bytes) -> list[bytes]:
    """The messages in a file's bytes, with CR segment separators.

    Any mix of CR, LF and CRLF ends a segment; blank lines (empty or whitespace only, between
    messages or around them) are dropped. Bytes that do not start with ``MSH`` (leading blank
    lines aside) are returned untouched, as one message, or none when they are all blank.
    """
    if not data.lstrip().startswith(b"MSH"):
        return [data] if data.strip() else []
    segments = data.replace(b"\r\n", b"\r").replace(b"\n", b"\r").split(b"\r")
    messages: list[list[bytes]] = []
    for segment in segments:
        if not segment.strip():
            continue
        if segment.startswith(b"MSH") or not messages:
            messages.append([segment])
        else:
            messages[-1].append(segment)
    return [b"\r".join(message) + b"\r" for message in messages]


def messages_from_files(paths: Iterable[str]) -> Iterator[tuple[str, bytes]]:
    """(label, payload) for every message of every file, in order."""
    for path in paths:
        for index, message in enumerate(split_messages(Path(path).read_bytes()), 1):
            yield f"{path}#{index}", message


@dataclass
class SendReport:
    """What one ``send`` run achieved."""

    accepted: int = 0
    refused: int = 0
    failed: int = 0


@defer.inlineCallbacks
def send_all(client: MLLPClient, messages: Iterable[tuple[str, bytes]],
             on_answer: Callable[[str, bytes | None, str], None]) -> defer.Deferred:
    """Send each message in turn; call ``on_answer(label, ack or None, summary)``.

    Returns (as a Deferred) a :class:`SendReport`. A transport failure is reported for that
    message and the run goes on with the next (the client reconnects with backoff).
    """
    report = SendReport()
    for label, payload in messages:
        try:
            answer = yield client.send(payload)
        except Exception as error:  # every client error is reported the same way
            report.failed += 1
            on_answer(label, None, f"{type(error).__name__}: {error}")
            continue
        try:
            result = parse_ack(answer)
        except Exception as error:
            report.refused += 1
            on_answer(label, answer, f"unreadable ACK: {error}")
            continue
        if result.accepted:
            report.accepted += 1
        else:
            report.refused += 1
        summary = f"{result.code} {result.control_id_echoed}"
        if result.text:
            summary += f" {result.text}"
        if result.error_codes:
            summary += " (ERR " + ",".join(str(c) for c in result.error_codes) + ")"
        on_answer(label, answer, summary)
    return report
