"""The VIHF assertion: what it says, that its signature verifies against the CA,
and that a changed assertion or a certificate from elsewhere does not."""
from __future__ import annotations

import datetime

import pytest
from lxml import etree
from signxml.exceptions import InvalidCertificate, InvalidDigest, InvalidSignature

from tests.xds.builders import PATIENT
from tests.xds.dmp.pki import NOW, pki
from tests.xds.dmp.verifier import NS, attributes, verify_assertion
from xds.dmp.vihf import (
    ATTRIBUTE_PURPOSE_OF_USE, ATTRIBUTE_RESOURCE_ID, ATTRIBUTE_ROLE, ATTRIBUTE_SUBJECT_ID,
    Practitioner, VIHFDescription, build_assertion, vihf_security_header,
)

LOGIN = NOW - datetime.timedelta(hours=1)


def _header(practitioner, credentials, **overrides):
    description = VIHFDescription(practitioner, PATIENT, LOGIN, **overrides)
    return vihf_security_header(description, credentials, NOW)


def _assertion_bytes(header) -> bytes:
    """The assertion as the receiver gets it: serialised inside the envelope, cut out again."""
    wire = etree.fromstring(etree.tostring(header))
    return etree.tostring(wire.find(f"{{{NS['saml2']}}}Assertion"))


def test_assertion_verifies_against_the_ca(practitioner, credentials, pki_files):
    """If the signature or its placement were wrong, then the verifier would raise."""
    assertion = verify_assertion(_assertion_bytes(_header(practitioner, credentials)),
                                 pki_files["ca"])
    assert assertion.xpath("saml2:Subject/saml2:NameID/text()", namespaces=NS) == [
        "801234567897"]


def test_assertion_says_who_for_whom_and_why(practitioner, credentials, pki_files):
    """If an attribute the DMP reads were missing or wrong, then this would show which."""
    assertion = verify_assertion(_assertion_bytes(_header(practitioner, credentials)),
                                 pki_files["ca"])
    found = attributes(assertion)
    texts = {name: values for name, values in found.items() if isinstance(values[0], str)}
    assert texts == {
        "VIHF_Version": ["4.0"], "Identifiant_Structure": ["1750803447"],
        "Secteur_Activite": ["SA01^1.2.250.1.71.4.2.4"],
        ATTRIBUTE_SUBJECT_ID: ["DAVID Charles, Médecine interne"],
        ATTRIBUTE_RESOURCE_ID: [PATIENT], "Ressource_URN": ["urn:dmp"],
        "Authentification_Mode": ["INDIRECTE"], "LPS_Nom": ["Aiguillage"],
        "LPS_Version": ["0.1.0"], "LPS_ID_HOMOLOGATION_DMP": ["HOMOLOG-TEST-1"]}
    roles = [(role.tag, role.get("code"), role.get("codeSystem"))
             for role in found[ATTRIBUTE_ROLE]]
    assert roles == [(f"{{{NS['hl7']}}}Role", "10", "1.2.250.1.213.1.1.4.5"),
                     (f"{{{NS['hl7']}}}Role", "SM26", "1.2.250.1.213.1.1.4.5")]
    purpose = found[ATTRIBUTE_PURPOSE_OF_USE][0]
    assert (purpose.get("code"), purpose.get(
                                             "{http://www.w3.org/2001/XMLSchema-instance}type")
            ) == ("normal", "CE")
    instant = assertion.xpath("saml2:AuthnStatement/@AuthnInstant", namespaces=NS)
    assert instant == ["2026-12-06T09:00:00Z"]


def test_header_has_a_timestamp_before_the_assertion(practitioner, credentials):
    """If the timestamp were missing or after the assertion, then WS-Security readers would balk."""
    header = _header(practitioner, credentials)
    assert [etree.QName(child).localname for child in header] == ["Timestamp", "Assertion"]
    assert header.xpath("wsu:Timestamp/wsu:Created/text()", namespaces=NS) == [
        "2026-12-06T10:00:00Z"]
    assert header.xpath("wsu:Timestamp/wsu:Expires/text()", namespaces=NS) == [
        "2026-12-06T10:05:00Z"]
    assert header.get(f"{{{NS['soap']}}}mustUnderstand") == "true"


@pytest.mark.parametrize("path, value", [
    (f"saml2:AttributeStatement/saml2:Attribute[@Name='{ATTRIBUTE_RESOURCE_ID}']"
     "/saml2:AttributeValue", "123456789012345^^^&1.2.250.1.213.1.4.8&ISO^NH"),
    ("saml2:Subject/saml2:NameID", "899999999999"),
    ("saml2:Issuer", "CN=Someone else"),
])
def test_tampered_assertion_fails(practitioner, credentials, pki_files, path, value):
    """If a changed patient, subject or issuer still verified, then the signature would be useless."""
    assertion = etree.fromstring(_assertion_bytes(_header(practitioner, credentials)))
    assertion.xpath(path, namespaces=NS)[0].text = value
    with pytest.raises((InvalidDigest, InvalidSignature)):
        verify_assertion(etree.tostring(assertion), pki_files["ca"])


def test_certificate_from_another_ca_fails(practitioner, pki_files):
    """If a certificate the verifier does not trust passed, then anyone could sign a VIHF."""
    header = _header(practitioner, pki().credentials(pki().wrong))
    with pytest.raises(InvalidCertificate):
        verify_assertion(_assertion_bytes(header), pki_files["ca"])


def test_a_role_is_required(credentials):
    """If a VIHF without role were built, then the DMP would refuse it without saying why here."""
    nobody = Practitioner("801234567897", "DAVID Charles", ())
    with pytest.raises(ValueError, match="subject:role"):
        build_assertion(VIHFDescription(nobody, PATIENT, LOGIN), credentials, NOW,
                        datetime.timedelta(minutes=5))


def test_naive_times_are_refused(practitioner, credentials):
    """If a naive time were taken as UTC, then a local clock would shift the validity window."""
    with pytest.raises(ValueError, match="no time zone"):
        build_assertion(VIHFDescription(practitioner, PATIENT, LOGIN), credentials,
                        datetime.datetime(2026, 12, 6, 10, 0), datetime.timedelta(minutes=5))
