"""
The one function a DMP destination calls on each request before sending it:
:func:`prepare_for_dmp`. For ITI-41 it checks the submission against the DMP
rules (qualified INS, French value sets, DMP-required attributes), signs the
submission set (XAdES, IHE DSG) and adds the signature as one more document;
for every transaction it adds the signed VIHF in a WS-Security header.

The request given is left untouched (a retry prepares it again from the
original: a new VIHF, a new signature); the prepared copy is returned.

test-case-name: tests.xds.dmp.test_prepare
"""
from __future__ import annotations

import base64
import binascii
import copy
import dataclasses
import datetime
import hashlib
from typing import Iterator

from lxml import etree

from xds.client.http import SOAPRequest
from xds.dmp.credentials import DMPCredentials
from xds.dmp.ins import check_ins
from xds.dmp.signature_entry import signature_entry
from xds.dmp.values import DMPValueSets, check_values
from xds.dmp.vihf import (
    AUTHN_TLS_CLIENT, NORMAL_ACCESS, Practitioner, VIHFDescription, vihf_security_header,
)
from xds.dmp.xades import SignedDocument, sign_submission_set
from xds.metadata import errors as codes
from xds.metadata.errors import MetadataError, RegistryError
from xds.metadata.model import Code, Submission
from xds.metadata.reading import read_submission
from xds.metadata.vocabulary import ACTION_PNR
from xds.metadata.writing import registry_object_list
from xds.namespaces import LCM, SOAP12, XDS, XOP, qname, rim
from xds.soap.mtom import OutgoingPart, new_content_id
from xds.soap.documents import DEFAULT_MAX_INLINE_BYTES

_BLOCK = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class DMPContext:
    """What prepare_for_dmp needs besides the structure's credentials.

    Per destination: *value_sets* (:func:`xds.dmp.values.load_value_sets`),
    *practitioner* (for an automated flow, the person responsible for it),
    *authn_context*, *vihf_lifetime*. Per message: *identity_status*, the
    patient's PID-32 (``QUAL`` needed for ITI-41), *patient_ins* for the
    transactions whose request names no patient (ITI-43; ITI-41 takes the
    submission set's patientId), *purpose_of_use*, *confidentiality*,
    *authn_instant*. *now* fixes the clock (tests); None is the current time.
    """

    practitioner: Practitioner
    value_sets: DMPValueSets
    identity_status: str = ""
    patient_ins: str = ""
    purpose_of_use: Code = dataclasses.field(default_factory=lambda: NORMAL_ACCESS)
    authn_context: str = AUTHN_TLS_CLIENT
    authn_instant: datetime.datetime | None = None
    confidentiality: tuple[Code, ...] = ()
    vihf_lifetime: datetime.timedelta = datetime.timedelta(minutes=5)
    security_must_understand: bool = True
    now: datetime.datetime | None = None


class DMPPreparationError(MetadataError):
    """The request must not go to the DMP; ``errors`` says why (standard XDS error codes)."""


def prepare_for_dmp(request: SOAPRequest, credentials: DMPCredentials,
                    context: DMPContext) -> SOAPRequest:
    """A copy of *request* ready for the DMP, or raise :class:`DMPPreparationError`.

    ITI-41 (``request.action`` ProvideAndRegisterDocumentSet-b): the submission
    is checked (qualified INS as patientId, value sets, DMP-required
    attributes), its documents' SHA-256 digests are signed (XAdES-BES, IHE DSG
    Manifest) with the structure's key, and the signature joins the submission
    as a document (an MTOM part when the request is MTOM, inline otherwise).
    Every action: a ``wsse:Security`` header with a timestamp and the signed
    VIHF is added.

    Blocking and CPU-bound (two RSA signatures, digests of every document):
    call it in a thread (``deferToThread``), never on the reactor.
    """
    now = context.now or datetime.datetime.now(datetime.timezone.utc)
    _refuse_if_any(_certificate_problems(credentials, now))
    envelope = copy.deepcopy(request.envelope)
    parts = list(request.parts)
    body = _body(envelope)
    patient_ins = context.patient_ins
    if request.action == ACTION_PNR:
        patient_ins = _sign_submission(body, parts, request.mtom, credentials, context, now)
    if not patient_ins:
        raise DMPPreparationError([RegistryError(
            codes.REGISTRY_METADATA_ERROR,
            f"no patient INS for the VIHF of {request.action}: set DMPContext.patient_ins")])
    description = VIHFDescription(
        practitioner=context.practitioner, patient_ins=patient_ins,
        authn_instant=context.authn_instant or now, purpose_of_use=context.purpose_of_use,
        authn_context=context.authn_context, confidentiality=context.confidentiality)
    _header(envelope).append(vihf_security_header(description, credentials, now,
                                                  context.vihf_lifetime,
                                                  context.security_must_understand))
    return request.replace(envelope=envelope, parts=parts)


