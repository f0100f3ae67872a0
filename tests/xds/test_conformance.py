"""Conformance: the official samples in shared/standards are read, and everything Aiguillage
writes validates against the official XSDs there (SOAP 1.2, ebRS 3.0, IHE XDS.b)."""
from __future__ import annotations

import base64
import hashlib
import zipfile

import pytest
from lxml import etree

from tests.xds.builders import counter_ids, submission
from tests.standards import sample
from tests.xds.standards import assert_valid
from xds.cda.entry import document_entry_from_cda
from xds.cda.header import read_cda_header
from xds.metadata import errors as codes
from xds.metadata.content import check_documents
from xds.metadata.errors import MetadataError, RegistryError, warning
from xds.metadata.model import Association, Code, Submission, SubmissionSet
from xds.metadata.reading import read_submission
from xds.metadata.validation import Profile, validate
from xds.metadata.vocabulary import ACTION_PNR, RESPONSE_SUCCESS, response_action
from xds.metadata.writing import submit_objects_request
from xds.namespaces import XDS, XOP
from xds.safexml import parse_xml, to_bytes
from xds.soap.documents import InlineDocument, provide_and_register_request, read_documents
from xds.soap.envelope import SOAPFault, envelope, fault_envelope, parse_envelope, request_envelope
from xds.soap.response import read_registry_response, registry_response

SUBMISSIONS = {
    # sample -> what validation rightly finds in it (SOURCES.md: "not models")
    "xds/examples/ihe/ProvideAndRegisterDocumentSet-bRequest.xml": ["sourceId '3670984664'"],
    "xds/examples/ihe/ProvideAndRegisterDocumentSet-bRequest_SOAP.xml": ["sourceId '3670984664'"],
    "xds/examples/ihe/RegisterDocumentSet-bRequest.xml": ["sourceId '3670984664'"],
    "xds/examples/ihe/RegisterDocumentSet-bRequest_SOAP.xml": ["sourceId '3670984664'"],
    "xds/examples/ipf/SubmitObjectsRequest_ebrs30.xml": ["sourceId '3670984664'"],
    "xds/examples/ipf/SubmitObjectsRequest_ebrs30_update.xml": ["'89765a87b^^^&3.4.5&ISO'"],
}


def read_sample(relative: str) -> etree._Element:
    root = parse_xml(sample(relative).read_bytes())
    if relative.endswith("_SOAP.xml"):
        return parse_envelope(sample(relative).read_bytes()).body
    return root


@pytest.mark.parametrize("relative", sorted(SUBMISSIONS))
def test_sample_submissions_read_validate_and_write_back(relative):
    """If an official ITI-41/42 sample is read, then validation finds only its known faults,
    and writing it back gives a SubmitObjectsRequest valid against lcm.xsd that reads equal."""
    read = read_submission(read_sample(relative))
    assert len(read.documents) == 1 and read.submission_set is not None
    findings = [error.code_context for error in validate(read)]
    assert len(findings) == len(SUBMISSIONS[relative])
    for finding, expected in zip(findings, SUBMISSIONS[relative]):
        assert expected in finding
    written = submit_objects_request(read, counter_ids())
    assert_valid("lcm", written)
    assert read_submission(parse_xml(to_bytes(written))) == read


def test_ihe_provide_and_register_documents_and_rebuilt_request():
    """If the IHE ITI-41 sample is read, then its inline document decodes, and the request
    rebuilt from it (inline and XOP) is valid against XDS.b, in a valid SOAP 1.2 envelope."""
    body = read_sample("xds/examples/ihe/ProvideAndRegisterDocumentSet-bRequest_SOAP.xml")
    documents = read_documents(body, {})
    assert documents["Document01"].read_bytes().startswith(b"R0lGODlhcgGSALMAAAQCAEMmCZtuMFQx")
    read = read_submission(body)
    data = documents["Document01"].read_bytes()
    inline, parts = provide_and_register_request(read, {"Document01": data}, optimise=False)
    assert parts == []
    assert_valid("xdsb", inline)
    assert_valid("soap", request_envelope(ACTION_PNR, inline, "http://127.0.0.1/xds"))
    # The XOP form is valid as its reconstituted infoset (XOP §3): include -> base64 text.
    optimised, parts = provide_and_register_request(read, {"Document01": data})
    document = optimised.find(f"{{{XDS}}}Document")
    include = document[0]
    assert (document.text, include.tail, include.tag) == (None, None, f"{{{XOP}}}Include")
    assert include.get("href") == f"cid:{parts[0].content_id}"
    document.remove(include)
    document.text = base64.b64encode(parts[0].source).decode()
    assert_valid("xdsb", optimised)


