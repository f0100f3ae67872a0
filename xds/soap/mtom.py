"""
MTOM/XOP framing (ITI TF-2 Appendix V §V.9.3): a ``multipart/related``
message whose root part is the SOAP envelope and whose other parts are the
documents, each named by its Content-ID.

Reading is incremental and bounded: :class:`MTOMReader` is fed the HTTP body
chunk by chunk and hands the bytes to python-multipart's streaming parser
(no hand-written MIME splitting). The root part is kept in memory up to
``max_root_bytes``; every other part goes straight to a spooled temporary
file (memory up to ``spool_bytes``, disk past it) while its SHA-1 and size
are computed, so a document is never held twice and its hash is ready when
the part ends. A part or a message over its limit, too many parts, bad
framing, and a body that stops before the closing boundary (a part that
never ends) are refused with :class:`MTOMError`.

Writing streams too: :func:`write_mtom` returns the Content-Type header and
an iterator of chunks that reads each attachment in blocks.

test-case-name: tests.xds.test_mtom
"""
from __future__ import annotations

import functools
import hashlib
import io
import tempfile
import uuid
from dataclasses import dataclass, field
from typing import BinaryIO, Iterator

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

_BLOCK = 64 * 1024
_PLAIN_ENCODINGS = ("", "binary", "8bit", "7bit")
#: application/soap+xml is tolerated for senders that label the root part by its content.
_ROOT_TYPES = ("application/xop+xml", "application/soap+xml")


class MTOMError(ValueError):
    """A multipart/related message that is malformed or over a limit."""


@dataclass(frozen=True)
class MTOMLimits:
    """The bounds a reader enforces; a server sets them from its configuration."""

    max_root_bytes: int = 16 * 1024 * 1024
    max_part_bytes: int = 256 * 1024 * 1024
    max_total_bytes: int = 1024 * 1024 * 1024
    max_parts: int = 1000
    spool_bytes: int = 1024 * 1024


class Attachment:
    """One received attachment: its bytes in a spooled file, their size and SHA-1."""

    def __init__(self, content_id: str, content_type: str, spool_bytes: int):
        self.content_id = content_id
        self.content_type = content_type
        self.size = 0
        self._digest = hashlib.sha1()
        self._file = tempfile.SpooledTemporaryFile(max_size=spool_bytes)

    def write(self, data: bytes) -> None:
        """Append received bytes (the reader calls this)."""
        self._file.write(data)
        self._digest.update(data)
        self.size += len(data)

    @property
    def sha1(self) -> str:
        """The hexadecimal SHA-1 of the bytes received so far."""
        return self._digest.hexdigest()

    def open(self) -> BinaryIO:
        """The bytes as a file positioned at the start (the same file each call)."""
        self._file.seek(0)
        return self._file

    def read_bytes(self) -> bytes:
        """All the bytes at once: only for small documents and tests."""
        return self.open().read()

    def close(self) -> None:
        """Release the spooled file."""
        self._file.close()


@dataclass
class MTOMPackage:
    """A read MTOM message: the root part (the SOAP envelope) and the attachments."""

    root: bytes
    root_content_type: str
    attachments: dict[str, Attachment] = field(default_factory=dict)

    def close(self) -> None:
        """Release every attachment's spooled file (once the documents are stored)."""
        for attachment in self.attachments.values():
            attachment.close()


def content_type_params(header: str) -> tuple[str, dict[str, str]]:
    """The MIME type and lowercased parameters of a Content-Type header value.

    A value without a type/subtype reads as ``text/plain`` (RFC 2045 §5.2).
    """
    mime_type, params = _parsed_content_type(header)
    return mime_type, dict(params)


