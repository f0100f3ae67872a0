"""
ORU^R01 → CDA R2 laboratory report (French CI-SIS CR-BIO / IHE XD-LAB shape), built-in.

Why: a laboratory system speaks HL7 v2, while the DMP and the MSSanté mailboxes take a CDA
document. This turns one parsed result message into one report: the header from
MSH/PID/OBR/ORC, one section per ORDER_OBSERVATION group (see :mod:`.oru_cda_body`).

The header follows NOTES.md §4: the patient's INS (PID-3 repetition of type ``INS``) is shared
only when PID-32 says the identity is qualified (``QUAL``), and then comes first; the local
identifiers with an assigning-authority OID follow. A PID-3 without any usable identifier
gives ``id nullFlavor="UNK"`` rather than an invalid document. The author is OBR-16 (ordering
provider, as the samples' laboratories send it), else ORC-12, else the sending facility (an
authoring organisation with no person). The legal authenticator (the DMP requires one) is the
biologist who validated the results: OBX-16 (responsible observer) of the first result that
names one; the service event's time (the DMP's serviceStartTime) is OBR-7, to OBR-8 when
given. Missing times give nullFlavor UNK.

The document id, when :class:`ReportOptions` gives none, is a ``2.25`` OID derived from the
sending application and MSH-10 (a name-based UUID), so that the same message always gives
the same document and a resend is recognised downstream. Everything here is pure: the
message and the code table in, the document's bytes out.

test-case-name: tests.mappings.test_oru_cda
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass

from lxml import etree

from mappings.groups import root
from mappings.message import HL7Message, Segment
from mappings.tables import CodeTable
from mappings.transforms.cdaparts import (
    LOINC, cx_id, el, has_person, organization, person_id, person_name, time_el)
from mappings.transforms.oru_cda_body import structured_body

__all__ = ["ReportOptions", "TransformError", "oru_to_cda"]

TEMPLATES = ("2.16.840.1.113883.2.8.2.1",   # HL7 France
             "1.2.250.1.213.1.1.1.1",        # CI-SIS
             "1.3.6.1.4.1.19376.1.3.3",      # IHE PALM XD-LAB
             "1.2.250.1.213.1.1.1.55")       # CI-SIS CR-BIO
INS_OIDS = {"1.2.250.1.213.1.4.8", "1.2.250.1.213.1.4.9", "1.2.250.1.213.1.4.10",
            "1.2.250.1.213.1.4.11"}
SEX = {"M": "M", "F": "F"}
CONFIDENTIALITY = "2.16.840.1.113883.5.25"
NAME_QUALIFIERS = {"L": "BR", "D": "CL"}     # XPN.7 birth (legal) name, used name


class TransformError(ValueError):
    """The message cannot become a report (not an ORU, no order); says what and where."""


@dataclass(frozen=True)
class ReportOptions:
    """What the message does not say: document id root, custodian, confidentiality."""

    document_root: str = ""
    custodian_name: str = ""
    custodian_oid: str = ""
    confidentiality: str = "N"
    title: str = "Compte rendu d'examens biologiques"


def oru_to_cda(message: HL7Message, loinc: CodeTable | None = None,
               options: ReportOptions = ReportOptions()) -> bytes:
    """The CDA R2 report of ``message`` (UTF-8 bytes with an XML declaration)."""
    kind = (message.msh.get(9, 1, 1), message.msh.get(9, 1, 2))
    if kind != ("ORU", "R01"):
        raise TransformError(f"MSH-9 is {'^'.join(kind)}, not ORU^R01: no laboratory report")
    orders = root(message).groups("ORDER_OBSERVATION")
    if not orders:
        raise TransformError("ORU^R01 has no ORDER_OBSERVATION (no OBR): nothing to report")
    document = _header(message, orders[0].segment("OBR"), orders[0].segment("ORC"), options)
    structured_body(document, orders, loinc)
    return etree.tostring(document, xml_declaration=True, encoding="UTF-8")


def _header(message: HL7Message, obr: Segment | None, orc: Segment | None,
            options: ReportOptions) -> etree._Element:
    msh, pid = message.msh, message.segment("PID")
    doc = el(None, "ClinicalDocument")
    el(doc, "realmCode", code="FR")
    el(doc, "typeId", root="2.16.840.1.113883.1.3", extension="POCD_HD000040")
    for template in TEMPLATES:
        el(doc, "templateId", root=template)
    document_root = options.document_root or _derived_root(msh)
    el(doc, "id", root=document_root, extension=msh.get(10) if options.document_root else "")
    el(doc, "code", code="11502-2", codeSystem=LOINC, codeSystemName="LOINC",
       displayName="CR d'examens biologiques")
    el(doc, "title", options.title)
    reported = (obr.get(22) if obr else "") or msh.get(7)
    time_el(doc, "effectiveTime", reported)
    el(doc, "confidentialityCode", code=options.confidentiality, codeSystem=CONFIDENTIALITY)
    el(doc, "languageCode", code="fr-FR")
    el(doc, "setId", root=document_root, extension=msh.get(10) if options.document_root else "")
    el(doc, "versionNumber", value="1")
    _record_target(doc, pid)
    _author(doc, msh, obr, orc, reported)
    custodian = el(el(el(doc, "custodian"), "assignedCustodian"),
                   "representedCustodianOrganization")
    organization(custodian, options.custodian_name or msh.get(4, 1, 1),
                 options.custodian_oid or msh.get(4, 1, 2))
    _legal_authenticator(doc, message, reported)
    if obr is not None:
        event = el(el(doc, "documentationOf"), "serviceEvent")
        period = el(event, "effectiveTime")
        time_el(period, "low", obr.get(7))
        if obr.get(8):
            time_el(period, "high", obr.get(8))
    return doc


def _legal_authenticator(doc: etree._Element, message: HL7Message, reported: str) -> None:
    """The first OBX-16 naming a person, as legalAuthenticator; nothing when none does."""
    observer = next((obx for obx in message.segments("OBX") if has_person(obx, 16)), None)
    if observer is None:
        return
    legal = el(doc, "legalAuthenticator")
    time_el(legal, "time", reported)
    el(legal, "signatureCode", code="S")
    assigned = el(legal, "assignedEntity")
    person_id(observer, 16, assigned)
    person_name(observer, 16, el(assigned, "assignedPerson"))


def _derived_root(msh: Segment) -> str:
    name = "|".join((msh.get(3), msh.get(4), msh.get(10)))
    return f"2.25.{uuid.uuid5(uuid.NAMESPACE_OID, name).int}"


def _record_target(doc: etree._Element, pid: Segment | None) -> None:
    role = el(el(doc, "recordTarget"), "patientRole")
    if pid is None or not _patient_ids(pid, role):
        el(role, "id", nullFlavor="UNK")
    if pid is None:
        return
    patient = el(role, "patient")
    for repetition in range(1, len(pid.repetitions(5)) + 1):
        person_name(pid, 5, patient, repetition, first=1,
                    qualifier=NAME_QUALIFIERS.get(pid.get(5, repetition, 7), ""))
    el(patient, "administrativeGenderCode", code=SEX.get(pid.get(8), "UN"),
       codeSystem="2.16.840.1.113883.5.1")
    time_el(patient, "birthTime", pid.get(7))


def _patient_ids(pid: Segment, role: etree._Element) -> bool:
    """The qualified INS first (only when PID-32 is QUAL), then the local ids; any written."""
    reps = range(1, len(pid.repetitions(3)) + 1)
    ins = [r for r in reps if pid.get(3, r, 5) == "INS" or pid.get(3, r, 4, 2) in INS_OIDS]
    written = False
    if pid.get(32) == "QUAL":
        written = any([cx_id(pid, 3, r, role) for r in ins])
    for repetition in reps:
        if repetition not in ins:
            written = cx_id(pid, 3, repetition, role) or written
    return written


def _author(doc: etree._Element, msh: Segment, obr: Segment | None, orc: Segment | None,
            reported: str) -> None:
    author = el(doc, "author")
    time_el(author, "time", reported)
    assigned = el(author, "assignedAuthor")
    source = ((obr, 16) if has_person(obr, 16) else (orc, 12) if has_person(orc, 12)
              else (None, 0))
    segment, field = source
    if segment is None:
        el(assigned, "id", nullFlavor="UNK")
        organization(el(assigned, "representedOrganization"), msh.get(4, 1, 1),
                     msh.get(4, 1, 2))
        return
    person_id(segment, field, assigned)
    person_name(segment, field, el(assigned, "assignedPerson"))

