"""
Reading the header of a CDA R2 document (``ClinicalDocument`` up to its
first ``component``): what XDS metadata, routing and identity need.

The header is read from an element that :func:`xds.safexml.parse_xml`
produced; :func:`read_cda_header` also accepts bytes and parses them safely.
Values are kept as the document gives them (HL7 v3 TS with its time zone,
II root and extension); :mod:`xds.cda.entry` turns them into XDS formats.

test-case-name: tests.xds.test_cda
"""
from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

from xds.namespaces import CDA
from xds.safexml import DEFAULT_MAX_BYTES, parse_xml


class CDAError(ValueError):
    """The document is not a CDA R2 ClinicalDocument, or lacks what is asked of it."""


@dataclass(frozen=True)
class II:
    """An HL7 v3 instance identifier: an OID root and an optional extension."""

    root: str
    extension: str = ""


@dataclass(frozen=True)
class CD:
    """An HL7 v3 coded value."""

    code: str
    system: str = ""
    display: str = ""


@dataclass
class PersonName:
    """Family and given names; for a patient, the birth (BR) names when tagged."""

    family: str = ""
    given: list[str] = field(default_factory=list)


@dataclass
class Organization:
    """An organisation's first identifier, name and practice setting code."""

    id: II | None = None
    name: str = ""
    industry_code: CD | None = None


@dataclass
class Person:
    """A healthcare professional (author, legal authenticator, performer)."""

    ids: list[II] = field(default_factory=list)
    name: PersonName = field(default_factory=PersonName)
    code: CD | None = None           # specialty (assignedAuthor/code)
    function: CD | None = None       # author/functionCode
    time: str = ""
    organization: Organization | None = None
    device: str = ""                 # assignedAuthoringDevice/softwareName


@dataclass
class Patient:
    """recordTarget/patientRole: identifiers and demographics."""

    ids: list[II] = field(default_factory=list)
    name: PersonName = field(default_factory=PersonName)
    gender: CD | None = None
    birth_time: str = ""


@dataclass
class CDAHeader:
    """The header fields of one ClinicalDocument."""

    id: II
    code: CD | None
    title: str
    effective_time: str
    confidentiality: CD | None
    language: str
    set_id: II | None
    version: str
    template_ids: list[str]
    patient: Patient
    authors: list[Person]
    custodian: Organization | None
    legal_authenticator: Person | None
    service_event_code: CD | None
    service_start: str
    service_stop: str
    performers: list[Person]
    facility_type: CD | None
    non_xml_body_media_type: str      # "" for a structured body


def _c(path: str) -> str:
    """A path in the CDA namespace: 'a/b' -> '{urn:hl7-org:v3}a/{urn:hl7-org:v3}b'."""
    return "/".join(f"{{{CDA}}}{step}" for step in path.split("/"))


def read_cda_header(document: bytes | etree._Element, *,
                    max_bytes: int = DEFAULT_MAX_BYTES) -> CDAHeader:
    """The header of *document* (bytes are parsed safely), or raise :class:`CDAError`."""
    root = document if isinstance(document, etree._Element) else \
        parse_xml(document, max_bytes=max_bytes, what="CDA document")
    if root.tag != _c("ClinicalDocument"):
        raise CDAError(f"root element is {root.tag}, not {{{CDA}}}ClinicalDocument")
    document_id = _ii(root.find(_c("id")))
    if document_id is None or not document_id.root:
        raise CDAError("ClinicalDocument/id has no root: the document has no identifier")
    event = root.find(_c("documentationOf/serviceEvent"))
    return CDAHeader(
        id=document_id, code=_cd(root.find(_c("code"))), title=_text(root.find(_c("title"))),
        effective_time=_value(root.find(_c("effectiveTime"))),
        confidentiality=_cd(root.find(_c("confidentialityCode"))),
        language=_attribute(root.find(_c("languageCode")), "code"),
        set_id=_ii(root.find(_c("setId"))),
        version=_value(root.find(_c("versionNumber"))),
        template_ids=[t.get("root", "") for t in root.findall(_c("templateId"))],
        patient=_patient(root.find(_c("recordTarget/patientRole"))),
        authors=[_author(author) for author in root.findall(_c("author"))],
        custodian=_organization(root.find(
            _c("custodian/assignedCustodian/representedCustodianOrganization"))),
        legal_authenticator=_legal_authenticator(root.find(_c("legalAuthenticator"))),
        service_event_code=_cd(event.find(_c("code"))) if event is not None else None,
        service_start=_value(root.find(_c("documentationOf/serviceEvent/effectiveTime/low"))),
        service_stop=_value(root.find(_c("documentationOf/serviceEvent/effectiveTime/high"))),
        performers=[_assigned(p) for p in root.iterfind(
            _c("documentationOf/serviceEvent/performer/assignedEntity"))],
        facility_type=_cd(root.find(
            _c("componentOf/encompassingEncounter/location/healthCareFacility/code"))),
        non_xml_body_media_type=_media_type(root),
    )


