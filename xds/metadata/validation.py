"""
Validation of a submission against the XDS.b metadata rules (ITI TF-3 §4.2.3
and the optionality of Table 4.3.1-3), returning the RegistryError list that
a RegistryResponse carries, empty when the submission is acceptable.

Each finding names the object (its entryUUID), the attribute and the value,
so that the sender can fix it without reading the registry's logs. The error
code says where the problem was detected (``XDSRegistryMetadataError`` or
``XDSRepositoryMetadataError``, chosen by *actor*), except where a more
specific code exists (``XDSPatientIdDoesNotMatch``, duplicate uniqueIds,
unresolved references).

test-case-name: tests.xds.test_validation
"""
from __future__ import annotations

import dataclasses
import enum
import functools
from collections import Counter
from typing import Callable, Container, Iterator

from xds.metadata import errors as codes
from xds.metadata import formats
from xds.metadata.errors import RegistryError
from xds.metadata.layout import DOCUMENT_ENTRY_SINGLE, FOLDER_SINGLE, SUBMISSION_SET_SINGLE
from xds.metadata.model import (
    Association, Author, Code, DocumentEntry, Folder, RegistryEntry, Submission, SubmissionSet,
)
from xds.metadata.vocabulary import (
    ASSOCIATION_TYPES, DOCUMENT_ENTRY_TYPES, HAS_MEMBER, SUBMISSION_SET_STATUS_SLOT,
)


class Actor(enum.Enum):
    """Who detects the problem: decides XDSRegistry… or XDSRepository… error codes."""

    REGISTRY = "registry"
    REPOSITORY = "repository"


class Profile(enum.Enum):
    """Whose optionality column applies (ITI TF-3 Table 4.3.1-3)."""

    DOCUMENT_SOURCE = "ITI-41"      # a Document Source's ProvideAndRegister
    REPOSITORY = "ITI-42"           # a Repository's Register: hash, size, repositoryUniqueId too
    XDM = "ITI-32"                  # portable media: URI, hash, size; most codes only R2


_DOCUMENT_REQUIRED = {
    "creation_time": "creationTime", "language_code": "languageCode", "mime_type": "mimeType",
    "object_type": "objectType", "patient_id": "patientId", "unique_id": "uniqueId",
    "source_patient_id": "sourcePatientId",
}
_DOCUMENT_CODES_REQUIRED = {
    "class_code": "classCode", "format_code": "formatCode", "type_code": "typeCode",
    "healthcare_facility_type_code": "healthcareFacilityTypeCode",
    "practice_setting_code": "practiceSettingCode",
}
_PROFILE_EXTRAS = {
    Profile.DOCUMENT_SOURCE: {},
    Profile.REPOSITORY: {"hash": "hash", "size": "size",
                         "repository_unique_id": "repositoryUniqueId"},
    Profile.XDM: {"hash": "hash", "size": "size", "uri": "URI"},
}
_SUBMISSION_SET_REQUIRED = {"patient_id": "patientId", "source_id": "sourceId",
                            "submission_time": "submissionTime", "unique_id": "uniqueId"}
_FOLDER_REQUIRED = {"patient_id": "patientId", "unique_id": "uniqueId", "title": "title"}
_DTM_FIELDS = {"creation_time": "creationTime", "service_start_time": "serviceStartTime",
               "service_stop_time": "serviceStopTime", "submission_time": "submissionTime",
               "last_update_time": "lastUpdateTime"}
_FORMATS: dict[str, tuple[str, Callable[[str], str | None]]] = {
    "patient_id": ("patientId", formats.cx_problem),
    "source_patient_id": ("sourcePatientId", formats.cx_problem),
    "legal_authenticator": ("legalAuthenticator", formats.xcn_problem),
    "hash": ("hash", formats.hash_problem),
    "size": ("size", formats.size_problem),
    "language_code": ("languageCode", formats.language_problem),
    "mime_type": ("mimeType", formats.mime_type_problem),
    "repository_unique_id": ("repositoryUniqueId", formats.oid_problem),
}


def validate(submission: Submission, *, actor: Actor = Actor.REGISTRY,
             profile: Profile = Profile.DOCUMENT_SOURCE,
             known_unique_ids: Container[str] = frozenset(),
             read_from_xml: bool = False) -> list[RegistryError]:
    """Every problem found in *submission*; an empty list means it may be accepted.

    *known_unique_ids* are the SubmissionSet and Folder uniqueIds the registry
    already holds (reusing one is ``XDSDuplicateUniqueIdInRegistry``).
    *read_from_xml*: the submission was just read from an XML request, so every string
    in it is XML text by construction (the parser refuses any other) and the walk that
    checks each string, for submissions built from HL7 v2 or CDA values, is skipped.
    """
    check = _Checker(actor, profile)
    check.errors.extend(submission.reading_problems)
    check.submission_sets(submission)
    for document in submission.documents:
        check.document(document)
    for folder in submission.folders:
        check.folder(folder)
    check.patient_ids(submission)
    check.unique_ids(submission)
    check.registered(submission, known_unique_ids)
    check.associations(submission)
    if not read_from_xml:
        for item in [*submission.submission_sets, *submission.documents, *submission.folders,
                     *submission.associations]:
            check.xml_text(item)
    return check.errors


