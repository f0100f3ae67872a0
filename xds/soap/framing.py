"""
One SOAP message on HTTP, in either form IHE allows: inline
(``application/soap+xml``, documents as base64) or MTOM
(``multipart/related``, documents as XOP attachments). Servers read requests
and write responses with it, clients the reverse, so that both forms are
handled once.

:func:`read_message` blocks (it parses XML and reads files): call it off the
reactor thread. :func:`write_message` returns the Content-Type and an
iterator of chunks that reads attachments in blocks, so a large document is
never joined into one string.

test-case-name: tests.xds.test_http_server
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import BinaryIO, Iterator

from lxml import etree

from xds.safexml import DEFAULT_MAX_BYTES, to_bytes
from xds.soap.envelope import SOAPFault, SOAPMessage, parse_envelope
from xds.soap.mtom import (
    Attachment, MTOMError, MTOMLimits, OutgoingPart, content_type_params, read_mtom, write_mtom,
)

_INLINE_TYPES = ("application/soap+xml", "text/xml")


@dataclass
class Incoming:
    """A read message: its envelope, whether it came as MTOM, and its attachments."""

    message: SOAPMessage
    mtom: bool
    attachments: dict[str, Attachment] = field(default_factory=dict)

    def close(self) -> None:
        """Release the attachments' spooled files."""
        for attachment in self.attachments.values():
            attachment.close()


def is_mtom(content_type: str) -> bool:
    """True when a Content-Type announces an MTOM (multipart/related) message."""
    return bool(content_type) and content_type_params(content_type)[0] == "multipart/related"


def read_message(content_type: str, body: BinaryIO, *, max_xml_bytes: int = DEFAULT_MAX_BYTES,
                 mtom_limits: MTOMLimits = MTOMLimits()) -> Incoming:
    """Read an HTTP body (a file) into an :class:`Incoming`, or raise SOAPFault (blocking)."""
    mime_type = content_type_params(content_type)[0] if content_type else "(none)"
    attachments: dict[str, Attachment] = {}
    if mime_type == "multipart/related":
        try:
            package = read_mtom(content_type, body, mtom_limits)
        except MTOMError as exc:
            raise SOAPFault("Sender", f"MTOM message refused: {exc}") from None
        root, attachments = package.root, package.attachments
    elif mime_type in _INLINE_TYPES:
        root = body.read(max_xml_bytes + 1)
    else:
        raise SOAPFault("Sender", f"Content-Type {mime_type} is neither application/soap+xml"
                        " nor multipart/related (MTOM)")
    try:
        message = parse_envelope(root, max_bytes=max_xml_bytes)
    except SOAPFault:
        for attachment in attachments.values():
            attachment.close()
        raise
    return Incoming(message, mime_type == "multipart/related", attachments)


def write_message(envelope: etree._Element, parts: list[OutgoingPart], action: str,
                  mtom: bool) -> tuple[str, Iterator[bytes]]:
    """The Content-Type and body chunks of *envelope*, as MTOM or inline.

    Inline messages may carry no parts: their documents are base64 in the XML.
    """
    return write_envelope_bytes(to_bytes(envelope), parts, action, mtom)


def write_envelope_bytes(data: bytes, parts: list[OutgoingPart], action: str,
                         mtom: bool) -> tuple[str, Iterator[bytes]]:
    """:func:`write_message` of an envelope already serialised (*data*)."""
    if mtom:
        return write_mtom(data, parts, action)
    if parts:
        raise ValueError("an inline SOAP message carries its documents as base64, not parts")
    return f'application/soap+xml; charset=UTF-8; action="{action}"', iter((data,))
