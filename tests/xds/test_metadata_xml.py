"""ebRIM reading and writing: what is written reads back equal, and senders' quirks are read."""
from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from tests.xds.builders import counter_ids, submission
from xds.metadata import errors as codes
from xds.metadata.errors import MetadataError
from xds.metadata.reading import read_submission
from xds.metadata.writing import new_uuid, registry_object_list, submit_objects_request
from xds.metadata.vocabulary import (
    DOCUMENT_ENTRY_IDS, FOLDER_NODE, HAS_MEMBER, SUBMISSION_SET_NODE,
)
from xds.namespaces import LCM, RIM, rim
from xds.safexml import parse_xml, to_bytes

NS = {"rim": RIM, "lcm": LCM}


def test_round_trip_keeps_every_attribute():
    """If a full submission is written and read back, then it is equal, extra slots included."""
    original = submission(2, folder=True)
    written = submit_objects_request(original, counter_ids())
    again = read_submission(parse_xml(to_bytes(written)))
    assert again == original
    assert again.documents[0].extra_slots == {"urn:example:custom": ["kept"]}


def test_written_layout():
    """If a submission is written, then ids come from new_id, codes carry a codingScheme slot,
    identifiers their XDS names, and the SubmissionSet and Folder classifications stand beside
    their packages."""
    written = submit_objects_request(submission(folder=True), counter_ids())
    extrinsic = written.find("rim:RegistryObjectList/rim:ExtrinsicObject", NS)
    type_code = extrinsic.find("rim:Classification[@nodeRepresentation='11490-0']", NS)
    # author, classCode, confidentialityCode, eventCodeList, formatCode, facility, practice, type
    assert type_code.get("id") == "urn:uuid:00000000-0000-4000-8000-000000000008"
    assert type_code.findtext("rim:Slot[@name='codingScheme']/rim:ValueList/rim:Value",
                              namespaces=NS) == "2.16.840.1.113883.6.1"
    patient = extrinsic.find(
        f"rim:ExternalIdentifier[@identificationScheme='{DOCUMENT_ENTRY_IDS['patientId'][0]}']", NS)
    assert patient.find("rim:Name/rim:LocalizedString", NS).get("value") == \
        "XDSDocumentEntry.patientId"
    nodes = {c.get("classifiedObject"): c.get("classificationNode")
             for c in written.findall("rim:RegistryObjectList/rim:Classification", NS)}
    assert nodes == {"SubmissionSet01": SUBMISSION_SET_NODE, "Folder01": FOLDER_NODE}
    children = [etree.QName(c).localname for c in extrinsic]
    assert children.index("Slot") < children.index("Name") < children.index("Classification") \
        < children.index("ExternalIdentifier")


def _objects(xml: str) -> etree._Element:
    return parse_xml(f'<rim:RegistryObjectList xmlns:rim="{RIM}">{xml}</rim:RegistryObjectList>'
                     .encode())


def test_submission_set_classification_inside_the_package():
    """If the SubmissionSet classification is inside its RegistryPackage, then it is recognised."""
    sub = read_submission(_objects(
        f'<rim:RegistryPackage id="ss"><rim:Classification id="c" classifiedObject="ss"'
        f' classificationNode="{SUBMISSION_SET_NODE}"/></rim:RegistryPackage>'))
    assert [s.entry_uuid for s in sub.submission_sets] == ["ss"]


def test_senders_quirks_are_read_as_meant():
    """If scheme UUIDs contain spaces, associations use the ebRS 2.1 short type, and authors
    say authorSpeciality, then the values land where they were meant."""
    sub = read_submission(_objects(
        '<rim:ExtrinsicObject id="d" mimeType="text/xml" objectType="urn:uuid:7edca82f-054d-47f2-'
        'a032- 9b2a5b5186c1"><rim:Classification id="a" classifiedObject="d" classificationScheme='
        '"urn:uuid:93606bcf-9494-43ec-9b4e- a7748d1a838d"><rim:Slot name="authorSpeciality">'
        '<rim:ValueList><rim:Value>Ortho</rim:Value></rim:ValueList></rim:Slot>'
        '</rim:Classification><rim:ExternalIdentifier id="e" registryObject="d" '
        'identificationScheme="urn:uuid:58a6f841-87b3-4a3e-92fd- a8ffeff98427" value="P^^^&amp;'
        '1.2&amp;ISO"/></rim:ExtrinsicObject><rim:Association id="x" associationType="HasMember"'
        ' sourceObject="ss" targetObject="d"/>'))
    document = sub.documents[0]
    assert document.object_type == "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"
    assert document.authors[0].specialties == ["Ortho"]
    assert document.patient_id == "P^^^&1.2&ISO"
    assert sub.associations[0].association_type == HAS_MEMBER


