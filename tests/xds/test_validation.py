"""XDS.b metadata validation: each broken rule gives its standard code and a useful message."""
from __future__ import annotations

import dataclasses
import hashlib

import pytest

from tests.xds.builders import DOCUMENT_BYTES, submission
from xds.metadata import errors as codes
from xds.metadata.content import check_documents
from xds.metadata.errors import RegistryError
from xds.metadata.model import Association, Code
from xds.metadata.validation import Actor, Profile, check_registered, validate
from xds.metadata.vocabulary import SEVERITY_ERROR
from xds.soap.documents import InlineDocument


def only(errors: list[RegistryError]) -> RegistryError:
    assert len(errors) == 1, errors
    return errors[0]


def test_valid_submission_has_no_findings():
    """If every attribute is present and well-formed, then the list is empty."""
    assert validate(submission(3, folder=True)) == []


@pytest.mark.parametrize("attribute, name", [
    ("creation_time", "creationTime"), ("language_code", "languageCode"),
    ("mime_type", "mimeType"), ("patient_id", "patientId"), ("unique_id", "uniqueId"),
    ("source_patient_id", "sourcePatientId"), ("object_type", "objectType"),
])
def test_missing_required_document_attribute(attribute, name):
    """If a required DocumentEntry attribute is missing, then XDSRegistryMetadataError names it
    and the entry, with the entry as location."""
    sub = submission()
    setattr(sub.documents[0], attribute, "")
    error = only(validate(sub))
    assert error.error_code == codes.REGISTRY_METADATA_ERROR
    assert error.code_context == f"DocumentEntry 'Document01': {name} is required and missing"
    assert error.location == "Document01"
    assert error.severity == SEVERITY_ERROR


@pytest.mark.parametrize("attribute, name", [
    ("class_code", "classCode"), ("type_code", "typeCode"), ("format_code", "formatCode"),
    ("healthcare_facility_type_code", "healthcareFacilityTypeCode"),
    ("practice_setting_code", "practiceSettingCode"),
])
def test_missing_required_code(attribute, name):
    """If a required code is missing, then the message names it."""
    sub = submission()
    setattr(sub.documents[0], attribute, None)
    assert f"{name} is required and missing" in only(validate(sub)).code_context


def test_missing_confidentiality_and_incomplete_code():
    """If confidentialityCode is absent or a code lacks its codingScheme, then both are reported."""
    sub = submission()
    sub.documents[0].confidentiality_codes = []
    sub.documents[0].type_code = Code("11490-0", "")
    contexts = [e.code_context for e in validate(sub)]
    assert contexts == ["DocumentEntry 'Document01': typeCode '11490-0' has no codingScheme slot",
                        "DocumentEntry 'Document01': confidentialityCode is required and missing"]


def test_repository_profile_requires_hash_size_and_repository():
    """If a Repository registers (ITI-42) without hash, size, repositoryUniqueId, then each is
    missing; a Document Source may omit them."""
    sub = submission()
    sub.documents[0].hash = sub.documents[0].size = ""
    assert validate(sub) == []
    contexts = [e.code_context for e in validate(sub, profile=Profile.REPOSITORY)]
    assert [c.split(": ")[1] for c in contexts] == [
        "hash is required and missing", "size is required and missing",
        "repositoryUniqueId is required and missing"]


def test_xdm_profile_needs_uri_but_not_codes():
    """If XDM metadata lacks the URI, then it is reported; missing codes are only R2 there."""
    sub = submission()
    sub.documents[0].class_code = None
    error = only(validate(sub, profile=Profile.XDM))
    assert error.code_context.endswith("URI is required and missing")


def test_repository_actor_uses_repository_codes():
    """If the repository detects the problem, then the code is XDSRepositoryMetadataError."""
    sub = submission()
    sub.documents[0].creation_time = "2019-12-03"
    error = only(validate(sub, actor=Actor.REPOSITORY))
    assert error.error_code == codes.REPOSITORY_METADATA_ERROR
    assert "creationTime '2019-12-03' is not YYYY" in error.code_context


@pytest.mark.parametrize("attribute, value, fragment", [
    ("hash", "abc", "hash 'abc' is not a SHA-1"),
    ("size", "12k", "size '12k' is not a whole number"),
    ("patient_id", "123", "patientId '123' "),
    ("source_patient_id", "^^^&1.2.3&ISO", "sourcePatientId '^^^&1.2.3&ISO' has no identifier"),
    ("legal_authenticator", "^^John", "legalAuthenticator '^^John' has neither"),
    ("unique_id", "1.2.3^" + "x" * 20, "has an extension of 20"),
    ("service_stop_time", "20191001", "serviceStartTime 20191029101700 is after"),
    ("language_code", "fr FR", "languageCode 'fr FR' is not a language tag"),
    ("object_type", "urn:uuid:00000000-0000-0000-0000-000000000000", "objectType"),
    ("entry_uuid", "urn:uuid:zz", "entryUUID 'urn:uuid:zz' starts with urn:uuid: but"),
])
def test_malformed_document_values(attribute, value, fragment):
    """If a value has the wrong format, then the finding quotes the value and the rule."""
    sub = submission()
    setattr(sub.documents[0], attribute, value)
    if attribute == "patient_id":
        sub.submission_sets[0].patient_id = value
    if attribute == "entry_uuid":
        sub.associations[0].target = value
    contexts = " | ".join(e.code_context for e in validate(sub))
    assert fragment in contexts


