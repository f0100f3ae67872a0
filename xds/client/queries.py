"""
The ITI-18 requests a Document Consumer sends: ``query:AdhocQueryRequest`` for FindDocuments
(a patient's documents, by status and type) and GetDocuments (by uniqueId), and the documents
read back from the ``query:AdhocQueryResponse``.

Values are written as the stored query syntax wants them (ITI TF-2 §3.18.4.1.2.3.5): quoted
strings, a doubled quote inside, lists in parentheses; codes as ``code^^scheme``.

test-case-name: tests.xds.test_xds_cli
"""
from __future__ import annotations

from lxml import etree

from xds.metadata.model import DocumentEntry
from xds.metadata.reading import read_submission
from xds.metadata.vocabulary import FIND_DOCUMENTS, GET_DOCUMENTS
from xds.namespaces import QUERY, RIM, qname, rim
from xds.soap.response import RegistryResponse, read_registry_response

LEAF_CLASS = "LeafClass"


def quoted(value: str) -> str:
    """A stored query string value: ``'a'``, a quote inside doubled."""
    return "'" + value.replace("'", "''") + "'"


def adhoc_query_request(query_id: str, parameters: dict[str, str | list[str]],
                        return_type: str = LEAF_CLASS) -> etree._Element:
    """An AdhocQueryRequest; a str value is one quoted value, a list a ``('a','b')`` list."""
    request = etree.Element(qname(QUERY, "AdhocQueryRequest"), nsmap={"query": QUERY, "rim": RIM})
    etree.SubElement(request, qname(QUERY, "ResponseOption"), returnType=return_type,
                     returnComposedObjects="true")
    query = etree.SubElement(request, rim("AdhocQuery"), id=query_id)
    for name, value in parameters.items():
        text = quoted(value) if isinstance(value, str) else \
            "(" + ",".join(quoted(item) for item in value) + ")"
        slot = etree.SubElement(query, rim("Slot"), name=name)
        etree.SubElement(etree.SubElement(slot, rim("ValueList")), rim("Value")).text = text
    return request


def find_documents(patient_id: str, statuses: list[str],
                   type_codes: list[str] = ()) -> etree._Element:
    """FindDocuments of ``patient_id`` (a CX) with these availability statuses and, if
    given, these typeCodes (``code^^scheme``)."""
    parameters: dict[str, str | list[str]] = {"$XDSDocumentEntryPatientId": patient_id,
                                              "$XDSDocumentEntryStatus": list(statuses)}
    if type_codes:
        parameters["$XDSDocumentEntryTypeCode"] = list(type_codes)
    return adhoc_query_request(FIND_DOCUMENTS, parameters)


def get_documents(unique_ids: list[str]) -> etree._Element:
    """GetDocuments by DocumentEntry uniqueId."""
    return adhoc_query_request(GET_DOCUMENTS, {"$XDSDocumentEntryUniqueId": list(unique_ids)})


def read_found_documents(response: etree._Element) -> tuple[RegistryResponse,
                                                            list[DocumentEntry]]:
    """The status, errors and DocumentEntries of an AdhocQueryResponse (LeafClass)."""
    status = read_registry_response(response)
    if response.find(rim("RegistryObjectList")) is None:
        return status, []
    return status, read_submission(response.find(rim("RegistryObjectList"))).documents


__all__ = ["adhoc_query_request", "find_documents", "get_documents", "quoted",
           "read_found_documents"]
