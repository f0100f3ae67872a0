"""
An XDS.b submission (DocumentEntry, SubmissionSet, HasMember) for the document an MDM^T02
carried, ready for :func:`xds.soap.documents.provide_and_register_request`.

Why through :class:`MdmValues`: xds/ knows nothing of HL7 messages (tests/test_layering.py);
:func:`mappings.transforms.mdm.read_mdm` reads the message and its ``MdmDocument`` has the
shape this protocol names, so the caller passes one to the other.

When the document is a CDA R2 (XML whose root is ``ClinicalDocument``), its header decides
the DocumentEntry (:func:`xds.cda.entry.document_entry_from_cda`): the document is the
reference, the message only carried it. Otherwise TXA/PID/MSH decide: TXA-12 the uniqueId,
OBX-3 the typeCode, TXA-6 the creationTime, TXA-9 (else TXA-5) the author, PID-3 the
patient. The patientId is the INS (type NH) only when PID-32 says the identity is qualified
(NOTES.md §4), unless :class:`SubmissionOptions` gives one (identity reconciliation).

What neither says (classCode, facility type, practice setting, sourceId, the ids) comes from
the options; hash and size are computed, so that the repository can check them.

test-case-name: tests.xds.test_mdm_submission
"""
from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field, replace
from typing import Callable, Protocol, Sequence

from xds.cda.entry import INS_OIDS, document_entry_from_cda, escape, hl7_utc
from xds.cda.header import CDAError, CDAHeader, read_cda_header
from xds.metadata.model import (
    Association, Author, Code, DocumentEntry, Submission, SubmissionSet)
from xds.metadata.writing import new_uuid
from xds.safexml import UnsafeXMLError

__all__ = ["MdmSubmission", "MdmValues", "SubmissionOptions", "submission_from_mdm"]

LOINC = "2.16.840.1.113883.6.1"
CONFIDENTIALITY = "2.16.840.1.113883.5.25"
#: IHE formatCode for a document whose MIME type says all (a bare PDF or text).
MIME_TYPE_SUFFICIENT = Code("urn:ihe:iti:xds:2017:mimeTypeSufficient", "1.3.6.1.4.1.19376.1.2.3")


class PatientIdLike(Protocol):
    value: str
    oid: str
    type_code: str


class MdmValues(Protocol):
    """What :func:`submission_from_mdm` reads (``mappings.transforms.mdm.MdmDocument``)."""

    content: bytes
    mime_type: str
    patient_ids: Sequence[PatientIdLike]
    identity_status: str
    family: str
    given: str
    birth_date: str
    sex: str
    unique_id: str
    type_code: tuple[str, str, str]
    local_type: tuple[str, str, str]
    creation_time: str
    message_time: str
    authors: Sequence[str]


@dataclass(frozen=True)
class SubmissionOptions:
    """The channel's settings: what the message does not carry."""

    source_id: str                                  # the Document Source's OID
    class_code: Code | None = None
    healthcare_facility_type_code: Code | None = None
    practice_setting_code: Code | None = None
    content_type_code: Code | None = None
    patient_id: str = ""                            # from identity reconciliation
    confidentiality: Code = field(default_factory=lambda: Code("N", CONFIDENTIALITY, "Normal"))
    language_code: str = "fr-FR"
    # Fallbacks for what neither the document nor the message gives.
    type_code: Code | None = None
    format_code: Code | None = None
    repository_unique_id: str = ""                  # sent when the receiver expects it


@dataclass
class MdmSubmission:
    """The metadata and the document bytes by DocumentEntry id, for ITI-41."""

    submission: Submission
    documents: dict[str, bytes]


def submission_from_mdm(values: MdmValues, options: SubmissionOptions, *,
                        new_id: Callable[[], str] = new_uuid,
                        header: CDAHeader | None = None) -> MdmSubmission:
    """The ProvideAndRegister content for the document of one MDM^T02.

    ``header``: the document's CDA header when the caller has read it already (it is not
    read again).
    """
    entry = _document_entry(values, options, new_id(), header)
    entry = _completed(entry, values, options)
    submission_set = SubmissionSet(
        entry_uuid=new_id(), unique_id=_oid_from(entry.entry_uuid),
        source_id=options.source_id, patient_id=entry.patient_id,
        submission_time=hl7_utc(values.message_time),
        content_type_code=options.content_type_code or entry.type_code,
        authors=list(entry.authors), title=entry.title)
    association = Association(new_id(), source=submission_set.entry_uuid,
                              target=entry.entry_uuid,
                              extra_slots={"SubmissionSetStatus": ["Original"]})
    submission = Submission(submission_sets=[submission_set], documents=[entry],
                            associations=[association])
    return MdmSubmission(submission, {entry.entry_uuid: values.content})


