"""
An XDS.b submission (DocumentEntry, SubmissionSet, HasMember) for one CDA R2 document,
its metadata derived from the document's header (:func:`xds.cda.entry.document_entry_from_cda`):
what ``aiguillage xds submit FILE.xml`` sends with ITI-41.

What a header does not say (classCode, the Document Source's OID, facility type and practice
setting when absent) comes from :class:`xds.transforms.mdm.SubmissionOptions`, the same
settings an MDM channel has; hash and size are computed so that the repository checks them.

test-case-name: tests.xds.test_cda_submission
"""
from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import replace
from typing import Callable

from xds.cda.entry import document_entry_from_cda
from xds.cda.header import read_cda_header
from xds.metadata.model import Association, Submission, SubmissionSet
from xds.metadata.writing import new_uuid
from xds.transforms.mdm import MIME_TYPE_SUFFICIENT, SubmissionOptions


def submission_from_cda(document: bytes, options: SubmissionOptions, *,
                        new_id: Callable[[], str] = new_uuid,
                        now: Callable[[], float] = time.time
                        ) -> tuple[Submission, dict[str, bytes]]:
    """(the submission, {DocumentEntry id: the document}) for one CDA; raises
    :class:`xds.cda.header.CDAError` or :class:`xds.safexml.UnsafeXMLError` for a file that
    is not a readable ClinicalDocument."""
    header = read_cda_header(document)
    entry = document_entry_from_cda(header, entry_uuid=new_id(), class_code=options.class_code,
                                    patient_id=options.patient_id)
    entry = replace(
        entry,
        format_code=entry.format_code or MIME_TYPE_SUFFICIENT,
        healthcare_facility_type_code=(entry.healthcare_facility_type_code
                                       or options.healthcare_facility_type_code),
        practice_setting_code=entry.practice_setting_code or options.practice_setting_code,
        confidentiality_codes=entry.confidentiality_codes or [options.confidentiality],
        language_code=entry.language_code or options.language_code,
        hash=hashlib.sha1(document).hexdigest(), size=str(len(document)))
    submission_set = SubmissionSet(
        entry_uuid=new_id(), unique_id=f"2.25.{uuid.uuid4().int}", source_id=options.source_id,
        patient_id=entry.patient_id,
        submission_time=time.strftime("%Y%m%d%H%M%S", time.gmtime(now())),
        content_type_code=options.content_type_code or entry.type_code,
        authors=list(entry.authors), title=entry.title)
    association = Association(new_id(), source=submission_set.entry_uuid, target=entry.entry_uuid,
                              extra_slots={"SubmissionSetStatus": ["Original"]})
    submission = Submission(submission_sets=[submission_set], documents=[entry],
                            associations=[association])
    return submission, {entry.entry_uuid: document}


__all__ = ["submission_from_cda"]
