"""
ITI-43 Retrieve Document Set from the built-in repository: a
``xds:RetrieveDocumentSetRequest`` in, a ``xds:RetrieveDocumentSetResponse``
and its MTOM parts out (one ``xop:Include`` per document, or inline base64).

A document this repository does not hold is ``XDSDocumentUniqueIdError``, a
request for another repository ``XDSUnknownRepositoryId``; when some
documents are found and some not, the status is PartialSuccess and the found
ones are returned (ITI TF-2 §3.43.4.2.3).

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


def retrieve(conn: Any, request: etree._Element, repository_unique_id: str, *,
             optimise: bool = True) -> tuple[etree._Element, list[OutgoingPart]]:
    """The response to *request* and the parts to send with it (none unless *optimise*)."""
    try:
        wanted = read_retrieve_request(request)
    except MetadataError as refused:
        return _response(refused.errors, RESPONSE_FAILURE), []
    ours = [item.document_unique_id for item in wanted
            if item.repository_unique_id == repository_unique_id]
    table = tables.documents
    rows = {row.unique_id: row for row in conn.execute(
        select(table.c.unique_id, table.c.mime_type, table.c.content)
        .where(table.c.unique_id.in_(ours)))} if ours else {}
    errors = [_missing(item, repository_unique_id) for item in wanted
              if item.repository_unique_id != repository_unique_id
              or item.document_unique_id not in rows]
    found = [item for item in wanted if item.document_unique_id in rows
             and item.repository_unique_id == repository_unique_id]
    status = (RESPONSE_SUCCESS if not errors else
              RESPONSE_PARTIAL_SUCCESS if found else RESPONSE_FAILURE)
    response = _response(errors, status)
    parts = [_append_document(response, item, rows[item.document_unique_id], optimise)
             for item in found]
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


def _append_document(response: etree._Element, item: DocumentRequest, row: Any,
                     optimise: bool) -> OutgoingPart | None:
    element = etree.SubElement(response, qname(XDS, "DocumentResponse"))
    if item.home_community_id:
        etree.SubElement(element, qname(XDS, "HomeCommunityId")).text = item.home_community_id
    etree.SubElement(element, qname(XDS, "RepositoryUniqueId")).text = item.repository_unique_id
    etree.SubElement(element, qname(XDS, "DocumentUniqueId")).text = item.document_unique_id
    etree.SubElement(element, qname(XDS, "mimeType")).text = row.mime_type
    document = etree.SubElement(element, qname(XDS, "Document"))
    if not optimise:
        document.text = base64.b64encode(row.content).decode("ascii")
        return None
    content_id = new_content_id()
    etree.SubElement(document, qname(XOP, "Include"), href=f"cid:{content_id}")
    return OutgoingPart(content_id, row.mime_type, bytes(row.content))
