"""ITI-18 on the built-in registry, on SQLite and PostgreSQL: the six stored queries with their
parameters, LeafClass and ObjectRef answers valid against query.xsd, and their errors."""
from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import select

from tests.xds import builders
from tests.xds.registry_support import (
    APPROVED, DEPRECATED, PNR_SAMPLES, REPOSITORY, adhoc_query, fixed, pnr_sample, replacement,
    sample_body,
)
from tests.xds.standards import assert_valid
from xds.metadata.model import Code
from xds.metadata.reading import read_submission
from xds.metadata.vocabulary import RESPONSE_FAILURE, RESPONSE_SUCCESS, RPLC, STATUS_APPROVED
from xds.namespaces import rim
from xds.registry import tables
from xds.registry.query import stored_query
from xds.registry.register import provide_and_register
from xds.soap.documents import InlineDocument
from xds.soap.response import read_registry_response

FIND_DOCUMENTS = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
FIND_SUBMISSION_SETS = "urn:uuid:f26abbcb-ac74-4422-8a30-edb644bbc1a9"
GET_DOCUMENTS = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"
GET_ASSOCIATIONS = "urn:uuid:a7ae438b-4bc2-4642-93e9-be891f7bb155"
GET_SUBMISSION_SET_AND_CONTENTS = "urn:uuid:e8e3cb2c-e39c-46b9-99e4-c12f57260b83"
GET_RELATED_DOCUMENTS = "urn:uuid:d90e5407-b356-4d91-a89f-873917b4b0e6"
PATIENT = builders.PATIENT
EVENTS = [Code("IMP", "2.16.840.1.113883.5.4"), Code("EMER", "2.16.840.1.113883.5.4")]


def provide(conn, submission):
    documents = {d.entry_uuid: InlineDocument(builders.DOCUMENT_BYTES)
                 for d in submission.documents}
    assert provide_and_register(conn, submission, documents, REPOSITORY) == []


def uuid_of(conn, unique_id: str) -> str:
    table = tables.document_entries
    return conn.execute(select(table.c.entry_uuid).where(table.c.unique_id == unique_id)).scalar()


@pytest.fixture
def conn(registry_engine):
    """A registry holding the IHE sample, and a French document replaced by a second one."""
    with registry_engine.connect() as conn:
        submission, documents = pnr_sample(PNR_SAMPLES[1])
        assert provide_and_register(conn, fixed(submission), documents, REPOSITORY) == []
        original = builders.submission()
        original.documents[0].event_codes = EVENTS
        provide(conn, original)
        provide(conn, replacement(original, uuid_of(conn, "1.2.250.1.999.1.1")))
        yield conn


def query(conn, query_id, parameters, return_type="LeafClass", schema=True):
    response = stored_query(conn, adhoc_query(query_id, parameters, return_type))
    if schema:
        assert_valid("query", response)
    return response


def ids(response) -> list[str]:
    return [child.get("id") for child in response.find(rim("RegistryObjectList"))
            if child.tag != rim("Classification")]


def error_codes(response) -> list[str]:
    return [error.error_code for error in read_registry_response(response).errors]


def find(conn, **extra):
    parameters = {"$XDSDocumentEntryPatientId": PATIENT, "$XDSDocumentEntryStatus": APPROVED}
    parameters.update(extra)
    return ids(query(conn, FIND_DOCUMENTS, parameters))


def test_find_documents_leaf_class_gives_back_the_registered_metadata(conn):
    """If the IHE sample's patient is searched, then the LeafClass answer is its entry as
    provided, completed by the repository, Approved, valid against query.xsd."""
    submission, _ = pnr_sample(PNR_SAMPLES[1])
    sent = submission.documents[0]
    response = query(conn, FIND_DOCUMENTS, {"$XDSDocumentEntryPatientId": sent.patient_id,
                                            "$XDSDocumentEntryStatus": APPROVED})
    assert response.get("status") == RESPONSE_SUCCESS
    found = read_submission(response.find(rim("RegistryObjectList"))).documents
    assert len(found) == 1
    expected = replace(sent, entry_uuid=found[0].entry_uuid, availability_status=STATUS_APPROVED,
                       repository_unique_id=REPOSITORY, hash=found[0].hash, size=found[0].size)
    assert found[0] == expected


