"""
How each XDS object is laid out in ebRIM: which slot, classification and
external identifier carries which model attribute. One table per kind of
object, shared by the reader and the writer so that the two cannot drift.

Single-valued slots map to a ``str`` attribute; a peer that sends several
values in one of them keeps them all in ``extra_slots`` (validation then says
the slot must have one value). Multi-valued slots map to a ``list[str]``.

test-case-name: tests.xds.test_metadata_xml
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

from xds.metadata.vocabulary import (
    DOCUMENT_ENTRY_AUTHOR, DOCUMENT_ENTRY_CODES, DOCUMENT_ENTRY_IDS, FOLDER_CODES, FOLDER_IDS,
    REFERENCE_ID_LIST_SLOT, SUBMISSION_SET_AUTHOR, SUBMISSION_SET_CODES, SUBMISSION_SET_IDS,
)

DOCUMENT_ENTRY_SINGLE = {
    "creationTime": "creation_time",
    "serviceStartTime": "service_start_time",
    "serviceStopTime": "service_stop_time",
    "languageCode": "language_code",
    "sourcePatientId": "source_patient_id",
    "legalAuthenticator": "legal_authenticator",
    "hash": "hash",
    "size": "size",
    "repositoryUniqueId": "repository_unique_id",
    "URI": "uri",
    "documentAvailability": "document_availability",
}
DOCUMENT_ENTRY_MULTI = {
    "sourcePatientInfo": "source_patient_info",
    REFERENCE_ID_LIST_SLOT: "reference_ids",
}
SUBMISSION_SET_SINGLE = {"submissionTime": "submission_time"}
SUBMISSION_SET_MULTI = {"intendedRecipient": "intended_recipients"}
FOLDER_SINGLE = {"lastUpdateTime": "last_update_time"}
FOLDER_MULTI: dict[str, str] = {}

#: Author slot name -> Author attribute (authorPerson is single-valued).
AUTHOR_MULTI = {
    "authorInstitution": "institutions",
    "authorRole": "roles",
    "authorSpecialty": "specialties",
    "authorTelecommunication": "telecommunications",
}

#: DocumentEntry code attributes: scheme name -> (model attribute, repeats?).
DOCUMENT_ENTRY_CODE_FIELDS = {
    "classCode": ("class_code", False),
    "confidentialityCode": ("confidentiality_codes", True),
    "eventCodeList": ("event_codes", True),
    "formatCode": ("format_code", False),
    "healthcareFacilityTypeCode": ("healthcare_facility_type_code", False),
    "practiceSettingCode": ("practice_setting_code", False),
    "typeCode": ("type_code", False),
}
SUBMISSION_SET_CODE_FIELDS = {"contentTypeCode": ("content_type_code", False)}
FOLDER_CODE_FIELDS = {"codeList": ("codes", True)}

#: External identifier name -> model attribute (same for the three kinds).
IDENTIFIER_FIELDS = {"patientId": "patient_id", "uniqueId": "unique_id", "sourceId": "source_id"}


@dataclass(frozen=True)
class Layout:
    """The ebRIM layout of one kind of XDS object."""

    codes: dict[str, str]                    # code name -> classification scheme
    code_fields: dict[str, tuple[str, bool]]  # code name -> (attribute, repeats?)
    identifiers: dict[str, tuple[str, str]]   # identifier name -> (scheme, rim:Name)
    author_scheme: str | None
    single_slots: dict[str, str]
    multi_slots: dict[str, str]

    def code_name(self, scheme: str) -> str | None:
        """The code attribute a classification scheme carries, if any."""
        return self._code_names.get(scheme)

    def identifier_name(self, scheme: str) -> str | None:
        """The identifier attribute an identification scheme carries, if any."""
        return self._identifier_names.get(scheme)

    @functools.cached_property
    def _code_names(self) -> dict[str, str]:
        """Scheme -> code name (the first, as a scan of :attr:`codes` would find it)."""
        return {uuid: name for name, uuid in reversed(self.codes.items())}

    @functools.cached_property
    def _identifier_names(self) -> dict[str, str]:
        """Scheme -> identifier name (the first, as a scan would find it)."""
        return {uuid: name for name, (uuid, _) in reversed(self.identifiers.items())}


DOCUMENT_ENTRY = Layout(DOCUMENT_ENTRY_CODES, DOCUMENT_ENTRY_CODE_FIELDS, DOCUMENT_ENTRY_IDS,
                        DOCUMENT_ENTRY_AUTHOR, DOCUMENT_ENTRY_SINGLE, DOCUMENT_ENTRY_MULTI)
SUBMISSION_SET = Layout(SUBMISSION_SET_CODES, SUBMISSION_SET_CODE_FIELDS, SUBMISSION_SET_IDS,
                        SUBMISSION_SET_AUTHOR, SUBMISSION_SET_SINGLE, SUBMISSION_SET_MULTI)
FOLDER = Layout(FOLDER_CODES, FOLDER_CODE_FIELDS, FOLDER_IDS, None, FOLDER_SINGLE, FOLDER_MULTI)
