"""
The DocumentEntry that carries the submission-set signature (IHE DSG) in the
submission: one more document, its codes those of a signature (classCode
"Digital Signature", typeCode ``E1762``, formatCode XML-DSig, see
:mod:`xds.dmp.values`), its context (patient, facility, practice setting,
authors, language, service time) taken from the documents it signs so that
it passes the same DMP checks, and the HasMember association that puts it
in the submission set.

test-case-name: tests.xds.dmp.test_prepare
"""
from __future__ import annotations

import copy
import datetime
import hashlib
import uuid

from xds.dmp.values import SIGNATURE_CLASS, SIGNATURE_FORMAT, SIGNATURE_TYPE
from xds.metadata.model import Association, Code, DocumentEntry, Submission
from xds.metadata.vocabulary import HAS_MEMBER, SUBMISSION_SET_STATUS_SLOT
from xds.metadata.writing import new_uuid

NORMAL_CONFIDENTIALITY = Code("N", "2.16.840.1.113883.5.25", "Normal")
SIGNATURE_TITLE = "Signature du lot de soumission"


def new_oid() -> str:
    """A fresh uniqueId under the UUID arc ``2.25`` (ITU-T X.667)."""
    return f"2.25.{uuid.uuid4().int}"


def dtm(moment: datetime.datetime) -> str:
    """An XDS time (UTC, ``YYYYMMDDhhmmss``)."""
    return moment.astimezone(datetime.timezone.utc).strftime("%Y%m%d%H%M%S")


def signature_entry(submission: Submission, signature: bytes, signing_time: datetime.datetime
                    ) -> tuple[DocumentEntry, Association]:
    """The signature document's entry and its HasMember from the submission set.

    *submission* must have one submission set and at least one document (the
    caller has checked both).
    """
    submission_set = submission.submission_set
    first = submission.documents[0]
    entry = DocumentEntry(
        entry_uuid=new_uuid(), unique_id=new_oid(), patient_id=submission_set.patient_id,
        mime_type="text/xml", title=SIGNATURE_TITLE,
        class_code=copy.copy(SIGNATURE_CLASS), type_code=copy.copy(SIGNATURE_TYPE),
        format_code=copy.copy(SIGNATURE_FORMAT),
        healthcare_facility_type_code=copy.copy(first.healthcare_facility_type_code),
        practice_setting_code=copy.copy(first.practice_setting_code),
        confidentiality_codes=[copy.copy(NORMAL_CONFIDENTIALITY)],
        authors=copy.deepcopy(submission_set.authors or first.authors),
        creation_time=dtm(signing_time), service_start_time=first.service_start_time,
        service_stop_time=first.service_stop_time, language_code=first.language_code,
        source_patient_id=first.source_patient_id,
        source_patient_info=list(first.source_patient_info),
        legal_authenticator=first.legal_authenticator,
        hash=hashlib.sha1(signature).hexdigest(), size=str(len(signature)))
    association = Association(new_uuid(), HAS_MEMBER, source=submission_set.entry_uuid,
                              target=entry.entry_uuid,
                              extra_slots={SUBMISSION_SET_STATUS_SLOT: ["Original"]})
    return entry, association
