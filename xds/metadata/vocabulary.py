"""
The one definition of every XDS.b metadata UUID, URN, slot name and status
(ITI TF-3 §4.2.5, as summarised in shared/standards/NOTES.md §1.4-1.7).

Classification schemes and external identifier schemes are keyed by the
attribute they carry so that the reader and the writer share one table.

test-case-name: tests.xds.test_metadata_xml
"""
from __future__ import annotations

# --- objectType / classificationNode -----------------------------------------
STABLE_DOCUMENT_ENTRY = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"
ON_DEMAND_DOCUMENT_ENTRY = "urn:uuid:34268e47-fdf5-41a6-ba33-82133c465248"
DOCUMENT_ENTRY_TYPES = (STABLE_DOCUMENT_ENTRY, ON_DEMAND_DOCUMENT_ENTRY)
SUBMISSION_SET_NODE = "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"
FOLDER_NODE = "urn:uuid:d9d542f3-6cc4-48b6-8870-ea235fbc94c2"
ASSOCIATION_DOCUMENTATION = "urn:uuid:abd807a3-4432-4053-87b4-fd82c643d1f3"

_OBJECT = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:"
OBJECT_TYPE_CLASSIFICATION = _OBJECT + "Classification"
OBJECT_TYPE_EXTERNAL_IDENTIFIER = _OBJECT + "ExternalIdentifier"
OBJECT_TYPE_REGISTRY_PACKAGE = _OBJECT + "RegistryPackage"
OBJECT_TYPE_ASSOCIATION = _OBJECT + "Association"

# --- availability status ------------------------------------------------------
STATUS_APPROVED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
STATUS_DEPRECATED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Deprecated"
#: Stored query ids (ITI TF-2 §3.18.4.1.2.3.7) a Document Consumer sends.
FIND_DOCUMENTS = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
GET_DOCUMENTS = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"

# --- coded attributes: attribute name -> classification scheme ----------------
DOCUMENT_ENTRY_CODES = {
    "classCode": "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a",
    "confidentialityCode": "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f",
    "eventCodeList": "urn:uuid:2c6b8cb7-8b2a-4051-b291-b1ae6a575ef4",
    "formatCode": "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d",
    "healthcareFacilityTypeCode": "urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1",
    "practiceSettingCode": "urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead",
    "typeCode": "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983",
}
SUBMISSION_SET_CODES = {"contentTypeCode": "urn:uuid:aa543740-bdda-424e-8c96-df4873be8500"}
FOLDER_CODES = {"codeList": "urn:uuid:1ba97051-7806-41a8-a48b-8fce7af683c5"}

DOCUMENT_ENTRY_AUTHOR = "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d"
SUBMISSION_SET_AUTHOR = "urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d"

# --- external identifiers: attribute -> (scheme, rim:Name) --------------------
DOCUMENT_ENTRY_IDS = {
    "patientId": ("urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427", "XDSDocumentEntry.patientId"),
    "uniqueId": ("urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab", "XDSDocumentEntry.uniqueId"),
}
SUBMISSION_SET_IDS = {
    "patientId": ("urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446", "XDSSubmissionSet.patientId"),
    "sourceId": ("urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832", "XDSSubmissionSet.sourceId"),
    "uniqueId": ("urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8", "XDSSubmissionSet.uniqueId"),
}
FOLDER_IDS = {
    "patientId": ("urn:uuid:f64ffdf0-4b97-4e06-b79f-a52b38ec2f8a", "XDSFolder.patientId"),
    "uniqueId": ("urn:uuid:75df8f67-9973-4fbe-a900-df66cefecc5a", "XDSFolder.uniqueId"),
}

# --- slots ---------------------------------------------------------------------
CODING_SCHEME_SLOT = "codingScheme"
AUTHOR_SLOTS = ("authorPerson", "authorInstitution", "authorRole", "authorSpecialty",
                "authorTelecommunication")
#: A misspelling found in real senders' metadata (IPF's sample), read as authorSpecialty.
AUTHOR_SPECIALTY_ALIAS = "authorSpeciality"
SUBMISSION_SET_STATUS_SLOT = "SubmissionSetStatus"
REFERENCE_ID_LIST_SLOT = "urn:ihe:iti:xds:2013:referenceIdList"

# --- associations --------------------------------------------------------------
HAS_MEMBER = "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"
RPLC = "urn:ihe:iti:2007:AssociationType:RPLC"
APND = "urn:ihe:iti:2007:AssociationType:APND"
XFRM = "urn:ihe:iti:2007:AssociationType:XFRM"
XFRM_RPLC = "urn:ihe:iti:2007:AssociationType:XFRM_RPLC"
SIGNS = "urn:ihe:iti:2007:AssociationType:signs"
IS_SNAPSHOT_OF = "urn:ihe:iti:2010:AssociationType:IsSnapshotOf"
UPDATE_AVAILABILITY_STATUS = "urn:ihe:iti:2010:AssociationType:UpdateAvailabilityStatus"
ASSOCIATION_TYPES = (HAS_MEMBER, RPLC, APND, XFRM, XFRM_RPLC, SIGNS, IS_SNAPSHOT_OF,
                     UPDATE_AVAILABILITY_STATUS)
#: Legacy short spellings (ebRS 2.1 era, still in IHE's own examples) -> full URN.
LEGACY_ASSOCIATION_TYPES = {"HasMember": HAS_MEMBER, "RPLC": RPLC, "APND": APND,
                            "XFRM": XFRM, "XFRM_RPLC": XFRM_RPLC, "signs": SIGNS}

# --- response status and error severity ----------------------------------------
RESPONSE_SUCCESS = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
RESPONSE_PARTIAL_SUCCESS = "urn:ihe:iti:2007:ResponseStatusType:PartialSuccess"
RESPONSE_FAILURE = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"
SEVERITY_ERROR = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"
SEVERITY_WARNING = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Warning"

# --- SOAP actions (NOTES.md §1.1) ------------------------------------------------
ACTION_PNR = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"
ACTION_REGISTER = "urn:ihe:iti:2007:RegisterDocumentSet-b"
ACTION_STORED_QUERY = "urn:ihe:iti:2007:RegistryStoredQuery"
ACTION_RETRIEVE = "urn:ihe:iti:2007:RetrieveDocumentSet"


def response_action(action: str) -> str:
    """The wsa:Action of the response to a request action (``...Response``)."""
    return action + "Response"