def test_find_documents_object_ref(conn):
    """If ObjectRef is asked, then only references come back, one per entry."""
    response = query(conn, FIND_DOCUMENTS, {"$XDSDocumentEntryPatientId": PATIENT,
                                            "$XDSDocumentEntryStatus": APPROVED + DEPRECATED},
                     "ObjectRef")
    objects = list(response.find(rim("RegistryObjectList")))
    assert [child.tag for child in objects] == [rim("ObjectRef")] * 2
    assert {child.get("id") for child in objects} == {uuid_of(conn, "1.2.250.1.999.1.1"),
                                                      uuid_of(conn, "1.2.250.1.999.1.1.2")}


def test_find_documents_status_follows_replacement(conn):
    """If a document was replaced, then Approved finds the new one and Deprecated the old."""
    assert find(conn) == [uuid_of(conn, "1.2.250.1.999.1.1.2")]
    assert find(conn, **{"$XDSDocumentEntryStatus": DEPRECATED}) == [
        uuid_of(conn, "1.2.250.1.999.1.1")]


def test_find_documents_codes_times_and_authors(conn):
    """If optional parameters are given, then each narrows the answer: codes (lists are OR),
    creation time (From inclusive, To exclusive), authorPerson with LIKE wildcards."""
    new = [uuid_of(conn, "1.2.250.1.999.1.1.2")]
    assert find(conn, **{"$XDSDocumentEntryClassCode": ["10^^1.2.250.1.213.1.1.4.1",
                                                        "11^^x"]}) == new
    assert find(conn, **{"$XDSDocumentEntryClassCode": ["11^^x"]}) == []
    assert find(conn, **{"$XDSDocumentEntryTypeCode": ["11490-0^^2.16.840.1.113883.6.1"],
                         "$XDSDocumentEntryFormatCode": ["urn:asip:ci-sis:ldl-ses:2017^^"
                                                         "1.2.250.1.213.1.1.4.2.282"]}) == new
    assert find(conn, **{"$XDSDocumentEntryCreationTimeFrom": "20191203123000"}) == new
    assert find(conn, **{"$XDSDocumentEntryCreationTimeTo": "20191203123000"}) == []
    assert find(conn, **{"$XDSDocumentEntryServiceStartTimeFrom": "2019",
                         "$XDSDocumentEntryServiceStopTimeTo": "2020"}) == new
    assert find(conn, **{"$XDSDocumentEntryAuthorPerson": ["%^DAVID^%"]}) == new
    assert find(conn, **{"$XDSDocumentEntryAuthorPerson": ["%^MARTIN^%"]}) == []


def test_event_codes_or_within_a_slot_and_across_slots(conn):
    """If $XDSDocumentEntryEventCodeList has one Slot, then its values are alternatives; if
    it has several, then each must match (AND)."""
    new = [uuid_of(conn, "1.2.250.1.999.1.1.2")]
    imp, emer = "IMP^^2.16.840.1.113883.5.4", "EMER^^2.16.840.1.113883.5.4"
    name = "$XDSDocumentEntryEventCodeList"
    assert find(conn, **{name: [imp, "NONE^^x"]}) == new
    assert find(conn, **{name: ([imp], [emer])}) == new
    assert find(conn, **{name: ([imp], ["NONE^^x"])}) == []
    assert find(conn, **{"$XDSDocumentEntryConfidentialityCode":
                         (["N^^2.16.840.1.113883.5.25"],)}) == new


