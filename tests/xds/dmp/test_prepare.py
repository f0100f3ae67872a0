"""prepare_for_dmp: the prepared ITI-41 request still validates against the
official schemas, carries a VIHF and a submission-set signature that an
independent verifier accepts, and a request the DMP would refuse is refused
here with the standard error codes."""
from __future__ import annotations

import base64
import copy
import dataclasses
import datetime
import io
from pathlib import Path

import pytest
from lxml import etree

from tests.xds.builders import DOCUMENT_BYTES, PATIENT, submission
from tests.xds.dmp.pki import NOW
from tests.xds.dmp.verifier import NS, verify_assertion, verify_submission_signature
from tests.standards import standards_dir
from tests.xds.standards import assert_valid
from xds.client.http import SOAPRequest
from xds.dmp.prepare import DMPContext, DMPPreparationError, prepare_for_dmp
from xds.dmp.values import SIGNATURE_CLASS, SIGNATURE_TYPE, check_values
from xds.metadata import errors as codes
from xds.metadata.reading import read_submission
from xds.metadata.validation import validate
from xds.metadata.vocabulary import ACTION_PNR, ACTION_STORED_QUERY
from xds.safexml import parse_xml, to_bytes
from xds.soap.documents import provide_and_register_request, read_documents
from xds.soap.envelope import request_envelope
from xds.soap.mtom import read_mtom
from xds.soap.framing import write_message

URL = "https://dmp.example/repository"
SECOND = b"<ClinicalDocument xmlns='urn:hl7-org:v3'>deux</ClinicalDocument>"


def pnr_request(*, mtom: bool, sub=None, documents=None) -> SOAPRequest:
    sub = sub or submission(2)
    documents = documents or {"Document01": DOCUMENT_BYTES, "Document02": SECOND}
    body, parts = provide_and_register_request(sub, documents, optimise=mtom)
    return SOAPRequest(URL, ACTION_PNR, request_envelope(ACTION_PNR, body, URL), parts, mtom)


@pytest.fixture()
def context(practitioner, value_sets):
    return DMPContext(practitioner, value_sets, identity_status="QUAL", now=NOW)


def _hl7_aware_soap_schema(folder: Path) -> etree.XMLSchema:
    """SOAP 1.2 envelope schema plus the HL7 v3 datatypes, so that the VIHF's
    ``xsi:type="CE"`` values resolve (a lax wildcard still checks xsi:type)."""
    root = standards_dir()
    datatypes = root / "cda/schema/hl7-normative/processable/coreschemas/datatypes.xsd"
    (folder / "hl7.xsd").write_text(
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:hl7-org:v3"'
        f' elementFormDefault="qualified"><xs:include schemaLocation="{datatypes.as_uri()}"/>'
        '</xs:schema>')
    (folder / "both.xsd").write_text(
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">'
        '<xs:import namespace="http://www.w3.org/2003/05/soap-envelope" schemaLocation="'
        f'{(root / "soap/schema/soap-1.2-envelope.xsd").as_uri()}"/>'
        f'<xs:import namespace="urn:hl7-org:v3" schemaLocation="{(folder / "hl7.xsd").as_uri()}"/>'
        '</xs:schema>')
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    return etree.XMLSchema(etree.parse(str(folder / "both.xsd"), parser))


def _wire(prepared: SOAPRequest) -> tuple[etree._Element, dict[str, bytes]]:
    """Serialise as the sender would, read back as the DMP would: (envelope, cid -> bytes)."""
    content_type, chunks = write_message(prepared.envelope, prepared.parts, prepared.action,
                                         prepared.mtom)
    data = b"".join(chunks)
    if not prepared.mtom:
        return parse_xml(data), {}
    package = read_mtom(content_type, io.BytesIO(data))
    return parse_xml(package.root), {cid: a.read_bytes() for cid, a in package.attachments.items()}


def _c14n(element) -> bytes:
    return etree.tostring(element, method="c14n", exclusive=True)


def _body(envelope):
    return envelope.find(f"{{{NS['soap']}}}Body")[0]


