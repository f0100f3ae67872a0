"""
A registered submission as table rows: symbolic ids replaced by ``urn:uuid``
ids, and each object's query columns and ebRIM XML.

Pure functions: the register module decides what is accepted, this one only
says how an accepted object is kept.

test-case-name: tests.xds.test_registry_register
"""
from __future__ import annotations

import uuid
from typing import Callable

from xds.metadata.model import (
    Code, DocumentEntry, Folder, RegistryEntry, Submission, SubmissionSet, copied,
)
from xds.metadata.vocabulary import STATUS_APPROVED
from xds.metadata.writing import new_uuid, registry_object_list_bytes

_UUID_PREFIX = "urn:uuid:"


def is_uuid(value: str) -> bool:
    """True for a ``urn:uuid:`` id naming a registry object (not a symbolic id)."""
    if not value.startswith(_UUID_PREFIX):
        return False
    try:
        uuid.UUID(value[len(_UUID_PREFIX):])
    except ValueError:
        return False
    return True


def assign_uuids(submission: Submission, new_id: Callable[[], str] = new_uuid
                 ) -> tuple[Submission, dict[str, str]]:
    """A copy of *submission* whose symbolic ids are ``urn:uuid`` ids, and the mapping.

    Association ends that name a symbolic id of the submission follow; ends
    that are already ``urn:uuid`` ids name registry objects and stay.
    """
    mapping: dict[str, str] = {}
    for entry in [*submission.submission_sets, *submission.documents, *submission.folders,
                  *submission.associations]:
        if not is_uuid(entry.entry_uuid):
            mapping[entry.entry_uuid] = new_id()

    def renamed(entry):
        return copied(entry, entry_uuid=mapping.get(entry.entry_uuid, entry.entry_uuid))

    associations = [copied(renamed(a), source=mapping.get(a.source, a.source),
                            target=mapping.get(a.target, a.target))
                    for a in submission.associations]
    return copied(submission,
                   submission_sets=[renamed(s) for s in submission.submission_sets],
                   documents=[renamed(d) for d in submission.documents],
                   folders=[renamed(f) for f in submission.folders],
                   associations=associations), mapping


def code_value(code: Code | None) -> str | None:
    """``code^^scheme``, the form of code parameters in stored queries."""
    return f"{code.code}^^{code.scheme}" if code is not None else None


def object_xml(entry: RegistryEntry, new_id: Callable[[], str] = new_uuid) -> bytes:
    """The ebRIM XML of one object (with its package classification), as kept."""
    if isinstance(entry, DocumentEntry):
        holder = Submission(documents=[entry])
    elif isinstance(entry, SubmissionSet):
        holder = Submission(submission_sets=[entry])
    elif isinstance(entry, Folder):
        holder = Submission(folders=[entry])
    else:
        holder = Submission(associations=[entry])
    return registry_object_list_bytes(holder, new_id)


def submission_set_row(entry: SubmissionSet) -> dict:
    """The xds_submission_sets row of an accepted SubmissionSet."""
    authors = [author.person for author in entry.authors if author.person]
    return {"entry_uuid": entry.entry_uuid, "unique_id": entry.unique_id,
            "patient_id": entry.patient_id, "source_id": entry.source_id,
            "submission_time": entry.submission_time,
            "content_type_code": code_value(entry.content_type_code),
            "status": STATUS_APPROVED, "author_person": authors[0] if authors else None,
            "xml": object_xml(copied(entry, availability_status=STATUS_APPROVED))}


def document_row(entry: DocumentEntry) -> dict:
    """The xds_document_entries row of an accepted DocumentEntry."""
    return {"entry_uuid": entry.entry_uuid, "unique_id": entry.unique_id,
            "patient_id": entry.patient_id, "status": STATUS_APPROVED,
            "object_type": entry.object_type,
            "class_code": code_value(entry.class_code), "type_code": code_value(entry.type_code),
            "practice_setting_code": code_value(entry.practice_setting_code),
            "healthcare_facility_type_code": code_value(entry.healthcare_facility_type_code),
            "format_code": code_value(entry.format_code),
            "creation_time": entry.creation_time or None,
            "service_start_time": entry.service_start_time or None,
            "service_stop_time": entry.service_stop_time or None,
            "repository_unique_id": entry.repository_unique_id or None,
            "hash": entry.hash.lower() or None, "size": int(entry.size) if entry.size else None,
            "mime_type": entry.mime_type,
            "xml": object_xml(copied(entry, availability_status=STATUS_APPROVED))}


def document_value_rows(entry: DocumentEntry) -> list[dict]:
    """The xds_document_values rows: event codes, confidentiality codes, author persons."""
    values = {("eventCodeList", code_value(c)) for c in entry.event_codes}
    values |= {("confidentialityCode", code_value(c)) for c in entry.confidentiality_codes}
    values |= {("authorPerson", a.person) for a in entry.authors if a.person}
    return [{"entry_uuid": entry.entry_uuid, "name": name, "value": value}
            for name, value in sorted(values)]


def folder_row(entry: Folder) -> dict:
    """The xds_folders row of an accepted Folder."""
    return {"entry_uuid": entry.entry_uuid, "unique_id": entry.unique_id,
            "patient_id": entry.patient_id, "status": STATUS_APPROVED,
            "last_update_time": entry.last_update_time or None,
            "xml": object_xml(copied(entry, availability_status=STATUS_APPROVED))}


def association_row(association) -> dict:
    """The xds_associations row of an accepted Association."""
    return {"entry_uuid": association.entry_uuid,
            "association_type": association.association_type,
            "source": association.source, "target": association.target,
            "status": STATUS_APPROVED, "xml": object_xml(association)}