def test_find_submission_sets(conn):
    """If a patient's SubmissionSets are searched, then both of the French patient's come,
    and content type and source id narrow them."""
    base = {"$XDSSubmissionSetPatientId": PATIENT, "$XDSSubmissionSetStatus": APPROVED}
    assert len(ids(query(conn, FIND_SUBMISSION_SETS, base))) == 2
    narrowed = dict(base, **{"$XDSSubmissionSetContentType": ["04^^1.2.250.1.213.2.2"],
                             "$XDSSubmissionSetSourceId": ["1.2.250.1.999"]})
    assert len(ids(query(conn, FIND_SUBMISSION_SETS, narrowed))) == 2
    other = dict(base, **{"$XDSSubmissionSetSourceId": ["1.2.3"]})
    assert ids(query(conn, FIND_SUBMISSION_SETS, other)) == []


def test_get_documents_by_uuid_or_unique_id(conn):
    """If documents are asked by entryUUID or by uniqueId, then the same entry comes back;
    both parameters at once are XDSStoredQueryParamNumber, neither XDSStoredQueryMissingParam."""
    uuid = uuid_of(conn, "1.2.250.1.999.1.1")
    assert ids(query(conn, GET_DOCUMENTS, {"$XDSDocumentEntryEntryUUID": [uuid]})) == [uuid]
    assert ids(query(conn, GET_DOCUMENTS, {"$XDSDocumentEntryUniqueId": [
        "1.2.250.1.999.1.1"]})) == [uuid]
    both = query(conn, GET_DOCUMENTS, {"$XDSDocumentEntryEntryUUID": [uuid],
                                       "$XDSDocumentEntryUniqueId": ["1.2.250.1.999.1.1"]})
    assert both.get("status") == RESPONSE_FAILURE
    assert error_codes(both) == ["XDSStoredQueryParamNumber"]
    assert error_codes(query(conn, GET_DOCUMENTS, {})) == ["XDSStoredQueryMissingParam"]


def test_get_documents_of_two_patients(conn):
    """If LeafClass entries of two patients are asked, then XDSResultNotSinglePatient; as
    ObjectRefs they come."""
    sample_unique_id = pnr_sample(PNR_SAMPLES[1])[0].documents[0].unique_id
    parameters = {"$XDSDocumentEntryUniqueId": ["1.2.250.1.999.1.1", sample_unique_id]}
    assert error_codes(query(conn, GET_DOCUMENTS, parameters)) == ["XDSResultNotSinglePatient"]
    assert len(ids(query(conn, GET_DOCUMENTS, parameters, "ObjectRef"))) == 2


def test_get_associations(conn):
    """If the associations of the replaced entry are asked, then its HasMember and the RPLC
    pointing at it come back."""
    old = uuid_of(conn, "1.2.250.1.999.1.1")
    response = query(conn, GET_ASSOCIATIONS, {"$uuid": [old]})
    found = read_submission(response.find(rim("RegistryObjectList"))).associations
    assert sorted(a.association_type.rsplit(":", 1)[1] for a in found) == ["HasMember", "RPLC"]
    assert all(old in (a.source, a.target) for a in found)


def test_get_submission_set_and_contents(conn):
    """If a SubmissionSet is asked with its contents, then the set, its document and the
    HasMember come back; a formatCode filter that matches nothing leaves the set alone."""
    parameters = {"$XDSSubmissionSetUniqueId": "1.2.250.1.999.2.1"}
    found = read_submission(query(conn, GET_SUBMISSION_SET_AND_CONTENTS, parameters)
                            .find(rim("RegistryObjectList")))
    assert [d.unique_id for d in found.documents] == ["1.2.250.1.999.1.1"]
    assert [s.unique_id for s in found.submission_sets] == ["1.2.250.1.999.2.1"]
    assert [(a.source, a.target) for a in found.associations] == [
        (found.submission_sets[0].entry_uuid, found.documents[0].entry_uuid)]
    filtered = dict(parameters, **{"$XDSDocumentEntryFormatCode": ["other^^x"]})
    assert len(ids(query(conn, GET_SUBMISSION_SET_AND_CONTENTS, filtered))) == 1