def test_malformed_author():
    """If an author's XCN or XON is malformed, or the author is empty, then each is reported."""
    sub = submission()
    sub.documents[0].authors[0].person = "^^Charles"
    sub.documents[0].authors[0].institutions = ["^^^^^&1.2.3&ISO"]
    sub.submission_sets[0].authors[0] = dataclasses.replace(
        sub.submission_sets[0].authors[0], person="", institutions=[], roles=[], specialties=[])
    contexts = [e.code_context for e in validate(sub)]
    assert any("authorPerson '^^Charles'" in c for c in contexts)
    assert any("authorInstitution '^^^^^&1.2.3&ISO' has no organisation name" in c
               for c in contexts)
    assert any(c.startswith("SubmissionSet 'SubmissionSet01': an author has none") for c in contexts)


def test_single_valued_slot_sent_twice():
    """If creationTime carries two values, then the reader keeps both and validation says so
    (once: not also as missing)."""
    sub = submission()
    sub.documents[0].creation_time = ""
    sub.documents[0].extra_slots["creationTime"] = ["20191203", "20191204"]
    contexts = [e.code_context for e in validate(sub)]
    assert contexts == ["DocumentEntry 'Document01': slot creationTime must have one value, it has 2"]


def test_patient_id_mismatch():
    """If a DocumentEntry or Folder is about another patient, then XDSPatientIdDoesNotMatch
    names both identifiers."""
    sub = submission(2, folder=True)
    sub.documents[1].patient_id = "999^^^&1.2.250.1.213.1.4.10&ISO^NH"
    sub.folders[0].patient_id = "999^^^&1.2.250.1.213.1.4.10&ISO^NH"
    errors = validate(sub)
    assert [e.error_code for e in errors] == [codes.PATIENT_ID_DOES_NOT_MATCH] * 2
    assert errors[0].code_context == (
        "DocumentEntry 'Document02': patientId '999^^^&1.2.250.1.213.1.4.10&ISO^NH' differs from"
        " the SubmissionSet's '279035121518989^^^&1.2.250.1.213.1.4.10&ISO^NH'")
    assert errors[1].location == "Folder01"


def test_duplicate_unique_id_in_message_and_in_registry():
    """If two entries share a uniqueId, then each gets the DuplicateUniqueIdInMessage code of the
    detecting actor; a SubmissionSet uniqueId the registry holds is XDSDuplicateUniqueIdInRegistry."""
    sub = submission(2)
    sub.documents[1].unique_id = sub.documents[0].unique_id
    errors = validate(sub, actor=Actor.REPOSITORY)
    assert [e.error_code for e in errors] == [codes.REPOSITORY_DUPLICATE_UNIQUE_ID_IN_MESSAGE] * 2
    assert "appears 2 times" in errors[0].code_context
    sub = submission()
    error = only(validate(sub, known_unique_ids={"1.2.250.1.999.2.1"}))
    assert error.error_code == codes.DUPLICATE_UNIQUE_ID_IN_REGISTRY


def test_check_registered_is_what_validate_leaves_to_the_registry():
    """If a submission validated at the endpoint skipped the registry's own check, then a
    reused SubmissionSet or Folder uniqueId would be stored; its metadata errors are not
    looked for again (the endpoint found them)."""
    sub = submission(folder=True)
    known = {sub.submission_sets[0].unique_id, sub.folders[0].unique_id}
    errors = check_registered(sub, known)
    assert [e.error_code for e in errors] == [codes.DUPLICATE_UNIQUE_ID_IN_REGISTRY] * 2
    assert [e.location for e in errors] == [sub.submission_sets[0].entry_uuid,
                                            sub.folders[0].entry_uuid]
    sub.documents[0].mime_type = ""  # a metadata error validate() reports
    assert check_registered(sub, set()) == []
    assert "mimeType is required" in only(validate(sub)).code_context