@pytest.mark.parametrize("relative", [
    "xds/examples/ihe/ProvideAndRegisterDocumentSet-bResponse.xml",
    "xds/examples/ihe/ProvideAndRegisterDocumentSet-bResponse_SOAP.xml",
    "xds/examples/ihe/RegisterDocumentSet-bResponse.xml",
    "xds/examples/ihe/RegisterDocumentSet-bResponse_SOAP.xml",
    "xds/examples/ihe/RetrieveDocumentSetResponse.xml",
])
def test_sample_responses_are_read(relative):
    """If an official RegistryResponse sample is read, then its status is Success."""
    response = read_registry_response(read_sample(relative))
    assert response.status == RESPONSE_SUCCESS and response.errors == []


@pytest.mark.parametrize("relative, action", [
    ("xds/examples/ihe/RegistryStoredQueryRequest_SOAP.xml", "urn:ihe:iti:2007:RegistryStoredQuery"),
    ("xds/examples/ihe/RegistryStoredQueryResponse_SOAP.xml",
     "urn:ihe:iti:2007:RegistryStoredQueryResponse"),
    ("xds/examples/ihe/RetrieveDocumentSetRequest_SOAP.xml", "urn:ihe:iti:2007:RetrieveDocumentSet"),
    ("xds/examples/ihe/RetrieveDocumentSetResponse_SOAP.xml",
     "urn:ihe:iti:2007:RetrieveDocumentSetResponse"),
])
def test_sample_envelopes_are_read(relative, action):
    """If an official SOAP sample is read, then its WS-Addressing action and body come out."""
    message = parse_envelope(sample(relative).read_bytes())
    assert message.action == action
    assert message.message_id.startswith("urn:uuid:") or message.relates_to.startswith("urn:uuid:")
    assert message.body is not None


def test_responses_and_faults_we_write_are_valid():
    """If Aiguillage answers with a RegistryResponse (success or errors) or a fault, then the
    body is valid against rs.xsd and the envelope against the SOAP 1.2 schema."""
    for errors in ([], [RegistryError(codes.PATIENT_ID_DOES_NOT_MATCH, "differs", "Document01"),
                        warning(codes.EXTRA_METADATA_NOT_SAVED, "slot dropped")]):
        response = registry_response(errors)
        assert_valid("rs", response)
        assert_valid("soap", envelope(response_action(ACTION_PNR), response,
                                      relates_to="urn:uuid:6d296e90-e5dc-43d0-b455-7c1f3eb35d83"))
    assert_valid("soap", fault_envelope(SOAPFault("Sender", "bad", "wsa:ActionNotSupported")))


def test_built_submission_with_folder_is_valid():
    """If a submission with several documents and a folder is written, then it is valid."""
    assert_valid("lcm", submit_objects_request(submission(3, folder=True), counter_ids()))


XDM = {
    "xdm/examples/Systelab_XDM.zip": [],
    "xdm/examples/XDM_SAMPLE4.zip": ["sourceId '3670984664'"],
    "xdm/examples/XDM_SAMPLE5.zip": ["sourceId '3670984664'"],
}


def xdm_metadata(relative: str) -> tuple[zipfile.ZipFile, str]:
    archive = zipfile.ZipFile(sample(relative))
    name = next(n for n in archive.namelist()
                if n.replace("\\", "/").upper().endswith("SUBSET01/METADATA.XML"))
    return archive, name


@pytest.mark.parametrize("relative", sorted(XDM))
def test_xdm_metadata_is_read_checked_and_written_back(relative):
    """If an XDM package's METADATA.XML is read, then its documents match their hash and size,
    validation finds only the known faults, and writing back is valid against lcm.xsd."""
    archive, name = xdm_metadata(relative)
    read = read_submission(parse_xml(archive.read(name)))
    folder = name.rsplit("/", 1)[0]
    documents = {entry.entry_uuid: InlineDocument(archive.read(f"{folder}/{entry.uri}"))
                 for entry in read.documents}
    assert check_documents(read, documents) == []
    findings = [error.code_context for error in validate(read, profile=Profile.XDM)]
    assert len(findings) == len(XDM[relative])
    assert all(expected in finding for finding, expected in zip(findings, XDM[relative]))
    assert_valid("lcm", submit_objects_request(read, counter_ids()))