def check_registered(submission: Submission, known_unique_ids: Container[str], *,
                     actor: Actor = Actor.REGISTRY) -> list[RegistryError]:
    """What :func:`validate` needs the registry for: SubmissionSet and Folder uniqueIds
    it already holds (``XDSDuplicateUniqueIdInRegistry``).

    For a submission :func:`validate` has passed without the registry's knowledge (the
    endpoint validates every ITI-41 before its handler sees it), so that the registry
    does not validate it a second time.
    """
    check = _Checker(actor, Profile.DOCUMENT_SOURCE)
    check.registered(submission, known_unique_ids)
    return check.errors


class _Checker:
    """Accumulates the findings of one validation run."""

    def __init__(self, actor: Actor, profile: Profile):
        self.profile = profile
        self.metadata_code = (codes.REGISTRY_METADATA_ERROR if actor is Actor.REGISTRY
                              else codes.REPOSITORY_METADATA_ERROR)
        self.duplicate_code = (codes.REGISTRY_DUPLICATE_UNIQUE_ID_IN_MESSAGE
                               if actor is Actor.REGISTRY
                               else codes.REPOSITORY_DUPLICATE_UNIQUE_ID_IN_MESSAGE)
        self.errors: list[RegistryError] = []

    def fail(self, where: RegistryEntry | Association, text: str, code: str = "") -> None:
        """Record one finding about *where*."""
        label = _label(where)
        self.errors.append(RegistryError(code or self.metadata_code, f"{label}: {text}",
                                         where.entry_uuid or None))

    def xml_text(self, item: RegistryEntry | Association) -> None:
        """Every string of the object can be written as XML."""
        texts: list[str] = []
        _collect_strings(item, texts)
        if formats.xml_text_problem("".join(texts)) is None:
            return      # the usual case; otherwise walk again to name each bad string
        for path, value in _strings(item, ""):
            problem = formats.xml_text_problem(value)
            if problem:
                self.fail(item, f"{path.lstrip('.')} {value!r} {problem}")

    def submission_sets(self, submission: Submission) -> None:
        """Exactly one SubmissionSet, with its required attributes and valid values."""
        if len(submission.submission_sets) != 1:
            self.errors.append(RegistryError(
                self.metadata_code,
                f"a submission carries exactly one SubmissionSet, this one has "
                f"{len(submission.submission_sets)}"))
        for submission_set in submission.submission_sets:
            self.common(submission_set, SUBMISSION_SET_SINGLE)
            self.required(submission_set, _SUBMISSION_SET_REQUIRED)
            self.required_code(submission_set, "content_type_code", "contentTypeCode")
            self.authors(submission_set)
            self.value(submission_set, "uniqueId", submission_set.unique_id,
                       lambda v: formats.unique_id_problem(v, extension_allowed=False))
            self.source_id(submission_set)

    def source_id(self, submission_set: SubmissionSet) -> None:
        """sourceId should be an OID (ITI TF-3 4.2.3.3.12); one that is not is a warning.

        Why not an error: the IHE ITI-41/ITI-42 samples and deployed sources send numeric
        identifiers that are not OIDs; refusing their whole submission for a value nothing
        here reads back would lose documents, so it is stored and the sender is told.
        """
        value = submission_set.source_id
        problem = formats.oid_problem(value) if value else None
        if problem:
            self.errors.append(codes.warning(
                self.metadata_code, f"{_label(submission_set)}: sourceId {value!r} {problem}",
                submission_set.entry_uuid or None))

    def document(self, document: DocumentEntry) -> None:
        """A DocumentEntry's required attributes and value formats."""
        self.common(document, DOCUMENT_ENTRY_SINGLE)
        self.required(document, dict(_DOCUMENT_REQUIRED, **_PROFILE_EXTRAS[self.profile]))
        if self.profile is not Profile.XDM:
            for attribute, name in _DOCUMENT_CODES_REQUIRED.items():
                self.required_code(document, attribute, name)
            if not document.confidentiality_codes:
                self.fail(document, "confidentialityCode is required and missing")
        if document.object_type and document.object_type not in DOCUMENT_ENTRY_TYPES:
            self.fail(document, f"objectType {document.object_type!r} is neither the stable"
                                " nor the on-demand DocumentEntry type")
        self.value(document, "uniqueId", document.unique_id,
                   lambda v: formats.unique_id_problem(v, extension_allowed=True))
        for code in document.confidentiality_codes:
            self.code(document, code, "confidentialityCode")
        for code in document.event_codes:
            self.code(document, code, "eventCodeList")
        self.authors(document)
        self.service_times(document)

    def folder(self, folder: Folder) -> None:
        """A Folder's required attributes and value formats."""
        self.common(folder, FOLDER_SINGLE)
        self.required(folder, _FOLDER_REQUIRED)
        if not folder.codes:
            self.fail(folder, "codeList is required and missing")
        for code in folder.codes:
            self.code(folder, code, "codeList")
        self.value(folder, "uniqueId", folder.unique_id,
                   lambda v: formats.unique_id_problem(v, extension_allowed=False))

    def common(self, entry: RegistryEntry, single_slots: dict[str, str]) -> None:
        """entryUUID, times, formatted values, and single-valued slots sent several times."""
        self.value(entry, "entryUUID", entry.entry_uuid, formats.entry_uuid_problem,
                   required=True)
        for attribute, (name, checker) in _FORMATS.items():
            self.value(entry, name, getattr(entry, attribute, ""), checker)
        for attribute, name in _DTM_FIELDS.items():
            self.value(entry, name, getattr(entry, attribute, ""), formats.dtm_problem)
        for name in single_slots:
            if len(entry.extra_slots.get(name, [])) > 1:
                self.fail(entry, f"slot {name} must have one value, it has "
                                 f"{len(entry.extra_slots[name])}")

    def required(self, entry: RegistryEntry, attributes: dict[str, str]) -> None:
        """Each of *attributes* (model name -> XDS name) must be present (a slot sent with
        several values is reported as such by :meth:`common`, not as missing)."""
        for attribute, name in attributes.items():
            if not getattr(entry, attribute) and name not in entry.extra_slots:
                self.fail(entry, f"{name} is required and missing")

    def required_code(self, entry: RegistryEntry, attribute: str, name: str) -> None:
        """A single coded attribute must be present and complete."""
        code = getattr(entry, attribute)
        if code is None:
            self.fail(entry, f"{name} is required and missing")
        else:
            self.code(entry, code, name)

    def code(self, entry: RegistryEntry, code: Code, name: str) -> None:
        """A code needs its value (nodeRepresentation) and its codingScheme."""
        if not code.code:
            self.fail(entry, f"{name} has an empty code (nodeRepresentation)")
        if not code.scheme:
            self.fail(entry, f"{name} {code.code!r} has no codingScheme slot")

    def value(self, entry: RegistryEntry, name: str, value: str,
              checker: Callable[[str], str | None], required: bool = False) -> None:
        """Check one value's format when present (or always, if *required*)."""
        if not value and not required:
            return
        problem = checker(value)
        if problem:
            self.fail(entry, f"{name} {value!r} {problem}")

    def authors(self, entry: DocumentEntry | SubmissionSet) -> None:
        """authorPerson is an XCN, each authorInstitution an XON; an author says something."""
        for author in entry.authors:
            if not _author_says_something(author):
                self.fail(entry, "an author has none of authorPerson, authorInstitution,"
                                 " authorRole, authorSpecialty, authorTelecommunication")
            self.value(entry, "authorPerson", author.person, formats.xcn_problem)
            for institution in author.institutions:
                self.value(entry, "authorInstitution", institution, formats.xon_problem)

    def service_times(self, document: DocumentEntry) -> None:
        """serviceStartTime may not come after serviceStopTime (compared at common precision)."""
        start, stop = document.service_start_time, document.service_stop_time
        if start and stop and start.isdigit() and stop.isdigit():
            width = min(len(start), len(stop))
            if start[:width] > stop[:width]:
                self.fail(document, f"serviceStartTime {start} is after serviceStopTime {stop}")

    def patient_ids(self, submission: Submission) -> None:
        """Every DocumentEntry and Folder is about the SubmissionSet's patient."""
        submission_set = submission.submission_set
        if submission_set is None or not submission_set.patient_id:
            return
        expected = submission_set.patient_id
        for entry in [*submission.documents, *submission.folders]:
            if entry.patient_id and entry.patient_id != expected:
                self.fail(entry, f"patientId {entry.patient_id!r} differs from the "
                                 f"SubmissionSet's {expected!r}",
                          codes.PATIENT_ID_DOES_NOT_MATCH)

    def unique_ids(self, submission: Submission) -> None:
        """No uniqueId, and no entryUUID, twice in the message."""
        entries = [*submission.submission_sets, *submission.documents, *submission.folders]
        counts = Counter(entry.unique_id for entry in entries if entry.unique_id)
        for entry in entries:
            if counts[entry.unique_id] > 1:
                self.fail(entry, f"uniqueId {entry.unique_id!r} appears "
                                 f"{counts[entry.unique_id]} times in this submission",
                          self.duplicate_code)
        uuids = Counter(entry.entry_uuid for entry in entries)
        for entry_uuid, count in uuids.items():
            if count > 1:
                self.errors.append(RegistryError(
                    self.metadata_code, f"entryUUID {entry_uuid!r} is used by {count} objects",
                    entry_uuid))

    def registered(self, submission: Submission, known: Container[str]) -> None:
        """No SubmissionSet or Folder uniqueId the registry already holds."""
        for entry in [*submission.submission_sets, *submission.folders]:
            if entry.unique_id and entry.unique_id in known:
                self.fail(entry, f"uniqueId {entry.unique_id!r} is already in the registry",
                          codes.DUPLICATE_UNIQUE_ID_IN_REGISTRY)

    def associations(self, submission: Submission) -> None:
        """Known types, resolvable ends, and every entry a member of the SubmissionSet."""
        documents = {document.entry_uuid for document in submission.documents}
        local = documents | {entry.entry_uuid for entry in [*submission.submission_sets,
                                                            *submission.folders]}
        local |= {association.entry_uuid for association in submission.associations}
        local |= set(submission.object_refs)
        submission_set = submission.submission_set
        set_uuid = submission_set.entry_uuid if submission_set is not None else None
        for association in submission.associations:
            self.association(association, local)
            to_document = association.target in documents or association.target not in local
            if (association.association_type == HAS_MEMBER and association.source == set_uuid
                    and to_document):
                self.submission_set_status(association)
        self.membership(submission)

    def association(self, association: Association, local: set[str]) -> None:
        """One association's type and ends."""
        if association.association_type not in ASSOCIATION_TYPES:
            self.fail(association, f"associationType {association.association_type!r}"
                                   " is not an XDS association type")
        for end, name in ((association.source, "sourceObject"),
                          (association.target, "targetObject")):
            if end not in local and not end.startswith("urn:uuid:"):
                self.fail(association, f"{name} {end!r} is neither in this submission nor a"
                                       " urn:uuid of a registry object", codes.UNRESOLVED_REFERENCE)

    def submission_set_status(self, association: Association) -> None:
        """A HasMember from the SubmissionSet says Original or Reference."""
        if association.submission_set_status not in ("Original", "Reference"):
            self.fail(association, f"{SUBMISSION_SET_STATUS_SLOT} must be Original or Reference,"
                                   f" not {association.submission_set_status!r}")

    def membership(self, submission: Submission) -> None:
        """Each DocumentEntry and Folder is the target of a HasMember from the SubmissionSet."""
        submission_set = submission.submission_set
        if submission_set is None:
            return
        members = {a.target for a in submission.associations
                   if a.association_type == HAS_MEMBER and a.source == submission_set.entry_uuid}
        for entry in [*submission.documents, *submission.folders]:
            if entry.entry_uuid not in members:
                self.fail(entry, "is not a member of the SubmissionSet (no HasMember"
                                 f" association from {submission_set.entry_uuid!r})")


