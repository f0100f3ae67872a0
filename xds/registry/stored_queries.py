"""
The stored queries of the built-in registry (ITI TF-2 §3.18.4.1.2.3.7):
FindDocuments, FindSubmissionSets, GetDocuments, GetAssociations,
GetSubmissionSetAndContents and GetRelatedDocuments, each a function of a
connection and the request's :class:`~xds.registry.adhoc.Parameters` that
returns the matching objects in the order they are answered.

Every value is bound as an SQL parameter. Time ranges are From inclusive, To
exclusive, compared as ``YYYYMMDDhhmmss`` text. Without
``$XDSDocumentEntryType`` only Stable DocumentEntries are found.

test-case-name: tests.xds.test_registry_query
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from sqlalchemy import exists, or_, select

from xds.registry import tables
from xds.registry.adhoc import Parameters
from xds.metadata.vocabulary import (
    FIND_DOCUMENTS, GET_DOCUMENTS, HAS_MEMBER, STABLE_DOCUMENT_ENTRY)

_DOCS = tables.document_entries
_VALUES = tables.document_values
_SETS = tables.submission_sets
_FOLDERS = tables.folders
_ASSOCIATIONS = tables.associations


@dataclass(frozen=True)
class Found:
    """One object of a query's answer: its id, status, patient and kept ebRIM XML."""

    entry_uuid: str
    status: str
    patient_id: str
    xml: bytes


_DOCUMENT_CODES = {
    "$XDSDocumentEntryClassCode": _DOCS.c.class_code,
    "$XDSDocumentEntryTypeCode": _DOCS.c.type_code,
    "$XDSDocumentEntryPracticeSettingCode": _DOCS.c.practice_setting_code,
    "$XDSDocumentEntryHealthcareFacilityTypeCode": _DOCS.c.healthcare_facility_type_code,
    "$XDSDocumentEntryFormatCode": _DOCS.c.format_code,
}
_DOCUMENT_TIMES = {
    "$XDSDocumentEntryCreationTime": _DOCS.c.creation_time,
    "$XDSDocumentEntryServiceStartTime": _DOCS.c.service_start_time,
    "$XDSDocumentEntryServiceStopTime": _DOCS.c.service_stop_time,
}
_DOCUMENT_REPEATED = {"$XDSDocumentEntryEventCodeList": "eventCodeList",
                      "$XDSDocumentEntryConfidentialityCode": "confidentialityCode"}


def _documents(conn: Any, *conditions: Any) -> list[Found]:
    query = select(_DOCS.c.entry_uuid, _DOCS.c.status, _DOCS.c.patient_id, _DOCS.c.xml)
    return [Found(*row) for row in conn.execute(query.where(*conditions)
                                                .order_by(_DOCS.c.creation_time,
                                                          _DOCS.c.entry_uuid))]


def _packages(conn: Any, table: Any, *conditions: Any) -> list[Found]:
    query = select(table.c.entry_uuid, table.c.status, table.c.patient_id, table.c.xml)
    return [Found(*row) for row in conn.execute(query.where(*conditions)
                                                .order_by(table.c.entry_uuid))]


def _associations(conn: Any, *conditions: Any) -> list[Found]:
    query = select(_ASSOCIATIONS.c.entry_uuid, _ASSOCIATIONS.c.status, _ASSOCIATIONS.c.xml)
    return [Found(row.entry_uuid, row.status, "", row.xml)
            for row in conn.execute(query.where(*conditions).order_by(_ASSOCIATIONS.c.entry_uuid))]


def _time_range(params: Parameters, prefix: str, column: Any) -> list[Any]:
    conditions = []
    start, stop = params.single(prefix + "From"), params.single(prefix + "To")
    if start is not None:
        conditions.append(column >= start)
    if stop is not None:
        conditions.append(column < stop)
    return conditions


