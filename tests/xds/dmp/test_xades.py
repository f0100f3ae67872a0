"""The XAdES-BES (IHE DSG) signature of the submission set: verified by an
independent verifier with the test CA; a changed document, Manifest or signed
property, or a certificate from another CA, fails."""
from __future__ import annotations

import base64
import datetime

import pytest
from lxml import etree
from signxml.exceptions import InvalidCertificate, InvalidDigest, InvalidSignature

from tests.xds.dmp.pki import NOW, pki
from tests.xds.dmp.verifier import NS, ManifestMismatch, verify_submission_signature
from xds.dmp.xades import SignedDocument, manifest_digests, sign_submission_set

DOCUMENTS = {"1.2.250.1.999.1.1": b"<ClinicalDocument>one</ClinicalDocument>",
             "1.2.250.1.999.1.2": b"%PDF-1.4 two"}


def _signature(credentials=None) -> bytes:
    signed = [SignedDocument.of(unique_id, data) for unique_id, data in DOCUMENTS.items()]
    element = sign_submission_set(signed, credentials or pki().credentials(), NOW)
    return etree.tostring(element)


def test_signature_verifies_and_lists_every_document(pki_files):
    """If a reference, the Manifest or the certificate digest were wrong, the verifier would raise."""
    signature = verify_submission_signature(_signature(), DOCUMENTS, pki_files["ca"])
    assert signature.xpath(".//xades:SigningTime/text()", namespaces=NS) == [
        "2026-12-06T10:00:00+00:00"]
    assert signature.xpath("ds:SignedInfo/ds:SignatureMethod/@Algorithm", namespaces=NS) == [
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"]


def test_every_signed_info_reference_names_its_canonicalisation():
    """If a reference had no Transform, a conforming verifier would digest it with inclusive C14N."""
    signature = etree.fromstring(_signature())
    for reference in signature.xpath("ds:SignedInfo/ds:Reference", namespaces=NS):
        assert reference.xpath("ds:Transforms/ds:Transform/@Algorithm", namespaces=NS) == [
            "http://www.w3.org/2001/10/xml-exc-c14n#"]


def test_commitment_and_format_are_signed_properties():
    """If the DSG commitment type or the data format were missing, the signature would not be DSG."""
    signature = etree.fromstring(_signature())
    properties = "ds:Object/xades:QualifyingProperties/xades:SignedProperties/"
    assert signature.xpath(properties + ".//xades:CommitmentTypeId/xades:Identifier/text()",
                           namespaces=NS) == ["urn:oid:1.2.840.10065.1.12.1.14"]
    assert signature.xpath(properties + ".//xades:DataObjectFormat/xades:MimeType/text()",
                           namespaces=NS) == ["text/xml"]


def test_changed_document_fails(pki_files):
    """If a document changed after signing still passed, the Manifest would protect nothing."""
    changed = {**DOCUMENTS, "1.2.250.1.999.1.2": b"%PDF-1.4 forged"}
    with pytest.raises(ManifestMismatch):
        verify_submission_signature(_signature(), changed, pki_files["ca"])


def test_extra_or_missing_document_fails(pki_files):
    """If the signature covered fewer documents than were sent, the check would say so."""
    with pytest.raises(ManifestMismatch):
        verify_submission_signature(_signature(), {**DOCUMENTS, "1.2.3": b"x"}, pki_files["ca"])


@pytest.mark.parametrize("path", [
    ".//ds:Manifest/ds:Reference[1]/ds:DigestValue",
    ".//xades:SigningTime",
])
def test_changed_signed_content_fails(pki_files, path):
    """If the Manifest or a signed property could be changed, the signature would not bind them."""
    signature = etree.fromstring(_signature())
    target = signature.xpath(path, namespaces=NS)[0]
    target.text = (base64.b64encode(b"\0" * 32).decode() if "Digest" in path
                   else "2020-01-01T00:00:00+00:00")
    with pytest.raises((InvalidDigest, InvalidSignature)):
        verify_submission_signature(etree.tostring(signature), DOCUMENTS, pki_files["ca"])


def test_certificate_from_another_ca_fails(pki_files):
    """If an untrusted certificate passed, anyone could sign in the structure's name."""
    with pytest.raises(InvalidCertificate):
        verify_submission_signature(_signature(pki().credentials(pki().wrong)), DOCUMENTS,
                                    pki_files["ca"])


def test_manifest_digests_reads_back_what_was_signed():
    """If the helper misread the Manifest, the prepare tests would compare the wrong digests."""
    found = manifest_digests(etree.fromstring(_signature()))
    assert found == {SignedDocument.of(k, v).uri: SignedDocument.of(k, v).sha256
                     for k, v in DOCUMENTS.items()}


def test_uri_of_a_root_extension_unique_id_is_kept():
    """If a non-OID uniqueId got urn:oid:, the DMP could not match it to its document."""
    assert SignedDocument.of("1.2.3^ABC", b"").uri == "1.2.3^ABC"
    assert SignedDocument.of("1.2.3", b"").uri == "urn:oid:1.2.3"


def test_nothing_to_sign_and_naive_time_are_refused(credentials):
    """If an empty Manifest or a naive time were accepted, the DMP would refuse the signature."""
    with pytest.raises(ValueError, match="at least one document"):
        sign_submission_set([], credentials, NOW)
    with pytest.raises(ValueError, match="aware"):
        sign_submission_set([SignedDocument.of("1.2", b"x")], credentials,
                            datetime.datetime(2026, 12, 6))
