"""
The VIHF ("vecteur d'identification et d'habilitation formelles"): the SAML
2.0 assertion every DMP call carries in its WS-Security header, saying who
sends (the practitioner, or the person responsible for an automated flow),
for which structure, in which role, about which patient (the INS), why
(purpose of use) and how the user was authenticated. It is signed by the
structure's cachet certificate (enveloped XML-DSig, see
:mod:`xds.dmp.signing`); its Issuer is that certificate's subject DN.

Attribute names and constants follow the ANS mapping summarised in
shared/standards/NOTES.md §5.3; the values marked "(verify)" in docs/xds.md
are to be confirmed against the DMP test platform.

test-case-name: tests.xds.dmp.test_vihf
"""
from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass, field

from lxml import etree
from signxml import SignatureConstructionMethod, XMLSigner

from xds.dmp.credentials import DMPCredentials
from xds.dmp.signing import DS, SIGNER_SETTINGS
from xds.metadata.model import Code
from xds.namespaces import CDA, SOAP12, XSI, qname

SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
XS = "http://www.w3.org/2001/XMLSchema"

X509_SUBJECT_NAME = "urn:oasis:names:tc:SAML:1.1:nameid-format:X509SubjectName"
UNSPECIFIED_NAME = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
SENDER_VOUCHES = "urn:oasis:names:tc:SAML:2.0:cm:sender-vouches"
#: SAML authentication context classes most used by hospital software.
AUTHN_TLS_CLIENT = "urn:oasis:names:tc:SAML:2.0:ac:classes:TLSClient"
AUTHN_PASSWORD_PROTECTED = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
AUTHN_SMARTCARD_PKI = "urn:oasis:names:tc:SAML:2.0:ac:classes:SmartcardPKI"

ATTRIBUTE_SUBJECT_ID = "urn:oasis:names:tc:xspa:1.0:subject:subject-id"
ATTRIBUTE_ROLE = "urn:oasis:names:tc:xacml:2.0:subject:role"
ATTRIBUTE_PURPOSE_OF_USE = "urn:oasis:names:tc:xspa:1.0:subject:purposeofuse"
ATTRIBUTE_RESOURCE_ID = "urn:oasis:names:tc:xacml:2.0:resource:resource-id"
ATTRIBUTE_CONFIDENTIALITY = "urn:oasis:names:tc:xspa:1.0:resource:patient:hl7:confidentiality-code"

VIHF_VERSION = "4.0"
RESOURCE_URN = "urn:dmp"
INDIRECT_AUTHENTICATION = "INDIRECTE"
#: Purpose of use ("mode d'accès"): normal access. Code system (verify) against the DMP guide.
NORMAL_ACCESS = Code("normal", "1.2.250.1.213.1.1.4.248", "Accès normal")


@dataclass(frozen=True)
class Practitioner:
    """The VIHF subject: a person, or the person responsible for an automated flow.

    *identifier* is the NameID (idNat_PS, e.g. ``8`` + RPPS); *name* the
    ``subject-id`` (name, given name and service, or software, model and
    service); *roles* the 1 to 4 ``subject:role`` codes of JDV_J65 (profession,
    then savoir-faire for physicians and pharmacists, ...).
    """

    identifier: str
    name: str
    roles: tuple[Code, ...]


@dataclass(frozen=True)
class VIHFDescription:
    """Everything a VIHF says beyond the structure's credentials.

    *patient_ins* is the INS in CX form, as in the XDS patientId
    (``matricule^^^&1.2.250.1.213.1.4.8&ISO^NH``). *authn_instant* is when the
    user logged in to the source system (for a flow: when it started).
    *confidentiality* carries the codes of a secret connection, if any.
    """

    practitioner: Practitioner
    patient_ins: str
    authn_instant: datetime.datetime
    purpose_of_use: Code = field(default_factory=lambda: NORMAL_ACCESS)
    authn_context: str = AUTHN_TLS_CLIENT
    confidentiality: tuple[Code, ...] = field(default_factory=tuple)
    version: str = VIHF_VERSION


def saml(local: str) -> str:
    """Clark name in the SAML 2.0 assertion namespace."""
    return qname(SAML, local)