def _has_values(name: str, values: list[str], like: bool = False) -> Any:
    """The entry has one of *values* (patterns with *like*) for a multi-valued attribute."""
    match = (or_(*(_VALUES.c.value.like(v) for v in values)) if like
             else _VALUES.c.value.in_(values))
    return exists().where(_VALUES.c.entry_uuid == _DOCS.c.entry_uuid, _VALUES.c.name == name,
                          match)


def _document_filters(params: Parameters) -> list[Any]:
    """Conditions of the optional DocumentEntry parameters shared by several queries."""
    conditions = []
    for name, column in _DOCUMENT_CODES.items():
        if params.has(name):
            conditions.append(column.in_(params.values(name)))
    for name, attribute in _DOCUMENT_REPEATED.items():
        conditions += [_has_values(attribute, group) for group in params.groups(name)]
    types = params.values("$XDSDocumentEntryType") or [STABLE_DOCUMENT_ENTRY]
    conditions.append(_DOCS.c.object_type.in_(types))
    return conditions


def find_documents(conn: Any, params: Parameters) -> list[Found]:
    """FindDocuments: a patient's DocumentEntries by status, codes, times and authors."""
    conditions = [_DOCS.c.patient_id == params.single("$XDSDocumentEntryPatientId",
                                                       required=True),
                  _DOCS.c.status.in_(params.statuses("$XDSDocumentEntryStatus"))]
    conditions += _document_filters(params)
    for prefix, column in _DOCUMENT_TIMES.items():
        conditions += _time_range(params, prefix, column)
    authors = params.values("$XDSDocumentEntryAuthorPerson")
    if authors:
        conditions.append(_has_values("authorPerson", authors, like=True))
    return _documents(conn, *conditions)


def find_submission_sets(conn: Any, params: Parameters) -> list[Found]:
    """FindSubmissionSets: a patient's SubmissionSets by status, source, time, author, type."""
    conditions = [_SETS.c.patient_id == params.single("$XDSSubmissionSetPatientId",
                                                       required=True),
                  _SETS.c.status.in_(params.statuses("$XDSSubmissionSetStatus"))]
    if params.has("$XDSSubmissionSetSourceId"):
        conditions.append(_SETS.c.source_id.in_(params.values("$XDSSubmissionSetSourceId")))
    if params.has("$XDSSubmissionSetContentType"):
        conditions.append(_SETS.c.content_type_code.in_(
            params.values("$XDSSubmissionSetContentType")))
    conditions += _time_range(params, "$XDSSubmissionSetSubmissionTime", _SETS.c.submission_time)
    author = params.single("$XDSSubmissionSetAuthorPerson")
    if author is not None:
        conditions.append(_SETS.c.author_person.like(author))
    return _packages(conn, _SETS, *conditions)


def get_documents(conn: Any, params: Parameters) -> list[Found]:
    """GetDocuments: DocumentEntries by entryUUID or by uniqueId (one of the two)."""
    name, values = params.one_of("$XDSDocumentEntryEntryUUID", "$XDSDocumentEntryUniqueId")
    column = _DOCS.c.entry_uuid if name.endswith("EntryUUID") else _DOCS.c.unique_id
    return _documents(conn, column.in_(values))


def get_associations(conn: Any, params: Parameters) -> list[Found]:
    """GetAssociations: the Associations with one of the given objects at either end."""
    uuids = params.values("$uuid", required=True)
    return _associations(conn, or_(_ASSOCIATIONS.c.source.in_(uuids),
                                   _ASSOCIATIONS.c.target.in_(uuids)))