def test_xdm_with_wrong_size_and_hash_is_caught():
    """If an XDM package's metadata gives another hash and size than its document (the Medisys
    sample), then both mismatches are reported as XDSRepositoryMetadataError."""
    archive, name = xdm_metadata("xdm/examples/Medisys_XDM.zip")
    read = read_submission(parse_xml(archive.read(name)))
    data = archive.read(name.replace("METADATA.XML", read.documents[0].uri))
    errors = check_documents(read, {read.documents[0].entry_uuid: InlineDocument(data)})
    assert [e.error_code for e in errors] == [codes.REPOSITORY_METADATA_ERROR] * 2
    assert hashlib.sha1(data).hexdigest() in errors[0].code_context
    assert "size 122212 does not match the document's 5916 octets" in errors[1].code_context


def test_ebrs21_xdm_is_refused_with_a_clear_error():
    """If METADATA.XML is ebXML RegRep 2.1 (XDS.a era), then the error names the namespace."""
    archive, name = xdm_metadata("xdm/examples/IHE_XDM.zip")
    with pytest.raises(MetadataError, match="registry:xsd:2.1.*not ebXML RegRep 3.0"):
        read_submission(parse_xml(archive.read(name)))


CDA_SAMPLES = [
    "cda/examples/ans/BIO-CR-BIO_2024.01_Microbiologie_V2.xml",
    "cda/examples/ans/BIO-CR-BIO_2024.01_TSH_1.xml",
    "cda/examples/ans/BIO-TROD_2024.01_Angine.xml",
    "cda/examples/ans/CSE-MDE_2023.01.xml",
    "cda/examples/ans/DOC_NON_STRUCTURE_CDA-R2-N1.xml",
    "cda/examples/ans/IMG_CR_IMG_2024.01_CDA-R2-Niveau-1.xml",
    "cda/examples/ans/LDL-EES_2022.01.xml",
    "cda/examples/ans/LDL-SES_2022.01.xml",
    "cda/examples/ans/VAC-NOTE_2023.01.xml",
    "cda/examples/ans/VSM_1.4_2022.01.xml",
    "hl7v2/ans/oru-cr-bio-segur-base64/SEGUR_CR-BIO_2023.01_Electrophorese.xml",
]
FALLBACK_FORMAT = Code("urn:ihe:iti:xds-sd:pdf:2008", "1.3.6.1.4.1.19376.1.2.3")


def submission_for(entry) -> Submission:
    return Submission(
        submission_sets=[SubmissionSet(
            "SubmissionSet01", unique_id="1.2.250.1.999.2.7", source_id="1.2.250.1.999",
            patient_id=entry.patient_id, submission_time="20260101120000",
            content_type_code=Code("04", "1.2.250.1.213.2.2", "Hospitalisation"))],
        documents=[entry],
        associations=[Association("as01", source="SubmissionSet01", target=entry.entry_uuid,
                                  extra_slots={"SubmissionSetStatus": ["Original"]})])


@pytest.mark.parametrize("relative", CDA_SAMPLES, ids=lambda r: r.rsplit("/", 1)[1])
def test_ans_cda_gives_valid_metadata_and_request(relative):
    """If a French CI-SIS document's header is read, then the derived DocumentEntry passes the
    XDS.b rules and the ITI-41 request carrying it is valid against the XDS.b schema."""
    data = sample(relative).read_bytes()
    header = read_cda_header(data)
    entry = document_entry_from_cda(header, entry_uuid="Document01",
                                    class_code=Code("10", "1.2.250.1.213.1.1.4.1", "CR"))
    entry.format_code = entry.format_code or FALLBACK_FORMAT
    entry.hash, entry.size = hashlib.sha1(data).hexdigest(), str(len(data))
    sub = submission_for(entry)
    assert validate(sub) == []
    request, _ = provide_and_register_request(sub, {"Document01": data}, optimise=False)
    assert_valid("xdsb", request)
    documents = read_documents(request, {})
    assert check_documents(read_submission(request), documents) == []


@pytest.mark.parametrize("relative", ["cda/examples/hl7/SampleCDADocument.xml",
                                      "cda/examples/ihe/XDS-SD.PDF.xml",
                                      "cda/examples/ihe/XDS-SD.TEXT.xml"])
def test_international_cda_headers_are_read(relative):
    """If an HL7 or IHE sample is read, then the entry has its uniqueId, patient and authors,
    and writing it is schema-valid even where XDS.b codes are missing."""
    header = read_cda_header(sample(relative).read_bytes())
    entry = document_entry_from_cda(header, entry_uuid="Document01")
    assert entry.unique_id == (f"{header.id.root}^{header.id.extension}" if header.id.extension
                               else header.id.root)
    assert entry.patient_id and entry.authors and entry.creation_time
    assert_valid("lcm", submit_objects_request(submission_for(entry), counter_ids()))
