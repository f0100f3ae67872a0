"""
An ITI-41 submission (DocumentEntry, SubmissionSet, HasMember) for one CDA R2 document, the
DocumentEntry derived from its header (:mod:`xds.cda.entry`) and completed by the channel's
metadata settings (:class:`xds.transforms.mdm.SubmissionOptions`).

Why through :func:`xds.transforms.mdm.submission_from_mdm`: a CDA carried by an MDM^T02 and
a CDA made by a transform are submitted the same way, with one set of rules for what the
header decides, what the settings fill in (class, facility, practice setting, format,
confidentiality when the header is silent) and how hash and size are computed. The document
is the reference: here the message time is the time of the submission.

test-case-name: tests.xds.test_payload
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from xds.cda.header import CDAError, read_cda_header
from xds.metadata.writing import new_uuid
from xds.safexml import UnsafeXMLError
from xds.transforms.mdm import MdmSubmission, SubmissionOptions, submission_from_mdm

__all__ = ["submission_from_cda"]


@dataclass(frozen=True)
class _CDAValues:
    """The :class:`xds.transforms.mdm.MdmValues` of a document with no message around it."""

    content: bytes
    message_time: str
    mime_type: str = "text/xml"
    patient_ids: tuple = ()
    identity_status: str = ""
    family: str = ""
    given: str = ""
    birth_date: str = ""
    sex: str = ""
    unique_id: str = ""
    type_code: tuple[str, str, str] = ("", "", "")
    local_type: tuple[str, str, str] = ("", "", "")
    creation_time: str = ""
    authors: tuple[str, ...] = field(default=())


def submission_from_cda(document: bytes, options: SubmissionOptions, *,
                        new_id: Callable[[], str] = new_uuid,
                        now: Callable[[], float] = time.time) -> MdmSubmission:
    """The ProvideAndRegister content for *document*; raise :class:`CDAError` when it is
    not a CDA R2 document whose header can be read (blocking: parses XML)."""
    try:
        header = read_cda_header(document)
    except UnsafeXMLError as error:
        raise CDAError(str(error)) from None
    submitted = time.strftime("%Y%m%d%H%M%S", time.gmtime(now()))
    return submission_from_mdm(_CDAValues(document, submitted), options, new_id=new_id,
                               header=header)