def instant(moment: datetime.datetime) -> str:
    """An xs:dateTime in UTC with a Z, as SAML and WS-Security want."""
    if moment.tzinfo is None:
        raise ValueError(f"{moment!r} has no time zone; pass an aware datetime")
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_assertion(description: VIHFDescription, credentials: DMPCredentials,
                    now: datetime.datetime, lifetime: datetime.timedelta) -> etree._Element:
    """The unsigned VIHF assertion, with a signature placeholder after its Issuer."""
    if not description.practitioner.roles:
        raise ValueError("the VIHF needs at least one subject:role (JDV_J65)")
    assertion = etree.Element(saml("Assertion"), nsmap={"saml2": SAML, "xs": XS, "xsi": XSI},
                              ID=f"_{uuid.uuid4().hex}", IssueInstant=instant(now), Version="2.0")
    issuer = etree.SubElement(assertion, saml("Issuer"), Format=X509_SUBJECT_NAME)
    issuer.text = credentials.subject_dn
    etree.SubElement(assertion, qname(DS, "Signature"), Id="placeholder", nsmap={"ds": DS})
    subject = etree.SubElement(assertion, saml("Subject"))
    name_id = etree.SubElement(subject, saml("NameID"), Format=UNSPECIFIED_NAME)
    name_id.text = description.practitioner.identifier
    etree.SubElement(subject, saml("SubjectConfirmation"), Method=SENDER_VOUCHES)
    etree.SubElement(assertion, saml("Conditions"), NotBefore=instant(now),
                     NotOnOrAfter=instant(now + lifetime))
    statement = etree.SubElement(assertion, saml("AuthnStatement"),
                                 AuthnInstant=instant(description.authn_instant))
    context = etree.SubElement(statement, saml("AuthnContext"))
    etree.SubElement(context, saml("AuthnContextClassRef")).text = description.authn_context
    assertion.append(_attributes(description, credentials))
    return assertion


def _attributes(description: VIHFDescription, credentials: DMPCredentials) -> etree._Element:
    statement = etree.Element(saml("AttributeStatement"))
    software = credentials.software
    sector = credentials.activity_sector
    texts = [
        ("VIHF_Version", description.version),
        ("Identifiant_Structure", credentials.structure_id),
        ("Secteur_Activite", f"{sector.code}^{sector.scheme}"),
        (ATTRIBUTE_SUBJECT_ID, description.practitioner.name),
        (ATTRIBUTE_RESOURCE_ID, description.patient_ins),
        ("Ressource_URN", RESOURCE_URN),
        ("Authentification_Mode", INDIRECT_AUTHENTICATION),
        ("LPS_Nom", software.name),
        ("LPS_Version", software.version),
        ("LPS_ID_HOMOLOGATION_DMP", software.homologation),
    ]
    for name, value in texts:
        if value:
            attribute = etree.SubElement(statement, saml("Attribute"), Name=name)
            value_element = etree.SubElement(attribute, saml("AttributeValue"))
            value_element.set(qname(XSI, "type"), "xs:string")
            value_element.text = value
    _coded(statement, ATTRIBUTE_ROLE, "Role", description.practitioner.roles)
    _coded(statement, ATTRIBUTE_PURPOSE_OF_USE, "PurposeOfUse", (description.purpose_of_use,))
    _coded(statement, ATTRIBUTE_CONFIDENTIALITY, "ConfidentialityCode",
           description.confidentiality)
    return statement


def _coded(statement: etree._Element, name: str, tag: str, codes: tuple[Code, ...]) -> None:
    """One Attribute per code, its value an HL7 v3 CE element (XSPA convention)."""
    for code in codes:
        attribute = etree.SubElement(statement, saml("Attribute"), Name=name)
        value = etree.SubElement(attribute, saml("AttributeValue"))
        element = etree.SubElement(value, qname(CDA, tag), nsmap={None: CDA}, code=code.code,
                                   codeSystem=code.scheme)
        if code.display:
            element.set("displayName", code.display)
        element.set(qname(XSI, "type"), "CE")


def sign_assertion(assertion: etree._Element, credentials: DMPCredentials) -> etree._Element:
    """Sign *assertion* in place (enveloped, at its placeholder) and return it.

    CPU-bound (RSA): call it off the reactor thread.
    """
    signer = XMLSigner(method=SignatureConstructionMethod.enveloped, **SIGNER_SETTINGS)
    return signer.sign(assertion, key=credentials.key, cert=list(credentials.certificates),
                       reference_uri=f"#{assertion.get('ID')}", id_attribute="ID")


def security_header(assertion: etree._Element, now: datetime.datetime,
                    lifetime: datetime.timedelta, must_understand: bool = True) -> etree._Element:
    """A ``wsse:Security`` header block: a ``wsu:Timestamp``, then the signed assertion."""
    security = etree.Element(qname(WSSE, "Security"), nsmap={"wsse": WSSE, "wsu": WSU})
    if must_understand:
        security.set(qname(SOAP12, "mustUnderstand"), "true")
    timestamp = etree.SubElement(security, qname(WSU, "Timestamp"))
    timestamp.set(qname(WSU, "Id"), f"TS-{uuid.uuid4().hex}")
    etree.SubElement(timestamp, qname(WSU, "Created")).text = instant(now)
    etree.SubElement(timestamp, qname(WSU, "Expires")).text = instant(now + lifetime)
    security.append(assertion)
    return security


def vihf_security_header(description: VIHFDescription, credentials: DMPCredentials,
                         now: datetime.datetime,
                         lifetime: datetime.timedelta = datetime.timedelta(minutes=5),
                         must_understand: bool = True) -> etree._Element:
    """Build, sign and wrap the VIHF: the ``wsse:Security`` block to put in the SOAP Header."""
    assertion = sign_assertion(build_assertion(description, credentials, now, lifetime),
                               credentials)
    return security_header(assertion, now, lifetime, must_understand)
