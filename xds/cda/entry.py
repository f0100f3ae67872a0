"""
Deriving a DocumentEntry from a CDA R2 header, following the ANS mapping
summarised in shared/standards/NOTES.md §5.2 (uniqueId from ClinicalDocument/id,
typeCode from code, creationTime from effectiveTime in UTC, authors as
XCN/XON, practice setting and facility type from the service event and the
encounter, patient identifiers as CX with the INS preferred).

What a CDA header does not say is passed in: the entryUUID, the classCode
(derived from typeCode through a code table that mappings/ owns), and
optionally the patientId chosen by identity reconciliation. The formatCode
is derived for the CI-SIS and IHE templates Aiguillage knows, else passed in.

test-case-name: tests.xds.test_cda
"""
from __future__ import annotations

from datetime import datetime, timedelta

from xds.cda.header import CD, CDAHeader, II, Organization, Person
from xds.metadata.model import Author, Code, DocumentEntry

INS_OIDS = ("1.2.250.1.213.1.4.8", "1.2.250.1.213.1.4.9", "1.2.250.1.213.1.4.10",
            "1.2.250.1.213.1.4.11")
PROFESSIONAL_ID_OID = "1.2.250.1.71.4.2.1"      # idNat_PS
STRUCTURE_ID_OID = "1.2.250.1.71.4.2.2"         # idNat_Struct
CI_SIS_FORMAT_SYSTEM = "1.2.250.1.213.1.1.4.2.282"
IHE_FORMAT_SYSTEM = "1.3.6.1.4.1.19376.1.2.3"
#: templateId -> formatCode of the document types in NOTES.md §5.4.
FORMAT_BY_TEMPLATE = {
    "1.2.250.1.213.1.1.1.13": Code("urn:asip:ci-sis:vsm:2012", CI_SIS_FORMAT_SYSTEM),
    "1.2.250.1.213.1.1.1.29": Code("urn:asip:ci-sis:ldl-ses:2017", CI_SIS_FORMAT_SYSTEM),
    "1.2.250.1.213.1.1.1.21": Code("urn:asip:ci-sis:ldl-ees:2017", CI_SIS_FORMAT_SYSTEM),
    "1.2.250.1.213.1.1.1.46": Code("urn:asip:ci-sis:vac-note:2021", CI_SIS_FORMAT_SYSTEM),
    "1.3.6.1.4.1.19376.1.3.3": Code("urn:ihe:lab:xd-lab:2008", IHE_FORMAT_SYSTEM),
}
#: nonXMLBody media type -> XDS-SD formatCode.
FORMAT_BY_MEDIA_TYPE = {
    "application/pdf": Code("urn:ihe:iti:xds-sd:pdf:2008", IHE_FORMAT_SYSTEM),
    "text/plain": Code("urn:ihe:iti:xds-sd:text:2008", IHE_FORMAT_SYSTEM),
}


def document_entry_from_cda(header: CDAHeader, *, entry_uuid: str,
                            class_code: Code | None = None, patient_id: str = "",
                            format_code: Code | None = None) -> DocumentEntry:
    """The DocumentEntry metadata that *header* determines."""
    event = header.service_event_code
    return DocumentEntry(
        entry_uuid=entry_uuid,
        unique_id=_unique_id(header.id),
        title=header.title,
        mime_type="text/xml",
        type_code=_code(header.code),
        class_code=class_code,
        format_code=format_code or derive_format_code(header),
        confidentiality_codes=[_code(header.confidentiality)] if header.confidentiality else [],
        event_codes=[_code(event)] if event else [],
        creation_time=hl7_utc(header.effective_time),
        service_start_time=hl7_utc(header.service_start),
        service_stop_time=hl7_utc(header.service_stop),
        language_code=header.language,
        patient_id=patient_id or _patient_cx(header, prefer_ins=True),
        source_patient_id=_patient_cx(header, prefer_ins=False),
        source_patient_info=_source_patient_info(header),
        authors=[_author(person) for person in header.authors],
        legal_authenticator=xcn(header.legal_authenticator) if header.legal_authenticator else "",
        healthcare_facility_type_code=_code(header.facility_type),
        practice_setting_code=_practice_setting(header),
    )


def derive_format_code(header: CDAHeader) -> Code | None:
    """The formatCode for an XDS-SD (nonXMLBody) or a known CI-SIS/IHE template."""
    if header.non_xml_body_media_type:
        return FORMAT_BY_MEDIA_TYPE.get(header.non_xml_body_media_type)
    for template in reversed(header.template_ids):
        if template in FORMAT_BY_TEMPLATE:
            return FORMAT_BY_TEMPLATE[template]
    return None