def test_get_related_documents(conn):
    """If the documents related to the new version by RPLC are asked, then it, the one it
    replaced and the RPLC come back; by another association type, nothing."""
    new, old = uuid_of(conn, "1.2.250.1.999.1.1.2"), uuid_of(conn, "1.2.250.1.999.1.1")
    parameters = {"$XDSDocumentEntryEntryUUID": new, "$AssociationTypes": [RPLC]}
    found = ids(query(conn, GET_RELATED_DOCUMENTS, parameters))
    assert found[:2] == [new, old] and len(found) == 3
    other = dict(parameters, **{"$AssociationTypes": ["urn:ihe:iti:2007:AssociationType:APND"]})
    assert ids(query(conn, GET_RELATED_DOCUMENTS, other)) == []
    assert error_codes(query(conn, GET_RELATED_DOCUMENTS,
                             {"$XDSDocumentEntryEntryUUID": new})) == [
        "XDSStoredQueryMissingParam"]


def test_query_errors(conn):
    """If the query id is unknown, then XDSUnknownStoredQuery; a required parameter missing is
    XDSStoredQueryMissingParam; a single-valued one with two values XDSStoredQueryParamNumber;
    every answer valid against query.xsd."""
    assert error_codes(query(conn, "urn:uuid:00000000-0000-0000-0000-000000000000", {})) == [
        "XDSUnknownStoredQuery"]
    assert error_codes(query(conn, FIND_DOCUMENTS, {"$XDSDocumentEntryStatus": APPROVED})) == [
        "XDSStoredQueryMissingParam"]
    assert error_codes(query(conn, FIND_DOCUMENTS, {
        "$XDSDocumentEntryPatientId": [PATIENT, "x"],
        "$XDSDocumentEntryStatus": APPROVED})) == ["XDSStoredQueryParamNumber"]


def test_official_query_samples(conn):
    """If the sloppy IHE sample is run, then it is read (id with spaces) and finds nothing
    (its status is no StatusType); the IPF sample, whose patientId carries an unclosed quote
    and an SQL injection, is refused as XDSRegistryError and injects nothing."""
    ihe = stored_query(conn, sample_body("xds/examples/ihe/RegistryStoredQueryRequest.xml"))
    assert_valid("query", ihe)
    assert (ihe.get("status"), ids(ihe)) == (RESPONSE_SUCCESS, [])
    ipf = stored_query(conn, sample_body("xds/examples/ipf/iti18request.xml"))
    assert_valid("query", ipf)
    assert error_codes(ipf) == ["XDSRegistryError"]
    assert "not closed" in read_registry_response(ipf).errors[0].code_context


def test_submission_with_a_folder_and_its_contents(registry_engine):
    """If a submission with a Folder holding its document is provided, then
    GetSubmissionSetAndContents answers the set, the document, the folder and the four
    associations (the folder's membership included), valid against query.xsd."""
    submission = builders.submission(folder=True)
    with registry_engine.connect() as conn:
        provide(conn, submission)
        found = read_submission(query(conn, GET_SUBMISSION_SET_AND_CONTENTS, {
            "$XDSSubmissionSetUniqueId": "1.2.250.1.999.2.1"}).find(rim("RegistryObjectList")))
        assert [f.unique_id for f in found.folders] == ["1.2.250.1.999.3.1"]
        assert len(found.documents) == 1 and len(found.associations) == 4
        folder, document = found.folders[0].entry_uuid, found.documents[0].entry_uuid
        assert (folder, document) in [(a.source, a.target) for a in found.associations]
        folder_link = query(conn, GET_ASSOCIATIONS, {"$uuid": [found.folders[0].entry_uuid]})
        assert len(ids(folder_link)) == 2