def test_inline_request_validates_and_verifies(context, credentials, pki_files, tmp_path):
    """If preparing broke the envelope or either signature, a schema or the verifier would say so."""
    prepared = prepare_for_dmp(pnr_request(mtom=False), credentials, context)
    envelope, _ = _wire(prepared)
    schema = _hl7_aware_soap_schema(tmp_path)
    assert schema.validate(etree.ElementTree(envelope)), schema.error_log
    assert_valid("xdsb", _body(envelope))
    assertion = envelope.find(".//{urn:oasis:names:tc:SAML:2.0:assertion}Assertion")
    verify_assertion(etree.tostring(assertion), pki_files["ca"])
    documents = {key: doc.read_bytes() for key, doc in read_documents(_body(envelope), {}).items()}
    _check_signature_document(_body(envelope), documents, pki_files)


def _check_signature_document(body, documents: dict[str, bytes], pki_files) -> None:
    sub = read_submission(body)
    [signature_entry] = [e for e in sub.documents if e.type_code.code == SIGNATURE_TYPE.code]
    assert signature_entry.class_code.code == SIGNATURE_CLASS.code
    assert signature_entry.patient_id == PATIENT
    signed = {e.unique_id: documents[e.entry_uuid] for e in sub.documents
              if e is not signature_entry}
    assert sorted(signed) == ["1.2.250.1.999.1.1", "1.2.250.1.999.1.2"]
    verify_submission_signature(documents[signature_entry.entry_uuid], signed, pki_files["ca"])
    [member] = [a for a in sub.associations if a.target == signature_entry.entry_uuid]
    assert (member.source, member.submission_set_status) == ("SubmissionSet01", "Original")


def test_prepared_submission_passes_the_xds_and_dmp_checks(context, credentials):
    """If the added signature entry broke a metadata rule, the DMP would refuse the submission."""
    prepared = prepare_for_dmp(pnr_request(mtom=False), credentials, context)
    sub = read_submission(_body(prepared.envelope))
    assert len(sub.documents) == 3
    assert [e for e in validate(sub) if e.is_error] == []
    assert check_values(sub, context.value_sets) == []


def test_mtom_request_gets_the_signature_as_a_part(context, credentials, pki_files):
    """If the signature went inline in an MTOM request or a file part were left consumed,
    the documents sent would not be those signed."""
    request = pnr_request(mtom=True)
    request.parts[1].source = io.BytesIO(SECOND)        # a spooled document, not bytes
    prepared = prepare_for_dmp(request, credentials, context)
    assert len(prepared.parts) == 3 and prepared.parts[2].content_type == "text/xml"
    assert prepared.parts[1].source.tell() == 0
    envelope, attachments = _wire(prepared)
    documents = {key: doc.read_bytes() for key, doc in read_documents(
        _body(envelope), {cid: _Bytes(data) for cid, data in attachments.items()}).items()}
    _check_signature_document(_body(envelope), documents, pki_files)


class _Bytes:
    def __init__(self, data):
        self.data = data

    def read_bytes(self):
        return self.data


def test_the_given_request_is_left_untouched(context, credentials):
    """If the original were changed, a retry would sign the signature again."""
    request = pnr_request(mtom=True)
    before = (to_bytes(request.envelope), list(request.parts))
    prepare_for_dmp(request, credentials, context)
    assert (to_bytes(request.envelope), request.parts) == before


def test_unqualified_ins_is_refused_before_anything_is_signed(context, credentials):
    """If a VALI identity went to the DMP, a patient could get someone else's documents."""
    with pytest.raises(DMPPreparationError) as raised:
        prepare_for_dmp(pnr_request(mtom=False), credentials,
                        dataclasses.replace(context, identity_status="VALI"))
    assert {e.error_code for e in raised.value.errors} == {codes.REGISTRY_METADATA_ERROR}
    assert "identity status VALI (validée)" in raised.value.errors[0].code_context
    assert len(raised.value.errors) == 3        # the submission set and both documents