def hl7_utc(value: str) -> str:
    """An HL7 v3 TS (``YYYYMMDDhhmmss[.fff][+zzzz]``) as an XDS UTC DTM.

    With a zone, the time is moved to UTC keeping its precision; without one
    it is kept as written (the document did not say). Fractions are dropped.
    """
    digits, sign, zone = _split_zone(value)
    digits = digits.split(".")[0]
    if not sign or len(digits) < 10 or len(zone) != 4 or not zone.isdigit():
        return digits
    moment = datetime.strptime(digits.ljust(14, "0"), "%Y%m%d%H%M%S")
    offset = timedelta(hours=int(zone[:2]), minutes=int(zone[2:]))
    moment = moment - offset if sign == "+" else moment + offset
    return moment.strftime("%Y%m%d%H%M%S")[:len(digits)]


def _split_zone(value: str) -> tuple[str, str, str]:
    for sign in "+-":
        head, found, zone = value.partition(sign)
        if found:
            return head, sign, zone
    return value, "", ""


def escape(text: str) -> str:
    """HL7 v2 escaping of a value put inside a component (``&`` in a name, …)."""
    for raw, escaped in (("\\", "\\E\\"), ("|", "\\F\\"), ("^", "\\S\\"), ("&", "\\T\\"),
                         ("~", "\\R\\")):
        text = text.replace(raw, escaped)
    return text


def _unique_id(document_id: II) -> str:
    return f"{document_id.root}^{document_id.extension}" if document_id.extension \
        else document_id.root


def _code(value: CD | None) -> Code | None:
    return Code(value.code, value.system, value.display) if value else None


def cx(identifier: II, type_code: str = "") -> str:
    """An II as an HL7 v2 CX ``extension^^^&root&ISO[^type]``."""
    value = f"{identifier.extension}^^^&{identifier.root}&ISO"
    return f"{value}^{type_code}" if type_code else value


def _patient_cx(header: CDAHeader, prefer_ins: bool) -> str:
    """The INS as CX with type NH when *prefer_ins*, else the local identifier (or the INS)."""
    ids = [ii for ii in header.patient.ids if ii.extension]
    ins = [ii for ii in ids if ii.root in INS_OIDS]
    local = [ii for ii in ids if ii.root not in INS_OIDS]
    if prefer_ins and ins:
        return cx(ins[0], "NH")
    chosen = (local or ins) if not prefer_ins else (ins or local)
    return cx(chosen[0]) if chosen else ""


def _source_patient_info(header: CDAHeader) -> list[str]:
    patient = header.patient
    lines = [f"PID-3|{cx(ii)}" for ii in patient.ids if ii.extension]
    if patient.name.family:
        given = patient.name.given[0] if patient.name.given else ""
        lines.append(f"PID-5|{escape(patient.name.family)}^{escape(given)}^^^^^L")
    if patient.birth_time:
        lines.append(f"PID-7|{patient.birth_time[:8]}")
    if patient.gender:
        lines.append(f"PID-8|{patient.gender.code}")
    return lines


def xcn(person: Person) -> str:
    """A professional or device as XCN (ANS rules, NOTES.md §5.2).

    XCN.1 the identifier (or the root of an id without extension), XCN.2/3
    family and first given name (a device's software name as XCN.2), XCN.9
    the assigning authority, XCN.10 ``D`` for a person or ``U`` for a device,
    XCN.13 ``IDNPS`` for a French national professional identifier.
    """
    identifier = person.ids[0] if person.ids else II("")
    number = identifier.extension or identifier.root
    authority = f"&{identifier.root}&ISO" if identifier.extension else ""
    family = person.name.family or person.device
    given = person.name.given[0] if person.name.given else ""
    kind = "U" if person.device and not person.name.family else ("D" if authority else "")
    components = [escape(number), escape(family), escape(given), "", "", "", "", "", authority,
                  kind, "", "", "IDNPS" if identifier.root == PROFESSIONAL_ID_OID else ""]
    return "^".join(components).rstrip("^")


def xon(organization: Organization) -> str:
    """An organisation as XON: name, assigning authority (XON.6), IDNST, identifier (XON.10)."""
    identifier, name = organization.id, escape(organization.name)
    if identifier is None:
        return name
    if not identifier.extension:
        return f"{name}^^^^^^^^^{identifier.root}"
    kind = "IDNST" if identifier.root == STRUCTURE_ID_OID else ""
    return f"{name}^^^^^&{identifier.root}&ISO^{kind}^^^{escape(identifier.extension)}"


def _cwe(value: CD | None) -> list[str]:
    return [f"{escape(value.code)}^{escape(value.display)}^{value.system}"] if value else []


def _author(person: Person) -> Author:
    organization = person.organization
    return Author(
        person=xcn(person) if person.ids or person.name.family or person.device else "",
        institutions=[xon(organization)] if organization and organization.name else [],
        roles=_cwe(person.function),
        specialties=_cwe(person.code),
    )


def _practice_setting(header: CDAHeader) -> Code | None:
    """From the service event's performer, else from an author's or the legal authenticator's."""
    people = [*header.performers, *header.authors]
    if header.legal_authenticator:
        people.append(header.legal_authenticator)
    for person in people:
        if person.organization and person.organization.industry_code:
            return _code(person.organization.industry_code)
    return None
