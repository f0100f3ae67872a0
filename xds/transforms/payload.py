"""
The forms a document travels in through the engine, between a transform or an XDS source
and an XDS destination, as bytes that say what they are.

Why bytes that describe themselves: a message and its deliveries are stored as bytes, and a
delivery is sent again after a restart or a replay, so what an XDS destination receives must
carry everything it needs. Two forms are understood:

- a CDA R2 document (root ``ClinicalDocument``, media type ``text/xml``): the destination
  derives the DocumentEntry from its header;
- a submission (media type :data:`SUBMISSION_MEDIA_TYPE`): an
  ``xds:ProvideAndRegisterDocumentSetRequest`` with every document inline in base64, which
  carries the metadata and each document's mimeType. It is the ITI-41 body itself, so that a
  stored message can be read with ``aiguillage messages show`` and checked against the
  XDS.b schema.

test-case-name: tests.xds.test_payload
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from xds.metadata.errors import MetadataError
from xds.metadata.model import Submission
from xds.namespaces import XDS, qname
from xds.safexml import DEFAULT_MAX_BYTES, UnsafeXMLError, parse_xml, to_bytes
from xds.soap.documents import provide_and_register_request, read_provide_and_register
from xds.soap.mtom import MTOMError

__all__ = ["CDA_MEDIA_TYPE", "SUBMISSION_MEDIA_TYPE", "PayloadError", "ReadPayload",
           "document_patient", "read_payload", "submission_payload"]

CDA_MEDIA_TYPE = "text/xml"
#: A ProvideAndRegisterDocumentSetRequest with its documents inline.
SUBMISSION_MEDIA_TYPE = "application/xds-pnr+xml"
_CDA_ROOT = "{urn:hl7-org:v3}ClinicalDocument"
_PNR_ROOT = qname(XDS, "ProvideAndRegisterDocumentSetRequest")


class PayloadError(ValueError):
    """The bytes are neither a CDA document nor a submission; the text says what they are."""


@dataclass
class ReadPayload:
    """What a payload holds: a CDA (``cda`` bytes) or a submission and its documents."""

    media_type: str
    cda: bytes = b""
    submission: Submission | None = None
    documents: dict[str, bytes] | None = None


def submission_payload(submission: Submission, documents: Mapping[str, bytes]) -> bytes:
    """The ITI-41 body for *submission*, documents (by DocumentEntry id) inline."""
    body, _ = provide_and_register_request(submission, documents, optimise=False)
    return to_bytes(body)


def document_patient(data: bytes) -> str:
    """The patientId (CX) a stored document is about, as its source said at first intake:
    a submission's SubmissionSet patientId; "" for a CDA, which no source described by its
    patient. Raise :class:`PayloadError` when *data* is neither (blocking: parses XML)."""
    read = read_payload(data)
    if read.submission is None or read.submission.submission_set is None:
        return ""
    return read.submission.submission_set.patient_id


def read_payload(data: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> ReadPayload:
    """Which form *data* is in, read; raise :class:`PayloadError` (blocking: parses XML)."""
    head = bytes(data[:64]).lstrip()
    if head.startswith(b"MSH"):
        raise PayloadError("the payload is an HL7 v2 message, not a CDA document or an XDS "
                           "submission: name a transform (oru-to-cda, mdm-to-xds) on the "
                           "channel or the destination")
    try:
        root = parse_xml(data, max_bytes=max_bytes, what="payload")
    except UnsafeXMLError as error:
        raise PayloadError(str(error)) from None
    if root.tag == _CDA_ROOT:
        return ReadPayload(CDA_MEDIA_TYPE, cda=bytes(data))
    if root.tag != _PNR_ROOT:
        raise PayloadError(f"the payload's root element is {root.tag}, neither a CDA "
                           "ClinicalDocument nor an xds:ProvideAndRegisterDocumentSetRequest")
    try:
        submission, read = read_provide_and_register(root, {}, max_bytes)
    except (MetadataError, MTOMError) as error:
        raise PayloadError(f"the submission cannot be read: {error}") from None
    documents = {key: document.read_bytes() for key, document in read.items()}
    return ReadPayload(SUBMISSION_MEDIA_TYPE, submission=submission, documents=documents)
