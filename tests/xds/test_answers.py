"""The Success of a stored submission from a template: the bytes the envelope builder writes;
the endpoints' access line formatted only when it would be seen."""
from __future__ import annotations

import io
import logging

import pytest
from twisted.web import resource, server

from xds.metadata.errors import RegistryError
from xds.metadata.vocabulary import (
    ACTION_PNR, ACTION_REGISTER, ACTION_RETRIEVE, ACTION_STORED_QUERY, RESPONSE_SUCCESS,
    response_action,
)
from xds.safexml import parse_xml, to_bytes
from xds.server.answers import quick_answer, success_envelope
from xds.server.resource import XDSSite
from xds.soap.envelope import envelope, parse_envelope
from xds.soap.framing import read_message
from xds.soap.response import RegistryResponse, read_registry_response, registry_response


@pytest.mark.parametrize("action", [ACTION_PNR, ACTION_REGISTER])
@pytest.mark.parametrize("relates_to", ["urn:uuid:3f0c6a42-5f0e-4c59-a0a4-1f7e2c4d9b11",
                                        "<id & 'odd'>\r\n", "é"])
def test_template_writes_what_the_builder_writes(action, relates_to):
    """If a submission is stored without error, then the templated envelope is byte for byte
    the one built element by element (escaped RelatesTo included)."""
    message_id = "urn:uuid:0b5d7a4e-1c33-4c1d-8f1e-2a9b3c4d5e6f"
    built = to_bytes(envelope(response_action(action), registry_response([], RESPONSE_SUCCESS),
                              message_id=message_id, relates_to=relates_to))
    assert success_envelope(response_action(action), RESPONSE_SUCCESS, message_id,
                            relates_to) == built


@pytest.mark.parametrize("mtom", [True, False])
def test_quick_answer_reads_back(mtom):
    """If the quick answer is read as a client reads it, then it relates to the request and
    says Success."""
    content_type, chunks = quick_answer(ACTION_PNR, RegistryResponse(RESPONSE_SUCCESS),
                                        "urn:uuid:request", mtom)
    incoming = read_message(content_type, io.BytesIO(b"".join(chunks)))
    assert incoming.mtom is mtom
    assert incoming.message.relates_to == "urn:uuid:request"
    assert incoming.message.action == response_action(ACTION_PNR)
    assert read_registry_response(incoming.message.body).succeeded


@pytest.mark.parametrize("action, answer, relates_to", [
    (ACTION_PNR, RegistryResponse(RESPONSE_SUCCESS, [RegistryError(
        "XDSRegistryMetadataError", "sourceId is no OID", severity=
        "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Warning")]), "urn:uuid:r"),
    (ACTION_PNR, RegistryResponse(RESPONSE_SUCCESS), ""),
    (ACTION_STORED_QUERY, parse_xml(b"<a/>"), "urn:uuid:r"),
    (ACTION_RETRIEVE, None, "urn:uuid:r"),
], ids=["with a warning", "no MessageID to relate to", "stored query", "retrieve"])
def test_other_answers_are_built(action, answer, relates_to):
    """If the answer carries errors or warnings, has nothing to relate to, or is no
    submission's, then no template serves it (answer_message builds it)."""
    assert quick_answer(action, answer, relates_to, True) is None


def test_template_parses_as_an_envelope():
    """If the template's bytes are parsed, then they are a SOAP envelope (sanity)."""
    data = success_envelope(response_action(ACTION_PNR), RESPONSE_SUCCESS, "urn:uuid:m",
                            "urn:uuid:r")
    assert parse_envelope(data).message_id == "urn:uuid:m"


@pytest.mark.parametrize("level, written", [(logging.INFO, 1), (logging.WARNING, 0)])
def test_access_line_only_when_it_would_be_seen(monkeypatch, level, written):
    """If the ``twisted`` logger shows INFO, then twisted.web writes each request's access
    line as before; if not, the line is not even formatted."""
    lines = []
    monkeypatch.setattr(server.Site, "log", lambda site, request: lines.append(request))
    logger = logging.getLogger("twisted")
    monkeypatch.setattr(logger, "level", level)
    monkeypatch.setattr(logging.getLogger(), "level", level)
    logger.manager._clear_cache()
    try:
        XDSSite(resource.Resource()).log("a request")
    finally:
        logger.manager._clear_cache()
    assert len(lines) == written