def _media_type(root: etree._Element) -> str:
    text = root.find(_c("component/nonXMLBody/text"))
    if text is None:
        return ""
    return text.get("mediaType", "text/plain")


def _patient(role: etree._Element | None) -> Patient:
    if role is None:
        raise CDAError("ClinicalDocument has no recordTarget/patientRole")
    patient = role.find(_c("patient"))
    return Patient(
        ids=[ii for ii in (_ii(e) for e in role.findall(_c("id"))) if ii is not None],
        name=_name(patient.find(_c("name")) if patient is not None else None, birth=True),
        gender=_cd(patient.find(_c("administrativeGenderCode"))) if patient is not None else None,
        birth_time=_value(patient.find(_c("birthTime"))) if patient is not None else "",
    )


def _author(author: etree._Element) -> Person:
    assigned = author.find(_c("assignedAuthor"))
    person = _assigned(assigned) if assigned is not None else Person()
    person.time = _value(author.find(_c("time")))
    person.function = _cd(author.find(_c("functionCode")))
    if assigned is not None:
        person.device = _text(assigned.find(_c("assignedAuthoringDevice/softwareName")))
    return person


def _legal_authenticator(element: etree._Element | None) -> Person | None:
    if element is None or element.find(_c("assignedEntity")) is None:
        return None
    person = _assigned(element.find(_c("assignedEntity")))
    person.time = _value(element.find(_c("time")))
    return person


def _assigned(element: etree._Element) -> Person:
    """An assignedAuthor or assignedEntity: ids, person name, code, organisation."""
    return Person(
        ids=[ii for ii in (_ii(e) for e in element.findall(_c("id"))) if ii is not None],
        name=_name(element.find(_c("assignedPerson/name"))),
        code=_cd(element.find(_c("code"))),
        organization=_organization(element.find(_c("representedOrganization"))),
    )


def _organization(element: etree._Element | None) -> Organization | None:
    if element is None:
        return None
    return Organization(_ii(element.find(_c("id"))), _text(element.find(_c("name"))),
                        _cd(element.find(_c("standardIndustryClassCode"))))


def _name(element: etree._Element | None, birth: bool = False) -> PersonName:
    """Family and given names; with *birth*, the BR-qualified family name is preferred."""
    if element is None:
        return PersonName()
    families = element.findall(_c("family"))
    chosen = [f for f in families if "BR" in f.get("qualifier", "").split()] if birth else []
    family = (chosen or families or [None])[0]
    givens = [g for g in element.findall(_c("given"))
              if not g.get("qualifier") or "BR" in g.get("qualifier", "").split()]
    given_names = [_text(g) for g in givens if not g.get("qualifier")] or \
        [_text(g) for g in givens]
    return PersonName(_text(family), [g for g in given_names if g])


def _ii(element: etree._Element | None) -> II | None:
    if element is None or element.get("nullFlavor") or not element.get("root"):
        return None
    return II(element.get("root", "").strip(), element.get("extension", "").strip())


def _cd(element: etree._Element | None) -> CD | None:
    if element is None or not element.get("code"):
        return None
    return CD(element.get("code", ""), element.get("codeSystem", ""),
              element.get("displayName", ""))


def _value(element: etree._Element | None) -> str:
    return _attribute(element, "value")


def _attribute(element: etree._Element | None, name: str) -> str:
    return (element.get(name) or "").strip() if element is not None else ""


def _text(element: etree._Element | None) -> str:
    return " ".join("".join(element.itertext()).split()) if element is not None else ""
