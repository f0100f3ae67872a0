"""
``rs:RegistryResponse``: building it from a RegistryError list, and reading
it back (ITI TF-3 §4.2.4).

The status follows from the errors: Failure if any has Error severity,
Success otherwise (warnings ride along); PartialSuccess is for the
transactions that allow it (ITI-18, ITI-43), chosen by the caller.

test-case-name: tests.xds.test_soap
"""
from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

from xds.metadata.errors import RegistryError
from xds.metadata.vocabulary import (
    RESPONSE_FAILURE, RESPONSE_SUCCESS, SEVERITY_ERROR, SEVERITY_WARNING,
)
from xds.namespaces import QUERY, RS, qname


@dataclass
class RegistryResponse:
    """A read RegistryResponse: its status and its errors and warnings."""

    status: str
    errors: list[RegistryError] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        """True when the status is Success."""
        return self.status == RESPONSE_SUCCESS


def status_for(errors: list[RegistryError]) -> str:
    """Failure if any error has Error severity, else Success."""
    return RESPONSE_FAILURE if any(error.is_error for error in errors) else RESPONSE_SUCCESS


def describe_errors(errors: list[RegistryError]) -> str:
    """``XDSRegistryMetadataError: sourceId is missing (at SubmissionSet01); …``: the
    errors of a response as one line, for logs and stored messages."""
    return "; ".join(f"{error.error_code}: {error.code_context}"
                     + (f" (at {error.location})" if error.location else "")
                     for error in errors)


def registry_response(errors: list[RegistryError], status: str = "") -> etree._Element:
    """The ``rs:RegistryResponse`` for *errors* (status derived unless given)."""
    response = etree.Element(qname(RS, "RegistryResponse"), nsmap={"rs": RS},
                             status=status or status_for(errors))
    if errors:
        error_list = etree.SubElement(response, qname(RS, "RegistryErrorList"))
        error_list.set("highestSeverity", SEVERITY_ERROR if any(e.is_error for e in errors)
                       else SEVERITY_WARNING)
        for error in errors:
            element = etree.SubElement(error_list, qname(RS, "RegistryError"),
                                       errorCode=error.error_code,
                                       codeContext=error.code_context, severity=error.severity)
            if error.location:
                element.set("location", error.location)
    return response


def read_registry_response(element: etree._Element) -> RegistryResponse:
    """Read an ``rs:RegistryResponse`` or a ``query:AdhocQueryResponse`` (which extends it),
    or any element holding one as first RS child."""
    if element.tag not in (qname(RS, "RegistryResponse"), qname(QUERY, "AdhocQueryResponse")):
        found = element.find(qname(RS, "RegistryResponse"))
        if found is None:
            raise ValueError(f"{element.tag} is not and holds no rs:RegistryResponse")
        element = found
    errors = [
        RegistryError(error.get("errorCode", ""), error.get("codeContext", ""),
                      error.get("location"), error.get("severity", SEVERITY_ERROR))
        for error in element.iterfind(f"{qname(RS, 'RegistryErrorList')}/{qname(RS, 'RegistryError')}")
    ]
    return RegistryResponse(element.get("status", ""), errors)