def test_value_set_errors_are_refused(context, credentials):
    """If a code outside the JDVs were sent, the DMP would refuse it later and less clearly."""
    sub = submission(2)
    sub.documents[0].format_code.code = "urn:nowhere"
    with pytest.raises(DMPPreparationError, match="formatCode 'urn:nowhere'"):
        prepare_for_dmp(pnr_request(mtom=False, sub=sub), credentials, context)


def test_entry_without_document_is_refused(context, credentials):
    """If an entry without bytes were signed, the Manifest would not match what is sent."""
    request = pnr_request(mtom=False, documents={"Document01": DOCUMENT_BYTES})
    with pytest.raises(DMPPreparationError) as raised:
        prepare_for_dmp(request, credentials, context)
    assert [(e.error_code, e.location) for e in raised.value.errors] == [
        (codes.MISSING_DOCUMENT, "Document02")]


def test_query_gets_only_the_vihf(context, credentials, pki_files):
    """If a stored query went without VIHF, or with a signature document, the DMP would refuse it."""
    query = etree.Element("{urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0}AdhocQueryRequest")
    request = SOAPRequest(URL, ACTION_STORED_QUERY, request_envelope(
        ACTION_STORED_QUERY, copy.deepcopy(query), URL), [], False)
    with pytest.raises(DMPPreparationError, match="patient_ins"):
        prepare_for_dmp(request, credentials, context)
    prepared = prepare_for_dmp(request, credentials,
                               dataclasses.replace(context, patient_ins=PATIENT))
    assert _c14n(_body(prepared.envelope)) == _c14n(query)
    assertion = prepared.envelope.find(".//{urn:oasis:names:tc:SAML:2.0:assertion}Assertion")
    verify_assertion(etree.tostring(assertion), pki_files["ca"])


def test_submission_without_submission_set_is_refused(context, credentials):
    """If a bare list of entries were prepared, there would be no set to sign."""
    sub = submission(1)
    sub.submission_sets.clear()
    sub.associations.clear()
    with pytest.raises(DMPPreparationError, match="exactly one SubmissionSet"):
        prepare_for_dmp(pnr_request(mtom=False, sub=sub,
                                    documents={"Document01": DOCUMENT_BYTES}),
                        credentials, context)


def test_inline_signature_document_is_base64_of_the_signature(context, credentials):
    """If the inline document were not plain base64 XML, the DMP could not read the signature."""
    prepared = prepare_for_dmp(pnr_request(mtom=False), credentials, context)
    last = _body(prepared.envelope).findall("{urn:ihe:iti:xds-b:2007}Document")[-1]
    signature = parse_xml(base64.b64decode(last.text))
    assert signature.tag == "{http://www.w3.org/2000/09/xmldsig#}Signature"


def test_unreadable_inline_document_is_refused(context, credentials):
    """If bad base64 raised a bare binascii error, the destination could not record why."""
    request = pnr_request(mtom=False)
    document = _body(request.envelope).find("{urn:ihe:iti:xds-b:2007}Document")
    document.text = "not base64!"
    with pytest.raises(DMPPreparationError, match="Document 'Document01' is not valid base64"):
        prepare_for_dmp(request, credentials, context)


def test_body_without_metadata_is_refused(context, credentials):
    """If an ITI-41 body without RegistryObjectList got through, nothing would say what to fix."""
    body = etree.Element("{urn:ihe:iti:xds-b:2007}ProvideAndRegisterDocumentSetRequest")
    request = SOAPRequest(URL, ACTION_PNR, request_envelope(ACTION_PNR, body, URL), [], False)
    with pytest.raises(DMPPreparationError, match="no rim:RegistryObjectList"):
        prepare_for_dmp(request, credentials, context)


def test_certificate_expired_since_loading_is_refused(context, credentials):
    """If a certificate that expired after start kept signing, the DMP would refuse every call."""
    later = dataclasses.replace(context, now=NOW + datetime.timedelta(days=20 * 365))
    with pytest.raises(DMPPreparationError, match="not on 2046-.*renew it"):
        prepare_for_dmp(pnr_request(mtom=False), credentials, later)