@functools.lru_cache(maxsize=64)
def _parsed_content_type(header: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """python-multipart's parse of a header (each request's is read by several layers)."""
    mime_type, params = parse_options_header(header.encode("latin-1", "replace"))
    name = mime_type.decode("latin-1")
    return (name if "/" in name else "text/plain",
            tuple((key.decode("latin-1").lower(), value.decode("latin-1"))
                  for key, value in params.items()))


def strip_cid(value: str) -> str:
    """A Content-ID without its angle brackets or ``cid:`` prefix."""
    value = value.strip()
    if value.lower().startswith("cid:"):
        value = value[4:]
    return value.strip("<>")


class MTOMReader:
    """An incremental reader of one multipart/related body; feed, then close."""

    def __init__(self, content_type: str, limits: MTOMLimits = MTOMLimits()):
        mime_type, params = content_type_params(content_type)
        if mime_type != "multipart/related":
            raise MTOMError(f"Content-Type is {mime_type}, not multipart/related")
        if not params.get("boundary"):
            raise MTOMError("multipart/related Content-Type has no boundary parameter")
        self.limits = limits
        self._start = strip_cid(params.get("start", ""))
        self._root: bytearray | None = None
        self._root_type = ""
        self._package_attachments: dict[str, Attachment] = {}
        self._current: Attachment | bytearray | None = None
        self._headers: dict[str, str] = {}
        self._field = bytearray()
        self._value = bytearray()
        self._parts = 0
        self._part_size = 0
        self._ended = False
        self._total = 0
        self._parser = MultipartParser(params["boundary"], self._callbacks())

    def _callbacks(self) -> dict:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda data, start, end: self._field.extend(data[start:end]),
            "on_header_value": lambda data, start, end: self._value.extend(data[start:end]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_end": self._end,
        }

    def feed(self, chunk: bytes) -> None:
        """Parse the next piece of the body; raises :class:`MTOMError` when refused."""
        if self._ended:
            return          # an epilogue after the closing boundary is ignored
        self._total += len(chunk)
        try:
            if self._total > self.limits.max_total_bytes:
                raise MTOMError(f"message is over the {self.limits.max_total_bytes}-byte limit")
            self._parser.write(chunk)
        except MultipartParseError as exc:
            self._discard()
            raise MTOMError(f"malformed multipart body: {exc}") from None
        except MTOMError:
            self._discard()
            raise

    def close(self) -> MTOMPackage:
        """The package, once the closing boundary was seen; else :class:`MTOMError`."""
        if not self._ended:
            self._discard()
            raise MTOMError("multipart body ended before its closing boundary")
        if self._root is None:
            self._discard()
            raise MTOMError(f"no root part (Content-ID <{self._start}>) in the message"
                            if self._start else "multipart message has no part")
        root_type = content_type_params(self._root_type)[0] if self._root_type \
            else "without Content-Type"
        if root_type not in _ROOT_TYPES:
            self._discard()
            raise MTOMError(f"root part is {root_type}, not application/xop+xml")
        return MTOMPackage(bytes(self._root), self._root_type, self._package_attachments)

    def _part_begin(self) -> None:
        self._parts += 1
        if self._parts > self.limits.max_parts:
            raise MTOMError(f"more than {self.limits.max_parts} parts in the message")
        self._headers = {}
        self._part_size = 0

    def _header_end(self) -> None:
        self._headers[bytes(self._field).decode("latin-1").strip().lower()] = \
            bytes(self._value).decode("latin-1").strip()
        self._field.clear()
        self._value.clear()

    def _headers_finished(self) -> None:
        encoding = self._headers.get("content-transfer-encoding", "").lower()
        if encoding not in _PLAIN_ENCODINGS:
            raise MTOMError(f"part {self._parts} uses Content-Transfer-Encoding {encoding};"
                            " MTOM parts are binary")
        content_id = strip_cid(self._headers.get("content-id", ""))
        content_type = self._headers.get("content-type", "")
        is_root = content_id == self._start if self._start else self._root is None
        if is_root and self._root is None:
            self._root = self._current = bytearray()
            self._root_type = content_type
        elif not content_id:
            raise MTOMError(f"part {self._parts} has no Content-ID")
        elif content_id in self._package_attachments:
            raise MTOMError(f"Content-ID <{content_id}> is used by two parts")
        else:
            self._current = Attachment(content_id, content_type or "application/octet-stream",
                                       self.limits.spool_bytes)
            self._package_attachments[content_id] = self._current

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        self._part_size += end - start
        is_root = self._current is self._root
        limit = self.limits.max_root_bytes if is_root else self.limits.max_part_bytes
        if self._part_size > limit:
            raise MTOMError(f"{'root part' if is_root else 'attachment'} {self._parts} is over"
                            f" the {limit}-byte limit")
        if is_root:
            self._root.extend(data[start:end])
        else:
            self._current.write(bytes(data[start:end]))

    def _end(self) -> None:
        self._ended = True

    def _discard(self) -> None:
        for attachment in self._package_attachments.values():
            attachment.close()


def read_mtom(content_type: str, body: bytes | BinaryIO,
              limits: MTOMLimits = MTOMLimits()) -> MTOMPackage:
    """Read a whole body (bytes or a file) in blocks; a convenience over MTOMReader."""
    reader = MTOMReader(content_type, limits)
    stream = io.BytesIO(body) if isinstance(body, (bytes, bytearray)) else body
    for block in iter(lambda: stream.read(_BLOCK), b""):
        reader.feed(block)
    return reader.close()


@dataclass
class OutgoingPart:
    """An attachment to send: its Content-ID (no brackets), type and bytes or file."""

    content_id: str
    content_type: str
    source: bytes | BinaryIO


def new_content_id(domain: str = "aiguillage") -> str:
    """A fresh Content-ID (without angle brackets)."""
    return f"{uuid.uuid4().hex}@{domain}"


def write_mtom(root: bytes, parts: list[OutgoingPart], action: str,
               boundary: str = "") -> tuple[str, Iterator[bytes]]:
    """The Content-Type header and the body chunks of an MTOM message (§V.9.3.2)."""
    boundary = boundary or f"MIMEBoundary_{uuid.uuid4().hex}"
    root_id = new_content_id()
    content_type = (f'multipart/related; boundary="{boundary}"; type="application/xop+xml"; '
                    f'start="<{root_id}>"; start-info="application/soap+xml"; '
                    f'action="{action}"')
    return content_type, _chunks(root, root_id, parts, boundary, action)


def _chunks(root: bytes, root_id: str, parts: list[OutgoingPart], boundary: str,
            action: str) -> Iterator[bytes]:
    delimiter = f"--{boundary}\r\n".encode("ascii")
    yield delimiter
    yield (f'Content-Type: application/xop+xml; charset=UTF-8; type="application/soap+xml";'
           f' action="{action}"\r\nContent-Transfer-Encoding: binary\r\n'
           f"Content-ID: <{root_id}>\r\n\r\n").encode("ascii")
    yield root
    for part in parts:
        yield b"\r\n" + delimiter
        yield (f"Content-Type: {part.content_type}\r\nContent-Transfer-Encoding: binary\r\n"
               f"Content-ID: <{part.content_id}>\r\n\r\n").encode("ascii")
        if isinstance(part.source, (bytes, bytearray)):
            yield bytes(part.source)
        else:
            yield from iter(lambda source=part.source: source.read(_BLOCK), b"")
    yield f"\r\n--{boundary}--\r\n".encode("ascii")
