"""
The ITI-43 bodies: ``xds:RetrieveDocumentSetRequest`` and its response,
with documents as ``xop:Include`` (MTOM) or inline base64, both ways.

A response document keyed by (repository, document uniqueId) is read back
with the same :func:`xds.soap.documents.read_documents` rules as ITI-41, so
that its size and SHA-1 are known without a second copy.

test-case-name: tests.xds.test_http_server
"""
from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import BinaryIO, Mapping

from lxml import etree

from xds.namespaces import RS, XDS, XOP, qname
from xds.soap.documents import DEFAULT_MAX_INLINE_BYTES, InlineDocument, read_documents
from xds.soap.mtom import Attachment, OutgoingPart, new_content_id
from xds.soap.response import RegistryResponse, read_registry_response, registry_response

REQUEST = qname(XDS, "RetrieveDocumentSetRequest")
RESPONSE = qname(XDS, "RetrieveDocumentSetResponse")
_DOCUMENT_REQUEST = qname(XDS, "DocumentRequest")
_DOCUMENT_RESPONSE = qname(XDS, "DocumentResponse")


@dataclass(frozen=True)
class DocumentReference:
    """Which document to retrieve: repository and document uniqueIds (and community)."""

    repository_unique_id: str
    document_unique_id: str
    home_community_id: str = ""


def _child(parent: etree._Element, local: str, text: str) -> None:
    if text:
        etree.SubElement(parent, qname(XDS, local)).text = text


def retrieve_request(references: list[DocumentReference]) -> etree._Element:
    """The ITI-43 request body for *references*."""
    request = etree.Element(REQUEST, nsmap={"xds": XDS})
    for reference in references:
        element = etree.SubElement(request, _DOCUMENT_REQUEST)
        _child(element, "HomeCommunityId", reference.home_community_id)
        _child(element, "RepositoryUniqueId", reference.repository_unique_id)
        _child(element, "DocumentUniqueId", reference.document_unique_id)
    return request


def read_retrieve_request(request: etree._Element) -> list[DocumentReference]:
    """The references a ``xds:RetrieveDocumentSetRequest`` asks for."""
    return [DocumentReference((element.findtext(qname(XDS, "RepositoryUniqueId")) or "").strip(),
                              (element.findtext(qname(XDS, "DocumentUniqueId")) or "").strip(),
                              (element.findtext(qname(XDS, "HomeCommunityId")) or "").strip())
            for element in request.iter(_DOCUMENT_REQUEST)]


def retrieve_response(response: RegistryResponse, documents: list, *, optimise: bool
                      ) -> tuple[etree._Element, list[OutgoingPart]]:
    """The ITI-43 response body and its MTOM parts (none when not *optimise*).

    *documents* are :class:`xds.server.handler.RetrievedDocument`-like objects
    (uniqueIds, ``mime_type``, ``source`` as bytes or a file).
    """
    body = etree.Element(RESPONSE, nsmap={"xds": XDS, "rs": RS, "xop": XOP})
    body.append(registry_response(response.errors, response.status))
    parts = []
    for document in documents:
        element = etree.SubElement(body, _DOCUMENT_RESPONSE)
        _child(element, "HomeCommunityId", document.home_community_id)
        _child(element, "RepositoryUniqueId", document.repository_unique_id)
        _child(element, "DocumentUniqueId", document.document_unique_id)
        _child(element, "mimeType", document.mime_type)
        holder = etree.SubElement(element, qname(XDS, "Document"))
        if optimise:
            content_id = new_content_id()
            etree.SubElement(holder, qname(XOP, "Include"), href=f"cid:{content_id}")
            parts.append(OutgoingPart(content_id, document.mime_type, document.source))
        else:
            holder.text = base64.b64encode(_bytes(document.source)).decode("ascii")
    return body, parts


def _bytes(source: bytes | BinaryIO) -> bytes:
    return bytes(source) if isinstance(source, (bytes, bytearray)) else source.read()


def read_retrieve_response(body: etree._Element, attachments: Mapping[str, Attachment],
                           max_inline_bytes: int = DEFAULT_MAX_INLINE_BYTES
                           ) -> tuple[RegistryResponse, dict[str, Attachment | InlineDocument]]:
    """The status and, per document uniqueId, the content of an ITI-43 response."""
    if body.tag != RESPONSE:
        raise ValueError(f"{body.tag} is not a RetrieveDocumentSetResponse")
    for element in body.iter(_DOCUMENT_RESPONSE):
        holder = element.find(qname(XDS, "Document"))
        if holder is not None:
            holder.set("id", (element.findtext(qname(XDS, "DocumentUniqueId")) or "").strip())
    return (read_registry_response(body),
            read_documents(body, attachments, max_inline_bytes))
