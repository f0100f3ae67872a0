"""SOAP 1.2 envelopes, WS-Addressing, faults and RegistryResponse."""
from __future__ import annotations

import pytest
from lxml import etree

from xds.metadata import errors as codes
from xds.metadata.errors import RegistryError, warning
from xds.metadata.vocabulary import (
    ACTION_PNR, RESPONSE_FAILURE, RESPONSE_SUCCESS, SEVERITY_ERROR, SEVERITY_WARNING,
    response_action,
)
from xds.namespaces import RS, SOAP11, WSA
from xds.safexml import to_bytes
from xds.soap.envelope import (
    ANONYMOUS, SOAPFault, envelope, fault_envelope, parse_envelope, read_fault,
    request_envelope,
)
from xds.soap.response import read_registry_response, registry_response

TO = "http://127.0.0.1:8080/xds/repository"


def test_request_headers_round_trip():
    """If a request envelope is built, then Action (mustUnderstand), a urn:uuid MessageID,
    anonymous ReplyTo and To are there and read back."""
    body = etree.Element("{urn:example}Ping")
    root = request_envelope(ACTION_PNR, body, TO)
    message = parse_envelope(to_bytes(root))
    assert message.action == ACTION_PNR
    assert message.message_id.startswith("urn:uuid:")
    assert message.to == TO
    assert message.body.tag == "{urn:example}Ping"
    assert root.findtext(f".//{{{WSA}}}ReplyTo/{{{WSA}}}Address") == ANONYMOUS


def test_response_relates_to_request():
    """If a response is built for a request, then it carries the …Response action and RelatesTo."""
    root = envelope(response_action(ACTION_PNR), registry_response([]),
                    relates_to="urn:uuid:6d296e90-e5dc-43d0-b455-7c1f3eb35d83")
    message = parse_envelope(to_bytes(root))
    assert message.action == "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-bResponse"
    assert message.relates_to == "urn:uuid:6d296e90-e5dc-43d0-b455-7c1f3eb35d83"


def test_soap11_is_a_version_mismatch():
    """If a SOAP 1.1 envelope arrives, then the fault is VersionMismatch."""
    with pytest.raises(SOAPFault) as caught:
        parse_envelope(f'<e:Envelope xmlns:e="{SOAP11}"><e:Body/></e:Envelope>'.encode())
    assert caught.value.code == "VersionMismatch"


def test_unknown_must_understand_header_is_a_fault():
    """If a header block we do not know is mustUnderstand, then the fault is MustUnderstand."""
    root = request_envelope(ACTION_PNR, etree.Element("x"), TO)
    header = root[0]
    block = etree.SubElement(header, "{urn:example:security}Security")
    block.set("{http://www.w3.org/2003/05/soap-envelope}mustUnderstand", "true")
    with pytest.raises(SOAPFault) as caught:
        parse_envelope(to_bytes(root))
    assert caught.value.code == "MustUnderstand"
    assert "{urn:example:security}Security" in caught.value.reason


@pytest.mark.parametrize("data, fragment", [
    (b"<notsoap/>", "not a SOAP 1.2 Envelope"),
    (b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"/>', "has no Body"),
    (b"<s:Envelope", "not well-formed"),
    (b'<!DOCTYPE s [<!ENTITY x SYSTEM "file:///etc/passwd">]><s/>', "declares a DTD"),
])
def test_bad_envelopes_are_sender_faults(data, fragment):
    """If the bytes are no SOAP 1.2 envelope, then a Sender fault says why."""
    with pytest.raises(SOAPFault) as caught:
        parse_envelope(data)
    assert caught.value.code == "Sender"
    assert fragment in caught.value.reason


def test_fault_round_trip():
    """If a fault is written, then reading its body gives back code, subcode and reason."""
    fault = SOAPFault("Sender", "wrong action", "wsa:ActionNotSupported")
    message = parse_envelope(to_bytes(fault_envelope(fault, relates_to="urn:uuid:1")))
    assert message.relates_to == "urn:uuid:1"
    back = read_fault(message.body)
    assert (back.code, back.subcode, back.reason) == ("Sender", "wsa:ActionNotSupported",
                                                      "wrong action")
    assert read_fault(registry_response([])) is None


def test_registry_response_status_follows_errors():
    """If any error has Error severity, then the status is Failure; warnings alone succeed."""
    success = registry_response([])
    assert success.get("status") == RESPONSE_SUCCESS and len(success) == 0
    warned = registry_response([warning(codes.EXTRA_METADATA_NOT_SAVED, "slot x dropped")])
    assert warned.get("status") == RESPONSE_SUCCESS
    assert warned[0].get("highestSeverity") == SEVERITY_WARNING
    failed = registry_response([
        warning(codes.EXTRA_METADATA_NOT_SAVED, "slot x dropped"),
        RegistryError(codes.PATIENT_ID_DOES_NOT_MATCH, "differs", "Document01")])
    assert failed.get("status") == RESPONSE_FAILURE
    assert failed[0].get("highestSeverity") == SEVERITY_ERROR


def test_registry_response_round_trip():
    """If a RegistryResponse is written and read, then the errors come back in order."""
    errors = [RegistryError(codes.REPOSITORY_METADATA_ERROR, "hash differs", "Document01"),
              warning(codes.EXTRA_METADATA_NOT_SAVED, "slot dropped")]
    holder = etree.Element("{urn:x}Holder")
    holder.append(registry_response(errors))
    response = read_registry_response(holder)
    assert response.errors == errors
    assert not response.succeeded
    with pytest.raises(ValueError, match="holds no rs:RegistryResponse"):
        read_registry_response(etree.Element(f"{{{RS}}}Other"))
