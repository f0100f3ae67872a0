"""An independent check of what prepare_for_dmp signs, as the DMP would make it.

It shares no code with xds.dmp: signxml's verifiers with the test CA as the
only trust anchor (chain, signature value, every SignedInfo reference, the
XAdES signing-certificate digest, the XML-DSig schema), then XPath checks of
what the DMP relies on: the assertion's Issuer is the signer's DN, its
Signature signs the whole assertion by ID with the agreed algorithms, the
Manifest lists each document with the SHA-256 of its bytes.
"""
from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree
from signxml import SignatureConfiguration, XMLVerifier
from signxml.exceptions import InvalidSignature
from signxml.xades import XAdESSignatureConfiguration, XAdESVerifier

from tests.xds.dmp.pki import NOW

NS = {"ds": "http://www.w3.org/2000/09/xmldsig#",
      "saml2": "urn:oasis:names:tc:SAML:2.0:assertion",
      "xades": "http://uri.etsi.org/01903/v1.3.2#",
      "wsse": "http://docs.oasis-open.org/wss/2004/01/"
              "oasis-200401-wss-wssecurity-secext-1.0.xsd",
      "wsu": "http://docs.oasis-open.org/wss/2004/01/"
             "oasis-200401-wss-wssecurity-utility-1.0.xsd",
      "soap": "http://www.w3.org/2003/05/soap-envelope",
      "hl7": "urn:hl7-org:v3"}
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"


class ManifestMismatch(InvalidSignature):
    """A document's bytes do not match the digest the Manifest signs."""


def _only(element, path: str):
    found = element.xpath(path, namespaces=NS)
    assert len(found) == 1, f"{path}: {len(found)} matches"
    return found[0]


def signer_certificate(signature: etree._Element) -> x509.Certificate:
    text = _only(signature, "ds:KeyInfo/ds:X509Data/ds:X509Certificate/text()")
    return x509.load_der_x509_certificate(base64.b64decode(text))


def verify_assertion(assertion_xml: bytes, ca_pem: Path) -> etree._Element:
    """The verified assertion (as signxml returns it), or raise signxml's exception."""
    result = XMLVerifier().verify(
        assertion_xml, ca_pem_file=str(ca_pem),
        expect_config=SignatureConfiguration(verification_time=NOW))
    assertion = result.signed_xml          # what was signed, the signature taken out
    signature = result.signature_xml
    assert assertion.tag == f"{{{NS['saml2']}}}Assertion"
    received = etree.fromstring(assertion_xml)
    placed = _only(received, "ds:Signature")
    assert received.index(placed) == 1, "ds:Signature must follow saml2:Issuer"
    assert _only(signature, "ds:SignedInfo/ds:SignatureMethod/@Algorithm") == RSA_SHA256
    assert _only(signature, "ds:SignedInfo/ds:CanonicalizationMethod/@Algorithm") == EXC_C14N
    reference = _only(signature, "ds:SignedInfo/ds:Reference")
    assert reference.get("URI") == "#" + assertion.get("ID")
    assert _only(reference, "ds:DigestMethod/@Algorithm") == SHA256
    issuer = _only(assertion, "saml2:Issuer/text()")
    assert issuer == signer_certificate(signature).subject.rfc4514_string()
    return assertion


def attributes(assertion: etree._Element) -> dict[str, list]:
    """Attribute name -> its values (text, or the HL7 CE element)."""
    found: dict[str, list] = {}
    for attribute in assertion.xpath("saml2:AttributeStatement/saml2:Attribute", namespaces=NS):
        for value in attribute.xpath("saml2:AttributeValue", namespaces=NS):
            children = list(value)
            found.setdefault(attribute.get("Name"), []).append(
                children[0] if children else value.text)
    return found


def verify_submission_signature(signature_xml: bytes, documents: dict[str, bytes],
                                ca_pem: Path) -> etree._Element:
    """Verify the XAdES signature and that it signs exactly *documents* (uniqueId -> bytes)."""
    results = XAdESVerifier().verify(
        signature_xml, ca_pem_file=str(ca_pem),
        expect_config=XAdESSignatureConfiguration(expect_references=3, verification_time=NOW))
    signature = results[0].signature_xml
    manifest = results[0].signed_xml
    assert manifest.tag == f"{{{NS['ds']}}}Manifest"
    reference = _only(signature, f"ds:SignedInfo/ds:Reference[@URI='#{manifest.get('Id')}']")
    assert reference.get("Type") == "http://www.w3.org/2000/09/xmldsig#Manifest"
    certificate = signer_certificate(signature)
    digest = _only(signature, ".//xades:SigningCertificateV2/xades:Cert/xades:CertDigest/"
                              "ds:DigestValue/text()")
    assert base64.b64decode(digest) == hashlib.sha256(
        certificate.public_bytes(serialization.Encoding.DER)).digest()
    listed = {ref.get("URI"): base64.b64decode(_only(ref, "ds:DigestValue/text()"))
              for ref in manifest.xpath("ds:Reference", namespaces=NS)}
    expected = {f"urn:oid:{unique_id}": hashlib.sha256(data).digest()
                for unique_id, data in documents.items()}
    if listed != expected:
        raise ManifestMismatch(f"the Manifest lists {sorted(listed)} with other digests than"
                               f" the documents {sorted(expected)}")
    return signature