def get_submission_set_and_contents(conn: Any, params: Parameters) -> list[Found]:
    """GetSubmissionSetAndContents: the set, its member documents and folders, the links.

    A HasMember to a DocumentEntry the optional filters leave out is left out too.
    """
    name, values = params.one_of("$XDSSubmissionSetEntryUUID", "$XDSSubmissionSetUniqueId")
    column = _SETS.c.entry_uuid if name.endswith("EntryUUID") else _SETS.c.unique_id
    sets = _packages(conn, _SETS, column.in_(values[:1]))
    if not sets:
        return []
    members = conn.execute(
        select(_ASSOCIATIONS.c.entry_uuid, _ASSOCIATIONS.c.status, _ASSOCIATIONS.c.target,
               _ASSOCIATIONS.c.xml)
        .where(_ASSOCIATIONS.c.source == sets[0].entry_uuid,
               _ASSOCIATIONS.c.association_type == HAS_MEMBER)
        .order_by(_ASSOCIATIONS.c.entry_uuid)).all()
    targets = [member.target for member in members]
    documents = _documents(conn, _DOCS.c.entry_uuid.in_(targets), *_document_filters(params))
    folders = _packages(conn, _FOLDERS, _FOLDERS.c.entry_uuid.in_(targets))
    all_documents = set(conn.execute(select(_DOCS.c.entry_uuid)
                                     .where(_DOCS.c.entry_uuid.in_(targets))).scalars())
    kept = {found.entry_uuid for found in documents + folders}
    links = [Found(member.entry_uuid, member.status, "", member.xml) for member in members
             if member.target in kept or member.target not in all_documents]
    return sets + documents + folders + links + _member_links(conn, targets, kept)


def _member_links(conn: Any, targets: list[str], kept: set[str]) -> list[Found]:
    """Associations that are themselves members of the set (a Folder's HasMember of a
    document, added by this submission), when both their ends are answered."""
    query = select(_ASSOCIATIONS.c.entry_uuid, _ASSOCIATIONS.c.status, _ASSOCIATIONS.c.source,
                   _ASSOCIATIONS.c.target, _ASSOCIATIONS.c.xml).where(
        _ASSOCIATIONS.c.entry_uuid.in_(targets)).order_by(_ASSOCIATIONS.c.entry_uuid)
    return [Found(row.entry_uuid, row.status, "", row.xml) for row in conn.execute(query)
            if row.source in kept and row.target in kept]


def get_related_documents(conn: Any, params: Parameters) -> list[Found]:
    """GetRelatedDocuments: a DocumentEntry, those linked to it by the given types, the links."""
    name, values = params.one_of("$XDSDocumentEntryEntryUUID", "$XDSDocumentEntryUniqueId")
    column = _DOCS.c.entry_uuid if name.endswith("EntryUUID") else _DOCS.c.unique_id
    types = params.values("$AssociationTypes", required=True)
    originals = _documents(conn, column.in_(values[:1]))
    if not originals:
        return []
    original = originals[0].entry_uuid
    links = _associations(conn, _ASSOCIATIONS.c.association_type.in_(types),
                          or_(_ASSOCIATIONS.c.source == original,
                              _ASSOCIATIONS.c.target == original))
    if not links:
        return []
    ends = select(_ASSOCIATIONS.c.source).where(
        _ASSOCIATIONS.c.entry_uuid.in_([link.entry_uuid for link in links])).union(
        select(_ASSOCIATIONS.c.target).where(
            _ASSOCIATIONS.c.entry_uuid.in_([link.entry_uuid for link in links])))
    related = _documents(conn, _DOCS.c.entry_uuid.in_(ends), _DOCS.c.entry_uuid != original,
                         *_document_filters(params))
    return originals + related + links


#: Stored query id (NOTES.md §1.9) -> (name, function).
STORED_QUERIES: dict[str, tuple[str, Callable[[Any, Parameters], list[Found]]]] = {
    FIND_DOCUMENTS: ("FindDocuments", find_documents),
    "urn:uuid:f26abbcb-ac74-4422-8a30-edb644bbc1a9": ("FindSubmissionSets", find_submission_sets),
    GET_DOCUMENTS: ("GetDocuments", get_documents),
    "urn:uuid:a7ae438b-4bc2-4642-93e9-be891f7bb155": ("GetAssociations", get_associations),
    "urn:uuid:e8e3cb2c-e39c-46b9-99e4-c12f57260b83": ("GetSubmissionSetAndContents",
                                                      get_submission_set_and_contents),
    "urn:uuid:d90e5407-b356-4d91-a89f-873917b4b0e6": ("GetRelatedDocuments",
                                                      get_related_documents),
}