def test_unclassified_package_is_a_reading_problem():
    """If a RegistryPackage is neither SubmissionSet nor Folder, then reading records a
    XDSRegistryMetadataError naming it instead of guessing."""
    sub = read_submission(_objects('<rim:RegistryPackage id="mystery"/>'))
    problem = sub.reading_problems[0]
    assert problem.error_code == codes.REGISTRY_METADATA_ERROR
    assert problem.location == "mystery"
    assert "RegistryPackage 'mystery' is neither" in problem.code_context


def test_no_registry_object_list_raises():
    """If the request holds no RegistryObjectList, then MetadataError says so."""
    with pytest.raises(MetadataError, match="no rim:RegistryObjectList in SubmitObjectsRequest"):
        read_submission(parse_xml(f'<lcm:SubmitObjectsRequest xmlns:lcm="{LCM}"/>'.encode()))


def test_object_refs_round_trip():
    """If the submission references registry objects, then the ObjectRefs are written back."""
    original = submission()
    original.object_refs.append("urn:uuid:e0985823-dc50-45a5-a6c8-a11a829893bd")
    written = registry_object_list(original, counter_ids())
    assert written[-1].tag == rim("ObjectRef")
    assert read_submission(written).object_refs == original.object_refs

TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"),
                             include_characters="\t\n\r"), max_size=12)


@settings(max_examples=80, deadline=None)
@given(title=TEXT, comments=TEXT, display=TEXT, role=TEXT,
       slots=st.dictionaries(st.from_regex(r"x-[a-z]{1,6}", fullmatch=True),
                             st.lists(TEXT, max_size=3), max_size=3))
def test_any_text_round_trips(title, comments, display, role, slots):
    """If names, codes, author slots and extra slots hold any text XML can carry (tabs, CR,
    markup characters, non-Latin scripts), then writing and reading gives them back unchanged."""
    original = submission(folder=True)
    document = original.documents[0]
    document.title, document.comments = title, comments
    document.type_code.display = display
    document.authors[0].roles = [role]
    document.extra_slots = slots
    original.folders[0].comments = comments
    again = read_submission(parse_xml(to_bytes(submit_objects_request(original, counter_ids()))))
    assert again == original


def test_single_valued_slot_with_several_values_is_kept_for_validation():
    """If a sender puts two values in creationTime, then the reader keeps both in extra_slots
    (the attribute stays empty) so that validation can say so."""
    sub = read_submission(_objects(
        '<rim:ExtrinsicObject id="d"><rim:Slot name="creationTime"><rim:ValueList>'
        '<rim:Value>2019</rim:Value><rim:Value>2020</rim:Value></rim:ValueList></rim:Slot>'
        '</rim:ExtrinsicObject>'))
    assert sub.documents[0].creation_time == ""
    assert sub.documents[0].extra_slots == {"creationTime": ["2019", "2020"]}


def test_new_uuid_is_a_random_version_4_urn():
    """If the version or variant bits were wrong, then a peer checking RFC 4122 would
    refuse the ids; if they repeated, objects would collide."""
    made = [new_uuid() for _ in range(2000)]
    assert len(set(made)) == len(made)
    for value in made:
        assert value.startswith("urn:uuid:")
        parsed = uuid.UUID(value[len("urn:uuid:"):])
        assert (parsed.version, parsed.variant, parsed.urn) == (4, uuid.RFC_4122, value)