def _sign_submission(body: etree._Element, parts: list[OutgoingPart], mtom: bool,
                     credentials: DMPCredentials, context: DMPContext,
                     now: datetime.datetime) -> str:
    """Check, sign and extend the ITI-41 body in place; the submission set's patientId."""
    try:
        submission = read_submission(body)
    except MetadataError as exc:
        raise DMPPreparationError(exc.errors) from None
    _refuse_if_any([e for e in submission.reading_problems if e.is_error])
    if submission.submission_set is None or not submission.documents:
        _refuse_if_any([RegistryError(
            codes.REGISTRY_METADATA_ERROR,
            f"a DMP submission has exactly one SubmissionSet and at least one DocumentEntry;"
            f" this one has {len(submission.submission_sets)} and {len(submission.documents)}")])
    _refuse_if_any(check_ins(submission, context.identity_status)
                   + check_values(submission, context.value_sets))
    digests = _document_digests(body, parts)
    missing = [RegistryError(codes.MISSING_DOCUMENT,
                             f"DocumentEntry {entry.entry_uuid!r} has no xds:Document to sign",
                             entry.entry_uuid)
               for entry in submission.documents if entry.entry_uuid not in digests]
    _refuse_if_any(missing)
    signed = [SignedDocument(entry.unique_id, digests[entry.entry_uuid])
              for entry in submission.documents]
    signature = etree.tostring(sign_submission_set(signed, credentials, now),
                               xml_declaration=True, encoding="UTF-8")
    _add_signature(body, parts, mtom, submission, signature, now)
    return submission.submission_set.patient_id


def _certificate_problems(credentials: DMPCredentials,
                          now: datetime.datetime) -> list[RegistryError]:
    """The signing certificate checked again at each request: it was valid when loaded."""
    certificate = credentials.certificate
    if certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        return []
    return [RegistryError(codes.REGISTRY_ERROR, (
        f"the structure's certificate {credentials.subject_dn} is valid from"
        f" {certificate.not_valid_before_utc:%Y-%m-%d} to"
        f" {certificate.not_valid_after_utc:%Y-%m-%d}, not on {now:%Y-%m-%d}: renew it"))]


def _refuse_if_any(errors: list[RegistryError]) -> None:
    if errors:
        raise DMPPreparationError(errors)


def _body(envelope: etree._Element) -> etree._Element:
    body = envelope.find(qname(SOAP12, "Body"))
    children = [child for child in body if isinstance(child.tag, str)] if body is not None else []
    if not children:
        raise DMPPreparationError([RegistryError(codes.REGISTRY_ERROR,
                                                 "the request envelope has an empty Body")])
    return children[0]


def _header(envelope: etree._Element) -> etree._Element:
    header = envelope.find(qname(SOAP12, "Header"))
    if header is None:
        header = etree.Element(qname(SOAP12, "Header"))
        envelope.insert(0, header)
    return header


def _document_digests(body: etree._Element, parts: list[OutgoingPart]) -> dict[str, bytes]:
    """``xds:Document/@id`` -> SHA-256 of its bytes, inline or in an MTOM part."""
    by_content_id = {part.content_id: part for part in parts}
    digests = {}
    for element in body.iterfind(qname(XDS, "Document")):
        document_id = element.get("id", "")
        include = element.find(qname(XOP, "Include"))
        if include is None:
            digests[document_id] = hashlib.sha256(_inline(element, document_id)).digest()
            continue
        content_id = include.get("href", "").removeprefix("cid:")
        part = by_content_id.get(content_id)
        if part is None:
            raise DMPPreparationError([RegistryError(
                codes.MISSING_DOCUMENT,
                f"Document {document_id!r} points at MIME part <{content_id}>, which the request"
                f" does not carry", document_id)])
        digests[document_id] = _part_digest(part)
    return digests


def _inline(element: etree._Element, document_id: str) -> bytes:
    text = "".join((element.text or "").split())
    if len(text) // 4 * 3 > DEFAULT_MAX_INLINE_BYTES:
        raise DMPPreparationError([RegistryError(
            codes.REPOSITORY_ERROR, f"Document {document_id!r} is over the inline limit",
            document_id)])
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise DMPPreparationError([RegistryError(
            codes.REPOSITORY_ERROR, f"Document {document_id!r} is not valid base64: {exc}",
            document_id)]) from None


def _part_digest(part: OutgoingPart) -> bytes:
    """SHA-256 of a part's bytes; a file is read and put back where it was."""
    if isinstance(part.source, (bytes, bytearray)):
        return hashlib.sha256(part.source).digest()
    start = part.source.tell()
    digest = hashlib.sha256()
    for block in _blocks(part.source):
        digest.update(block)
    part.source.seek(start)
    return digest.digest()


def _blocks(source) -> Iterator[bytes]:
    return iter(lambda: source.read(_BLOCK), b"")


def _add_signature(body: etree._Element, parts: list[OutgoingPart], mtom: bool,
                   submission: Submission, signature: bytes, now: datetime.datetime) -> None:
    """Add the signature's DocumentEntry, HasMember and xds:Document to the ITI-41 body."""
    entry, association = signature_entry(submission, signature, now)
    objects = body.find(f"{qname(LCM, 'SubmitObjectsRequest')}/{rim('RegistryObjectList')}")
    if objects is None:
        raise DMPPreparationError([RegistryError(
            codes.REGISTRY_METADATA_ERROR, "ITI-41 body has no lcm:SubmitObjectsRequest/"
            "rim:RegistryObjectList to add the signature to")])
    for element in list(registry_object_list(Submission(documents=[entry],
                                                        associations=[association]))):
        objects.append(element)
    document = etree.SubElement(body, qname(XDS, "Document"), id=entry.entry_uuid)
    if mtom:
        content_id = new_content_id()
        etree.SubElement(document, qname(XOP, "Include"), href=f"cid:{content_id}")
        parts.append(OutgoingPart(content_id, "text/xml", signature))
    else:
        document.text = base64.b64encode(signature).decode("ascii")