def _collect_strings(value: object, texts: list[str]) -> None:
    """Every string inside a model object, as :func:`_strings` finds them, without paths."""
    if isinstance(value, str):
        texts.append(value)
    elif dataclasses.is_dataclass(value):
        for name in _field_names(type(value)):
            _collect_strings(getattr(value, name), texts)
    elif isinstance(value, dict):
        for key, item in value.items():
            _collect_strings(key, texts)
            _collect_strings(item, texts)
    elif isinstance(value, list):
        for item in value:
            _collect_strings(item, texts)


@functools.lru_cache(maxsize=None)
def _field_names(kind: type) -> tuple[str, ...]:
    return tuple(field.name for field in dataclasses.fields(kind))


def _strings(value: object, path: str) -> Iterator[tuple[str, str]]:
    """(path, text) for every string inside a model object, its lists, dicts and parts."""
    if isinstance(value, str):
        yield path, value
    elif dataclasses.is_dataclass(value):
        for field in dataclasses.fields(value):
            yield from _strings(getattr(value, field.name), f"{path}.{field.name}")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key, f"{path}[key]")
            yield from _strings(item, f"{path}[{key!r}]")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")


def _author_says_something(author: Author) -> bool:
    return bool(author.person or author.institutions or author.roles or author.specialties
                or author.telecommunications)


def _label(where: RegistryEntry | Association) -> str:
    kind = {DocumentEntry: "DocumentEntry", SubmissionSet: "SubmissionSet", Folder: "Folder",
            Association: "Association"}[type(where)]
    return f"{kind} {where.entry_uuid!r}"
