"""
The ebRIM 3.0 model of an XDS.b submission: plain dataclasses, one per
metadata object, with the attribute names of ITI TF-3 §4.2.3.

Values are kept as they travel (HL7 v2 strings for patientId and author,
``YYYYMMDDhhmmss`` strings for times, decimal text for size) rather than
parsed into richer types: the model must be able to hold what a peer sent,
wrong or not, so that :mod:`xds.metadata.validation` can say precisely what
is wrong and where, and so that writing back never alters a value.

test-case-name: tests.xds.test_metadata_xml
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

from xds.metadata.errors import RegistryError
from xds.metadata.vocabulary import (
    HAS_MEMBER, STABLE_DOCUMENT_ENTRY, SUBMISSION_SET_STATUS_SLOT,
)


@dataclass
class Code:
    """A coded value: the code, its coding scheme (an OID for French codes), a display name."""

    code: str
    scheme: str
    display: str = ""


@dataclass
class Author:
    """One author (a Classification with the author scheme and its slots)."""

    person: str = ""                     # XCN
    institutions: list[str] = field(default_factory=list)   # XON
    roles: list[str] = field(default_factory=list)
    specialties: list[str] = field(default_factory=list)
    telecommunications: list[str] = field(default_factory=list)   # XTN


@dataclass
class RegistryEntry:
    """What every XDS object has: its entryUUID (or symbolic id) and free slots.

    ``extra_slots`` keeps slots the model does not name, in order, so that a
    submission read and written again loses nothing.
    """

    entry_uuid: str
    title: str = ""
    comments: str = ""
    availability_status: str = ""
    home_community_id: str = ""
    extra_slots: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class DocumentEntry(RegistryEntry):
    """An XDS DocumentEntry (``rim:ExtrinsicObject``)."""

    unique_id: str = ""
    patient_id: str = ""
    mime_type: str = ""
    object_type: str = STABLE_DOCUMENT_ENTRY
    class_code: Code | None = None
    type_code: Code | None = None
    format_code: Code | None = None
    healthcare_facility_type_code: Code | None = None
    practice_setting_code: Code | None = None
    confidentiality_codes: list[Code] = field(default_factory=list)
    event_codes: list[Code] = field(default_factory=list)
    authors: list[Author] = field(default_factory=list)
    creation_time: str = ""
    service_start_time: str = ""
    service_stop_time: str = ""
    language_code: str = ""
    source_patient_id: str = ""
    source_patient_info: list[str] = field(default_factory=list)
    legal_authenticator: str = ""
    hash: str = ""
    size: str = ""
    repository_unique_id: str = ""
    uri: str = ""
    reference_ids: list[str] = field(default_factory=list)
    document_availability: str = ""


@dataclass
class SubmissionSet(RegistryEntry):
    """An XDS SubmissionSet (``rim:RegistryPackage`` classified as such)."""

    unique_id: str = ""
    source_id: str = ""
    patient_id: str = ""
    submission_time: str = ""
    content_type_code: Code | None = None
    authors: list[Author] = field(default_factory=list)
    intended_recipients: list[str] = field(default_factory=list)


@dataclass
class Folder(RegistryEntry):
    """An XDS Folder (``rim:RegistryPackage`` classified as such)."""

    unique_id: str = ""
    patient_id: str = ""
    codes: list[Code] = field(default_factory=list)
    last_update_time: str = ""


@dataclass
class Association:
    """A ``rim:Association`` between two entries (ids of this submission or urn:uuid)."""

    entry_uuid: str
    association_type: str = HAS_MEMBER
    source: str = ""
    target: str = ""
    extra_slots: dict[str, list[str]] = field(default_factory=dict)

    @property
    def submission_set_status(self) -> str:
        """``Original`` or ``Reference`` on a HasMember from the SubmissionSet, else ""."""
        values = self.extra_slots.get(SUBMISSION_SET_STATUS_SLOT, [])
        return values[0] if values else ""


@dataclass
class Submission:
    """The content of one SubmitObjectsRequest: the metadata of one submission.

    ``submission_sets`` is a list because a peer may send none or several;
    validation reports that, the model does not hide it. ``reading_problems``
    holds what the reader could not place in the model.
    """

    submission_sets: list[SubmissionSet] = field(default_factory=list)
    documents: list[DocumentEntry] = field(default_factory=list)
    folders: list[Folder] = field(default_factory=list)
    associations: list[Association] = field(default_factory=list)
    object_refs: list[str] = field(default_factory=list)
    reading_problems: list[RegistryError] = field(default_factory=list)

    @property
    def submission_set(self) -> SubmissionSet | None:
        """The SubmissionSet when there is exactly one, else None."""
        return self.submission_sets[0] if len(self.submission_sets) == 1 else None


Model = TypeVar("Model")


def copied(model: Model, **changes: Any) -> Model:
    """*model* with *changes*, as ``dataclasses.replace`` gives it, without running
    ``__init__`` again over every field (these dataclasses have no ``__post_init__``; the
    registry copies each object of a submission several times). Shallow, like replace;
    a name that is no field is refused."""
    unknown = changes.keys() - model.__dataclass_fields__.keys()  # type: ignore[attr-defined]
    if unknown:
        raise TypeError(f"{type(model).__name__} has no field {', '.join(sorted(unknown))}")
    result = object.__new__(type(model))
    result.__dict__.update(model.__dict__)
    result.__dict__.update(changes)
    return result
