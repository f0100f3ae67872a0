"""
The XAdES-BES signature of a DMP submission set, in the form of IHE DSG
(Document Digital Signature, detached): a ``ds:Signature`` document whose
``ds:Manifest`` lists every document of the submission set by its uniqueId
and the SHA-256 digest of its bytes, and whose SignedInfo signs that
Manifest, the XAdES SignedProperties (signing time, digest of the signing
certificate, data object format, commitment type) and the KeyInfo.

The signature document travels in the submission as one more document (see
:mod:`xds.dmp.signature_entry`): the DMP knows it by its typeCode ``E1762``
(the ASTM code that JDV_J07 lists). signxml's XAdESSigner builds the
signature; lxml adds what signxml has no option for: the Manifest in its
``ds:Object``, the Reference's Manifest Type, a fixed signing time and the
commitment type.

Note the XML-DSig rule this relies on: core validation checks the
Manifest's digest, not the documents'; a verifier checks each document's
digest against the Manifest itself (:func:`manifest_digests` gives them).

test-case-name: tests.xds.dmp.test_xades
"""
from __future__ import annotations

import base64
import datetime
import hashlib
from dataclasses import dataclass

from lxml import etree
from signxml import SignatureConstructionMethod
from signxml.xades import XAdESDataObjectFormat, XAdESSigner

from xds.dmp.credentials import DMPCredentials
from xds.dmp.signing import DIGEST_METHOD, DS, SIGNER_SETTINGS
from xds.namespaces import qname

XADES = "http://uri.etsi.org/01903/v1.3.2#"
MANIFEST_TYPE = "http://www.w3.org/2000/09/xmldsig#Manifest"
MANIFEST_ID = "IHEManifest"
#: ASTM E1762 / ISO 17090 signature purpose "Source" (IHE DSG; verify for the DMP).
SOURCE_COMMITMENT = "urn:oid:1.2.840.10065.1.12.1.14"


def ds(local: str) -> str:
    """Clark name in the XML-DSig namespace."""
    return qname(DS, local)


def xades(local: str) -> str:
    """Clark name in the XAdES 1.3.2 namespace."""
    return qname(XADES, local)


@dataclass(frozen=True)
class SignedDocument:
    """One document of the submission set as the Manifest lists it."""

    unique_id: str
    sha256: bytes

    @property
    def uri(self) -> str:
        """``urn:oid:`` + an OID uniqueId (IHE DSG), the uniqueId itself otherwise."""
        if all(part.isdigit() for part in self.unique_id.split(".")):
            return f"urn:oid:{self.unique_id}"
        return self.unique_id

    @classmethod
    def of(cls, unique_id: str, data: bytes) -> "SignedDocument":
        """The entry for *data* (SHA-256 of the bytes)."""
        return cls(unique_id, hashlib.sha256(data).digest())


class _DSGSigner(XAdESSigner):
    """XAdESSigner with the DSG Manifest, a given signing time and a commitment type."""

    def __init__(self, manifest: etree._Element, signing_time: datetime.datetime,
                 commitment: str):
        super().__init__(method=SignatureConstructionMethod.detached,
                         data_object_format=XAdESDataObjectFormat(
                             Description="IHE DSG manifest of the submission set",
                             MimeType="text/xml"), **SIGNER_SETTINGS)
        self.manifest = manifest
        self.signing_time = signing_time
        self.commitment = commitment
        # After KeyInfo (schema order), before the XAdES object and the signing of SignedInfo.
        position = self.signature_annotators.index(self._build_xades_ds_object)
        self.signature_annotators.insert(position, self._place_manifest)
        self.signature_annotators.append(self._declare_c14n)
        self.signed_data_object_properties_annotators.append(self._add_commitment)

    def _place_manifest(self, sig_root, signing_settings) -> None:
        reference = sig_root.find(f"{ds('SignedInfo')}/{ds('Reference')}")
        reference.set("Type", MANIFEST_TYPE)
        etree.SubElement(sig_root, ds("Object")).append(self.manifest)

    def _declare_c14n(self, sig_root, signing_settings) -> None:
        """Name the canonicalisation signxml used on the references it adds without Transforms.

        Without a Transform a verifier must canonicalise with inclusive C14N 1.0
        (XML-DSig §4.3.3.2), which is not what these digests were computed with.
        """
        for reference in sig_root.iterfind(f"{ds('SignedInfo')}/{ds('Reference')}"):
            if reference.find(ds("Transforms")) is None:
                transforms = etree.Element(ds("Transforms"))
                etree.SubElement(transforms, ds("Transform"), Algorithm=self.c14n_alg.value)
                reference.insert(0, transforms)

    def add_signing_time(self, signed_signature_properties, sig_root, signing_settings) -> None:
        etree.SubElement(signed_signature_properties, xades("SigningTime")).text = (
            self.signing_time.astimezone(datetime.timezone.utc).isoformat(timespec="seconds"))

    def _add_commitment(self, signed_data_object_properties, sig_root, signing_settings) -> None:
        indication = etree.SubElement(signed_data_object_properties,
                                      xades("CommitmentTypeIndication"))
        identifier = etree.SubElement(etree.SubElement(indication, xades("CommitmentTypeId")),
                                      xades("Identifier"), Qualifier="OIDAsURN")
        identifier.text = self.commitment
        etree.SubElement(indication, xades("AllSignedDataObjects"))


def manifest(documents: list[SignedDocument]) -> etree._Element:
    """The ``ds:Manifest`` listing *documents* (URI and SHA-256 digest each)."""
    if not documents:
        raise ValueError("a submission-set signature needs at least one document to sign")
    element = etree.Element(ds("Manifest"), Id=MANIFEST_ID, nsmap={"ds": DS})
    for document in documents:
        reference = etree.SubElement(element, ds("Reference"), URI=document.uri)
        etree.SubElement(reference, ds("DigestMethod"), Algorithm=DIGEST_METHOD.value)
        etree.SubElement(reference, ds("DigestValue")).text = (
            base64.b64encode(document.sha256).decode("ascii"))
    return element


def sign_submission_set(documents: list[SignedDocument], credentials: DMPCredentials,
                        signing_time: datetime.datetime,
                        commitment: str = SOURCE_COMMITMENT) -> etree._Element:
    """The detached XAdES-BES ``ds:Signature`` over *documents*' Manifest.

    CPU-bound (RSA): call it off the reactor thread.
    """
    if signing_time.tzinfo is None:
        raise ValueError("signing_time must be an aware datetime")
    signer = _DSGSigner(manifest(documents), signing_time, commitment)
    payload = signer.manifest
    return signer.sign(payload, key=credentials.key, cert=list(credentials.certificates))


def manifest_digests(signature: etree._Element) -> dict[str, bytes]:
    """URI -> SHA-256 digest of each document the signature's Manifest lists."""
    found = {}
    for reference in signature.iterfind(f".//{ds('Manifest')}/{ds('Reference')}"):
        found[reference.get("URI", "")] = base64.b64decode(
            reference.findtext(ds("DigestValue")) or "")
    return found
