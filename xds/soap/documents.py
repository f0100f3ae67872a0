"""
The document parts of ITI-41 (``xds:ProvideAndRegisterDocumentSetRequest``):
``xds:Document`` elements, matched to their DocumentEntry by ``id``, that
hold either inline base64 or an ``xop:Include`` pointing at an MTOM
attachment (ITI TF-2 §V.8.2: a receiver accepts both, a sender may optimise
none, some or all). ITI-43 responses, whose documents are keyed by
uniqueId instead, come with the retrieve transaction.

Reading returns, per document id, an object with ``size`` and ``sha1`` (see
:class:`xds.metadata.content.DocumentContent`): the MTOM attachment itself
when optimised, an :class:`InlineDocument` when base64 was inline, so that
hash and size are checked without copying attachment bytes.

test-case-name: tests.xds.test_mtom
"""
from __future__ import annotations

import base64
import binascii
import hashlib
from typing import BinaryIO, Callable, Mapping
from urllib.parse import unquote

from lxml import etree

from xds.metadata.model import Submission
from xds.metadata.reading import read_submission
from xds.metadata.writing import new_uuid, submit_objects_request, submit_objects_request_bytes
from xds.metadata.xmltext import escape_attribute
from xds.namespaces import XDS, XOP, qname
from xds.soap.mtom import Attachment, MTOMError, OutgoingPart, new_content_id

_DOCUMENT = qname(XDS, "Document")
_INCLUDE = qname(XOP, "Include")
DEFAULT_MAX_INLINE_BYTES = 64 * 1024 * 1024


class InlineDocument:
    """A document that arrived as inline base64, decoded."""

    def __init__(self, data: bytes):
        self.data = data
        self.size = len(data)
        self.sha1 = hashlib.sha1(data).hexdigest()

    def read_bytes(self) -> bytes:
        """The document's bytes."""
        return self.data


def read_documents(holder: etree._Element, attachments: Mapping[str, Attachment],
                   max_inline_bytes: int = DEFAULT_MAX_INLINE_BYTES
                   ) -> dict[str, Attachment | InlineDocument]:
    """Document id -> content for each ``xds:Document`` child of *holder*.

    Raises :class:`MTOMError` for an include that names no attachment, base64
    that does not decode, a document over *max_inline_bytes*, or two
    documents with one id.
    """
    documents: dict[str, Attachment | InlineDocument] = {}
    for element in holder.iter(_DOCUMENT):
        document_id = element.get("id", "")
        if document_id in documents:
            raise MTOMError(f"two xds:Document elements have the id {document_id!r}")
        include = element.find(_INCLUDE)
        if include is not None:
            documents[document_id] = _attachment(include, attachments, document_id)
        else:
            documents[document_id] = _inline(element.text or "", document_id, max_inline_bytes)
    return documents


def _attachment(include: etree._Element, attachments: Mapping[str, Attachment],
                document_id: str) -> Attachment:
    href = include.get("href", "")
    if not href.lower().startswith("cid:"):
        raise MTOMError(f"Document {document_id!r}: xop:Include href {href!r} is not a cid: URL")
    content_id = unquote(href[4:])
    if content_id not in attachments:
        raise MTOMError(f"Document {document_id!r}: no MIME part has Content-ID <{content_id}>")
    return attachments[content_id]


def _inline(text: str, document_id: str, max_bytes: int) -> InlineDocument:
    compact = "".join(text.split())
    if len(compact) // 4 * 3 > max_bytes:
        raise MTOMError(f"Document {document_id!r} is over the {max_bytes}-byte limit")
    try:
        return InlineDocument(base64.b64decode(compact, validate=True))
    except binascii.Error as exc:
        raise MTOMError(f"Document {document_id!r} is not valid base64: {exc}") from None


def read_provide_and_register(request: etree._Element, attachments: Mapping[str, Attachment],
                              max_inline_bytes: int = DEFAULT_MAX_INLINE_BYTES
                              ) -> tuple[Submission, dict[str, Attachment | InlineDocument]]:
    """The submission and the documents of a ProvideAndRegisterDocumentSetRequest."""
    if request.tag != qname(XDS, "ProvideAndRegisterDocumentSetRequest"):
        raise MTOMError(f"{request.tag} is not a ProvideAndRegisterDocumentSetRequest")
    return read_submission(request), read_documents(request, attachments, max_inline_bytes)


def provide_and_register_bytes(submission: Submission, documents: Mapping[str, bytes | BinaryIO],
                               *, optimise: bool = True, new_id: Callable[[], str] = new_uuid,
                               new_part_id: Callable[[], str] = new_content_id
                               ) -> tuple[bytes, list[OutgoingPart]]:
    """:func:`provide_and_register_request` written as text: what ``etree.tostring`` of
    that element gives (``encoding="UTF-8"``), without making the elements."""
    mime_types = {entry.entry_uuid: entry.mime_type for entry in submission.documents}
    pieces = [_REQUEST_OPEN, submit_objects_request_bytes(submission, new_id)]
    parts = []
    for document_id, source in documents.items():
        opening = f'<xds:Document id="{escape_attribute(document_id)}">'.encode("utf-8")
        if optimise:
            content_id = new_part_id()
            pieces.append(opening + f'<xop:Include href="cid:{escape_attribute(content_id)}"/>'
                          .encode("utf-8") + b"</xds:Document>")
            mime_type = mime_types.get(document_id) or "application/octet-stream"
            parts.append(OutgoingPart(content_id, mime_type, source))
        else:  # an empty document too has both tags (lxml's text "", not None)
            pieces += (opening, base64.b64encode(source), b"</xds:Document>")
    pieces.append(b"</xds:ProvideAndRegisterDocumentSetRequest>")
    return b"".join(pieces), parts


_REQUEST_OPEN = (f'<xds:ProvideAndRegisterDocumentSetRequest xmlns:xds="{XDS}"'
                 f' xmlns:xop="{XOP}">').encode("ascii")


def provide_and_register_request(submission: Submission, documents: Mapping[str, bytes | BinaryIO],
                                 *, optimise: bool = True, new_id: Callable[[], str] = new_uuid,
                                 new_part_id: Callable[[], str] = new_content_id
                                 ) -> tuple[etree._Element, list[OutgoingPart]]:
    """The ITI-41 body for *submission* and its documents (by DocumentEntry id).

    With *optimise* each document becomes an ``xop:Include`` and an
    :class:`OutgoingPart` to send with :func:`xds.soap.mtom.write_mtom`;
    without it, documents (which must then be bytes) are inline base64.
    Each part's Content-Type is its DocumentEntry's mimeType.
    """
    mime_types = {entry.entry_uuid: entry.mime_type for entry in submission.documents}
    request = etree.Element(qname(XDS, "ProvideAndRegisterDocumentSetRequest"),
                            nsmap={"xds": XDS, "xop": XOP})
    request.append(submit_objects_request(submission, new_id))
    parts = []
    for document_id, source in documents.items():
        element = etree.SubElement(request, _DOCUMENT, id=document_id)
        if optimise:
            content_id = new_part_id()
            etree.SubElement(element, _INCLUDE, href=f"cid:{content_id}")
            mime_type = mime_types.get(document_id) or "application/octet-stream"
            parts.append(OutgoingPart(content_id, mime_type, source))
        else:
            element.text = base64.b64encode(source).decode("ascii")
    return request, parts
