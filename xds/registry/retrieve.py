"""
ITI-43 Retrieve Document Set from the built-in repository: a
``xds:RetrieveDocumentSetRequest`` in, a ``xds:RetrieveDocumentSetResponse``
and its MTOM parts out (one ``xop:Include`` per document, or inline base64).

A document this repository does not hold is ``XDSDocumentUniqueIdError``, a
request for another repository ``XDSUnknownRepositoryId``; when some
documents are found and some not, the status is PartialSuccess and the found
ones are returned (ITI TF-2 §3.43.4.2.3). :func:`retrieve_documents` gives
what was found as data (the fields of ``xds.server.handler.RetrievedDocument``)
for a server that writes the answer itself; :func:`retrieve` writes it.

test-case-name: tests.xds.test_registry_retrieve
"""
from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from lxml import etree
from sqlalchemy import select

from xds.metadata import errors as codes
from xds.metadata.errors import MetadataError, RegistryError
from xds.metadata.vocabulary import RESPONSE_FAILURE, RESPONSE_PARTIAL_SUCCESS, RESPONSE_SUCCESS
from xds.namespaces import RS, XDS, XOP, qname
from xds.registry import tables
from xds.soap.mtom import OutgoingPart, new_content_id
from xds.soap.response import registry_response

DOCUMENT_UNIQUE_ID_ERROR = "XDSDocumentUniqueIdError"
UNKNOWN_REPOSITORY_ID = "XDSUnknownRepositoryId"


@dataclass(frozen=True)
class DocumentRequest:
    """One ``xds:DocumentRequest``."""

    repository_unique_id: str
    document_unique_id: str
    home_community_id: str = ""


def _text(element: etree._Element, local: str) -> str:
    return (element.findtext(qname(XDS, local)) or "").strip()


def read_retrieve_request(element: etree._Element) -> list[DocumentRequest]:
    """The document requests of a RetrieveDocumentSetRequest, or MetadataError."""
    if element.tag != qname(XDS, "RetrieveDocumentSetRequest"):
        raise MetadataError([RegistryError(codes.REPOSITORY_ERROR,
                                           f"{element.tag} is not a RetrieveDocumentSetRequest")])
    requests = [DocumentRequest(_text(item, "RepositoryUniqueId"),
                                _text(item, "DocumentUniqueId"), _text(item, "HomeCommunityId"))
                for item in element.iterfind(qname(XDS, "DocumentRequest"))]
    if not requests:
        raise MetadataError([RegistryError(codes.REPOSITORY_ERROR,
                                           "the RetrieveDocumentSetRequest asks for no document")])
    return requests


@dataclass(frozen=True)
class FoundDocument:
    """A document the repository holds, as an ITI-43 answer carries it."""

    repository_unique_id: str
    document_unique_id: str
    mime_type: str
    source: bytes
    home_community_id: str = ""


@dataclass(frozen=True)
class RetrieveResult:
    """What a retrieve found: the response status, its errors, the documents."""

    status: str
    errors: list[RegistryError]
    documents: list[FoundDocument]


def retrieve_documents(conn: Any, request: etree._Element,
                       repository_unique_id: str) -> RetrieveResult:
    """The documents *request* asks of this repository, and the errors for the others."""
    try:
        wanted = read_retrieve_request(request)
    except MetadataError as refused:
        return RetrieveResult(RESPONSE_FAILURE, refused.errors, [])
    ours = [item.document_unique_id for item in wanted
            if item.repository_unique_id == repository_unique_id]
    table = tables.documents
    rows = {row.unique_id: row for row in conn.execute(
        select(table.c.unique_id, table.c.mime_type, table.c.content)
        .where(table.c.unique_id.in_(ours)))} if ours else {}
    found = [FoundDocument(item.repository_unique_id, item.document_unique_id,
                           rows[item.document_unique_id].mime_type,
                           bytes(rows[item.document_unique_id].content), item.home_community_id)
             for item in wanted if item.repository_unique_id == repository_unique_id
             and item.document_unique_id in rows]
    errors = [_missing(item, repository_unique_id) for item in wanted
              if item.repository_unique_id != repository_unique_id
              or item.document_unique_id not in rows]
    status = (RESPONSE_SUCCESS if not errors else
              RESPONSE_PARTIAL_SUCCESS if found else RESPONSE_FAILURE)
    return RetrieveResult(status, errors, found)


def retrieve(conn: Any, request: etree._Element, repository_unique_id: str, *,
             optimise: bool = True) -> tuple[etree._Element, list[OutgoingPart]]:
    """The response to *request* and the parts to send with it (none unless *optimise*)."""
    result = retrieve_documents(conn, request, repository_unique_id)
    response = _response(result.errors, result.status)
    parts = [_append_document(response, document, optimise) for document in result.documents]
    return response, [part for part in parts if part is not None]


def _missing(item: DocumentRequest, repository_unique_id: str) -> RegistryError:
    if item.repository_unique_id != repository_unique_id:
        return RegistryError(UNKNOWN_REPOSITORY_ID,
                             f"repository {item.repository_unique_id!r} is not this one"
                             f" ({repository_unique_id})", item.document_unique_id)
    return RegistryError(DOCUMENT_UNIQUE_ID_ERROR,
                         f"document {item.document_unique_id!r} is not in repository"
                         f" {repository_unique_id}", item.document_unique_id)


def _response(errors: list[RegistryError], status: str) -> etree._Element:
    response = etree.Element(qname(XDS, "RetrieveDocumentSetResponse"),
                             nsmap={"xds": XDS, "rs": RS, "xop": XOP})
    response.append(registry_response(errors, status))
    return response


def _append_document(response: etree._Element, document: FoundDocument,
                     optimise: bool) -> OutgoingPart | None:
    element = etree.SubElement(response, qname(XDS, "DocumentResponse"))
    if document.home_community_id:
        etree.SubElement(element, qname(XDS, "HomeCommunityId")).text = (
            document.home_community_id)
    etree.SubElement(element, qname(XDS, "RepositoryUniqueId")).text = (
        document.repository_unique_id)
    etree.SubElement(element, qname(XDS, "DocumentUniqueId")).text = document.document_unique_id
    etree.SubElement(element, qname(XDS, "mimeType")).text = document.mime_type
    holder = etree.SubElement(element, qname(XDS, "Document"))
    if not optimise:
        holder.text = base64.b64encode(document.source).decode("ascii")
        return None
    content_id = new_content_id()
    etree.SubElement(holder, qname(XOP, "Include"), href=f"cid:{content_id}")
    return OutgoingPart(content_id, document.mime_type, document.source)
