"""ITI-43 on the built-in repository, on SQLite and PostgreSQL: a document provided over MTOM
is retrieved byte for byte over MTOM; unknown documents and repositories, PartialSuccess;
responses valid against the XDS.b schema."""
from __future__ import annotations

import hashlib

import pytest
from lxml import etree

from tests.xds import builders
from tests.xds.registry_support import REPOSITORY, sample_body
from tests.xds.standards import assert_valid
from xds.metadata.vocabulary import (
    ACTION_PNR, ACTION_RETRIEVE, RESPONSE_FAILURE, RESPONSE_PARTIAL_SUCCESS, RESPONSE_SUCCESS,
    response_action,
)
from xds.namespaces import XDS, XOP, qname
from xds.registry.register import provide_and_register
from xds.registry.retrieve import retrieve
from xds.safexml import to_bytes
from xds.soap.documents import provide_and_register_request, read_provide_and_register
from xds.soap.envelope import envelope, parse_envelope, request_envelope
from xds.soap.mtom import read_mtom, strip_cid, write_mtom
from xds.soap.response import read_registry_response

CDA = b"<ClinicalDocument xmlns='urn:hl7-org:v3'>" + bytes(range(256)) * 40 + b"</ClinicalDocument>"


def over_the_wire(action: str, body: etree._Element, parts):
    """Send *body* and *parts* as an MTOM message and read it back: (body, attachments)."""
    content_type, chunks = write_mtom(to_bytes(envelope(action, body)), parts, action)
    package = read_mtom(content_type, b"".join(chunks))
    return parse_envelope(package.root).body, package.attachments


def retrieve_request(*pairs: tuple[str, str]) -> etree._Element:
    request = etree.Element(qname(XDS, "RetrieveDocumentSetRequest"), nsmap={"xds": XDS})
    for repository, document in pairs:
        item = etree.SubElement(request, qname(XDS, "DocumentRequest"))
        etree.SubElement(item, qname(XDS, "RepositoryUniqueId")).text = repository
        etree.SubElement(item, qname(XDS, "DocumentUniqueId")).text = document
    return request


@pytest.fixture
def conn(registry_engine):
    """A repository holding CDA as document 1.2.250.1.999.1.1, provided over MTOM."""
    submission = builders.submission()
    entry = submission.documents[0]
    entry.hash, entry.size = hashlib.sha1(CDA).hexdigest(), str(len(CDA))
    body, parts = provide_and_register_request(submission, {"Document01": CDA})
    received, attachments = over_the_wire(ACTION_PNR, body, parts)
    read, documents = read_provide_and_register(received, attachments)
    with registry_engine.connect() as conn:
        assert provide_and_register(conn, read, documents, REPOSITORY) == []
        yield conn


def test_retrieve_gives_back_the_same_bytes_over_mtom(conn):
    """If a provided document is retrieved, then the MTOM answer carries its exact bytes and
    mimeType, with Success."""
    response, parts = retrieve(conn, retrieve_request((REPOSITORY, "1.2.250.1.999.1.1")),
                               REPOSITORY)
    body, attachments = over_the_wire(response_action(ACTION_RETRIEVE), response, parts)
    assert read_registry_response(body).status == RESPONSE_SUCCESS
    document = body.find(f"{qname(XDS, 'DocumentResponse')}")
    assert document.findtext(qname(XDS, "mimeType")) == "text/xml"
    include = document.find(f"{qname(XDS, 'Document')}/{qname(XOP, 'Include')}")
    assert attachments[strip_cid(include.get("href"))].read_bytes() == CDA


def test_retrieve_inline_is_valid_against_the_schema(conn):
    """If the answer is not optimised, then it is inline base64, valid against XDS.b, and in
    a valid SOAP envelope."""
    response, parts = retrieve(conn, retrieve_request((REPOSITORY, "1.2.250.1.999.1.1")),
                               REPOSITORY, optimise=False)
    assert parts == []
    assert_valid("xdsb", response)
    assert_valid("soap", request_envelope(response_action(ACTION_RETRIEVE), response, "x"))


def test_partial_success_and_unknown_documents(conn):
    """If one known and one unknown document are asked, then PartialSuccess with the known one
    and XDSDocumentUniqueIdError naming the other; all unknown is Failure."""
    response, parts = retrieve(conn, retrieve_request((REPOSITORY, "1.2.250.1.999.1.1"),
                                                      (REPOSITORY, "1.2.3.404")),
                               REPOSITORY, optimise=False)
    assert_valid("xdsb", response)
    read = read_registry_response(response)
    assert read.status == RESPONSE_PARTIAL_SUCCESS
    assert [(e.error_code, e.location) for e in read.errors] == [
        ("XDSDocumentUniqueIdError", "1.2.3.404")]
    assert len(response.findall(qname(XDS, "DocumentResponse"))) == 1
    response, parts = retrieve(conn, retrieve_request((REPOSITORY, "1.2.3.404")), REPOSITORY)
    assert (read_registry_response(response).status, parts) == (RESPONSE_FAILURE, [])


def test_official_retrieve_sample_names_another_repository(conn):
    """If the IHE sample (repository 1.3.6.1.4...1000) is asked of this repository, then each
    of its two documents is XDSUnknownRepositoryId, and the Failure is valid XDS.b."""
    response, _ = retrieve(conn, sample_body("xds/examples/ihe/RetrieveDocumentSetRequest.xml"),
                           REPOSITORY)
    assert_valid("xdsb", response)
    read = read_registry_response(response)
    assert read.status == RESPONSE_FAILURE
    assert [e.error_code for e in read.errors] == ["XDSUnknownRepositoryId"] * 2


def test_request_without_documents(conn):
    """If a request asks for nothing, then it is Failure with XDSRepositoryError."""
    response, _ = retrieve(conn, retrieve_request(), REPOSITORY)
    assert [e.error_code for e in read_registry_response(response).errors] == [
        "XDSRepositoryError"]


def test_retrieve_documents_as_data(conn):
    """If the documents are asked as data, then the found one comes with its bytes and
    mimeType, and the missing one as an error, with PartialSuccess."""
    from xds.registry.retrieve import retrieve_documents
    result = retrieve_documents(conn, retrieve_request((REPOSITORY, "1.2.250.1.999.1.1"),
                                                       ("1.2.3", "1.2.250.1.999.1.1")), REPOSITORY)
    assert result.status == RESPONSE_PARTIAL_SUCCESS
    assert [(d.document_unique_id, d.mime_type, d.source) for d in result.documents] == [
        ("1.2.250.1.999.1.1", "text/xml", CDA)]
    assert [e.error_code for e in result.errors] == ["XDSUnknownRepositoryId"]
