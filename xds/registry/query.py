"""
ITI-18 Registry Stored Query in the built-in registry: an
``query:AdhocQueryRequest`` in, an ``query:AdhocQueryResponse`` out, with
ObjectRefs or the full objects (LeafClass) as they were registered, each with
its current availability status.

Every refusal is an answer, not an exception: a Failure response carrying the
stored query error codes (``XDSUnknownStoredQuery``,
``XDSStoredQueryMissingParam``, ``XDSStoredQueryParamNumber``,
``XDSResultNotSinglePatient``, ``XDSTooManyResults``).

test-case-name: tests.xds.test_registry_query
"""
from __future__ import annotations

from typing import Any

from lxml import etree

from xds.metadata.errors import MetadataError, RegistryError
from xds.namespaces import QUERY, RIM, RS, qname, rim
from xds.registry.adhoc import (
    LEAF_CLASS, OBJECT_REF, RESULT_NOT_SINGLE_PATIENT, UNKNOWN_STORED_QUERY, Parameters,
    read_adhoc_query_request,
)
from xds.registry.stored_queries import STORED_QUERIES, Found
from xds.safexml import safe_parser
from xds.soap.response import registry_response, status_for

TOO_MANY_RESULTS = "XDSTooManyResults"
DEFAULT_MAX_RESULTS = 10_000


def stored_query(conn: Any, request: etree._Element,
                 max_results: int = DEFAULT_MAX_RESULTS) -> etree._Element:
    """Run the stored query *request* asks for; its AdhocQueryResponse."""
    try:
        read = read_adhoc_query_request(request)
        found = run(conn, read.query_id, Parameters(read.parameters), read.return_type,
                    max_results)
    except MetadataError as refused:
        return adhoc_query_response([], refused.errors)
    return adhoc_query_response(found, [], read.return_type)


def run(conn: Any, query_id: str, params: Parameters, return_type: str = LEAF_CLASS,
        max_results: int = DEFAULT_MAX_RESULTS) -> list[Found]:
    """The objects a stored query finds, or MetadataError with its error code."""
    known = STORED_QUERIES.get(query_id)
    if known is None:
        raise MetadataError([RegistryError(UNKNOWN_STORED_QUERY,
                                           f"stored query {query_id!r} is not supported")])
    name, query = known
    found = query(conn, params)
    if len(found) > max_results:
        raise MetadataError([RegistryError(TOO_MANY_RESULTS,
                                           f"{name} found {len(found)} objects, over the limit"
                                           f" of {max_results}")])
    patients = {item.patient_id for item in found if item.patient_id}
    if return_type == LEAF_CLASS and len(patients) > 1:
        raise MetadataError([RegistryError(RESULT_NOT_SINGLE_PATIENT,
                                           f"{name} found objects of {len(patients)} patients")])
    return found


def adhoc_query_response(found: list[Found], errors: list[RegistryError],
                         return_type: str = LEAF_CLASS) -> etree._Element:
    """The ``query:AdhocQueryResponse`` for *found* objects, or for *errors*."""
    response = etree.Element(qname(QUERY, "AdhocQueryResponse"),
                             nsmap={"query": QUERY, "rim": RIM, "rs": RS},
                             status=status_for(errors))
    if errors:
        response.append(registry_response(errors)[0])
    objects = etree.SubElement(response, rim("RegistryObjectList"))
    for item in found:
        if return_type == OBJECT_REF:
            etree.SubElement(objects, rim("ObjectRef"), id=item.entry_uuid)
            continue
        kept = etree.fromstring(item.xml, safe_parser())
        children = list(kept)
        children[0].set("status", item.status)
        objects.extend(children)
    return response