def _document_entry(values: MdmValues, options: SubmissionOptions,
                    entry_uuid: str, header: CDAHeader | None = None) -> DocumentEntry:
    """From the CDA header when the document is a CDA, else from the message's values."""
    if header is not None:
        return document_entry_from_cda(header, entry_uuid=entry_uuid,
                                       class_code=options.class_code,
                                       patient_id=options.patient_id)
    if values.mime_type in ("text/xml", "application/xml", "application/hl7-v3+xml"):
        try:
            header = read_cda_header(values.content)
        except (CDAError, UnsafeXMLError):   # declared XML, not a CDA: TXA describes it
            header = None
        if header is not None:
            return document_entry_from_cda(header, entry_uuid=entry_uuid,
                                           class_code=options.class_code,
                                           patient_id=options.patient_id)
    return _entry_from_values(values, options, entry_uuid)


def _entry_from_values(values: MdmValues, options: SubmissionOptions,
                       entry_uuid: str) -> DocumentEntry:
    code, display, system = values.type_code
    type_code = Code(code, LOINC if system in ("LN", "LOINC") else system, display) \
        if code else None
    return DocumentEntry(
        entry_uuid=entry_uuid, unique_id=values.unique_id, mime_type=values.mime_type,
        title=values.local_type[1] or display, type_code=type_code,
        class_code=options.class_code,
        creation_time=hl7_utc(values.creation_time),
        patient_id=options.patient_id or _patient_cx(values, prefer_ins=True),
        source_patient_id=_patient_cx(values, prefer_ins=False),
        source_patient_info=_source_patient_info(values),
        authors=[Author(person=person) for person in values.authors])


def _completed(entry: DocumentEntry, values: MdmValues,
               options: SubmissionOptions) -> DocumentEntry:
    """The settings, hash and size filled in where the document and message left gaps."""
    return replace(
        entry,
        class_code=entry.class_code or options.class_code,
        type_code=entry.type_code or options.type_code,
        format_code=entry.format_code or options.format_code or MIME_TYPE_SUFFICIENT,
        healthcare_facility_type_code=(entry.healthcare_facility_type_code
                                       or options.healthcare_facility_type_code),
        practice_setting_code=entry.practice_setting_code or options.practice_setting_code,
        confidentiality_codes=entry.confidentiality_codes or [options.confidentiality],
        language_code=entry.language_code or options.language_code,
        repository_unique_id=entry.repository_unique_id or options.repository_unique_id,
        hash=hashlib.sha1(values.content).hexdigest(), size=str(len(values.content)))


def _patient_cx(values: MdmValues, prefer_ins: bool) -> str:
    """CX of the patient. patientId (*prefer_ins*): the INS as ``…^NH`` when qualified, else
    the first local identifier (a hospital's own affinity domain); never an INS that is not
    qualified. sourcePatientId: the first local identifier, else the INS (NOTES.md §4)."""
    usable = [p for p in values.patient_ids if p.value and p.oid]
    ins = [p for p in usable if p.oid in INS_OIDS]
    local = [p for p in usable if p.oid not in INS_OIDS]
    if prefer_ins and ins and values.identity_status == "QUAL":
        return f"{ins[0].value}^^^&{ins[0].oid}&ISO^NH"
    chosen = local if prefer_ins else (local or ins)
    return f"{chosen[0].value}^^^&{chosen[0].oid}&ISO" if chosen else ""


def _source_patient_info(values: MdmValues) -> list[str]:
    lines = [f"PID-3|{p.value}^^^&{p.oid}&ISO" for p in values.patient_ids
             if p.value and p.oid and (p.oid not in INS_OIDS or values.identity_status == "QUAL")]
    if values.family:
        lines.append(f"PID-5|{escape(values.family)}^{escape(values.given)}^^^^^L")
    if values.birth_date:
        lines.append(f"PID-7|{values.birth_date[:8]}")
    if values.sex:
        lines.append(f"PID-8|{values.sex}")
    return lines


def _oid_from(entry_uuid: str) -> str:
    """A SubmissionSet uniqueId (an OID) from a urn:uuid: the ``2.25`` arc for UUIDs."""
    text = entry_uuid.removeprefix("urn:uuid:")
    try:
        return f"2.25.{uuid.UUID(text).int}"
    except ValueError:
        return f"2.25.{uuid.uuid5(uuid.NAMESPACE_URL, text).int}"