def test_submission_set_count_and_required_attributes():
    """If there is no SubmissionSet, or one lacks its attributes, then each is reported."""
    sub = submission()
    sub.submission_sets[0].source_id = ""
    sub.submission_sets[0].content_type_code = None
    sub.submission_sets[0].unique_id = "1.2.3^x"
    contexts = [e.code_context for e in validate(sub)]
    assert contexts == [
        "SubmissionSet 'SubmissionSet01': sourceId is required and missing",
        "SubmissionSet 'SubmissionSet01': contentTypeCode is required and missing",
        "SubmissionSet 'SubmissionSet01': uniqueId '1.2.3^x' must be a plain OID (no ^extension)"]
    sub.submission_sets.clear()
    assert "exactly one SubmissionSet, this one has 0" in validate(sub)[0].code_context


def test_folder_rules():
    """If a Folder has no codeList or title, then both are reported."""
    sub = submission(folder=True)
    sub.folders[0].codes = []
    sub.folders[0].title = ""
    contexts = [e.code_context for e in validate(sub)]
    assert contexts == ["Folder 'Folder01': title is required and missing",
                        "Folder 'Folder01': codeList is required and missing"]


def test_association_rules():
    """If an association has an unknown type, a dangling end, or a HasMember without
    SubmissionSetStatus, then each is reported with its own code."""
    sub = submission(2)
    sub.associations[0].extra_slots = {}
    sub.associations.append(Association("as9", association_type="urn:bad", source="Document01",
                                        target="Nowhere"))
    errors = validate(sub)
    assert [(e.error_code, e.location) for e in errors] == [
        (codes.REGISTRY_METADATA_ERROR, "as01"),
        (codes.REGISTRY_METADATA_ERROR, "as9"),
        (codes.UNRESOLVED_REFERENCE, "as9"),
    ]
    assert "SubmissionSetStatus must be Original or Reference, not ''" in errors[0].code_context
    assert "targetObject 'Nowhere' is neither in this submission" in errors[2].code_context


def test_document_not_member_of_submission_set():
    """If no HasMember links the SubmissionSet to a DocumentEntry, then that is reported."""
    sub = submission(2)
    del sub.associations[1]
    assert "is not a member of the SubmissionSet" in only(validate(sub)).code_context


def test_reference_to_existing_document_is_allowed():
    """If a HasMember targets a registry urn:uuid with status Reference, then it is accepted."""
    sub = submission()
    sub.associations.append(Association(
        "as2", source="SubmissionSet01", target="urn:uuid:e0985823-dc50-45a5-a6c8-a11a829893bd",
        extra_slots={"SubmissionSetStatus": ["Reference"]}))
    assert validate(sub) == []


def test_reading_problems_are_reported():
    """If the reader could not place an object, then validation reports it first."""
    sub = submission()
    sub.reading_problems.append(RegistryError(codes.REGISTRY_METADATA_ERROR, "odd package", "p"))
    assert validate(sub)[0].code_context == "odd package"


def test_document_content_checks():
    """If a document's hash or size differ from its entry, then XDSRepositoryMetadataError says
    both values; a missing document or entry gets its own code."""
    sub = submission(2)
    good = InlineDocument(DOCUMENT_BYTES)
    assert check_documents(sub, {"Document01": good, "Document02": good}) == []
    tampered = InlineDocument(DOCUMENT_BYTES + b" ")
    errors = check_documents(sub, {"Document01": tampered, "Stray": good})
    assert [(e.error_code, e.location) for e in errors] == [
        (codes.REPOSITORY_METADATA_ERROR, "Document01"),
        (codes.REPOSITORY_METADATA_ERROR, "Document01"),
        (codes.MISSING_DOCUMENT, "Document02"),
        (codes.MISSING_DOCUMENT_METADATA, "Stray"),
    ]
    assert errors[0].code_context == (
        f"DocumentEntry 'Document01': hash {hashlib.sha1(DOCUMENT_BYTES).hexdigest()} does not"
        f" match the document's SHA-1 {tampered.sha1}")
    assert f"size {len(DOCUMENT_BYTES)} does not match the document's " \
           f"{len(DOCUMENT_BYTES) + 1} octets" in errors[1].code_context


def test_text_xml_cannot_carry_is_reported_before_writing():
    """If a value holds a control character (from HL7 v2 input, say), then validation names
    the attribute and the character, instead of the writer failing later."""
    sub = submission()
    sub.documents[0].authors[0].roles = ["Médecin\x1c"]
    sub.documents[0].extra_slots["x"] = ["ok", "\ufffe"]
    contexts = [e.code_context for e in validate(sub)]
    assert contexts == [
        "DocumentEntry 'Document01': extra_slots['x'][1] '\\ufffe' contains U+FFFE,"
        " a character XML cannot carry",
        "DocumentEntry 'Document01': authors[0].roles[0] 'Médecin\\x1c' contains U+001C,"
        " a character XML cannot carry"]
    # a submission read from XML cannot hold such a string: the walk is not made for it
    assert validate(sub, read_from_xml=True) == []
