"""
Small CDA R2 building blocks read from HL7 v2 data types (CX, XCN, XPN, HD, TS), shared by
the ORU^R01 → CDA transform's header and body.

Why apart: the header and the body both turn v2 identifiers, people and times into CDA
elements, and each half stays short when these conversions live here.

test-case-name: tests.mappings.test_oru_cda
"""
from __future__ import annotations

import re

from lxml import etree

from mappings.message import Segment

V3 = "urn:hl7-org:v3"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
NSMAP = {None: V3, "xsi": XSI}
LOINC = "2.16.840.1.113883.6.1"
_OID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")
_TS = re.compile(r"^\d{4}(\d{2}(\d{2}(\d{2}(\d{2}(\d{2}(\.\d+)?)?)?)?)?)?([+-]\d{4})?$")


def el(parent: etree._Element | None, name: str, text: str | None = None,
       **attributes: str) -> etree._Element:
    """A child ``name`` (CDA namespace) of ``parent``, empty attributes left out."""
    tag = f"{{{V3}}}{name}"
    kept = {key.rstrip("_"): value for key, value in attributes.items() if value}
    node = (etree.Element(tag, kept, nsmap=NSMAP) if parent is None
            else etree.SubElement(parent, tag, kept))
    if text:
        node.text = text
    return node


def typed(parent: etree._Element, name: str, kind: str, **attributes: str) -> etree._Element:
    """A child carrying ``xsi:type`` (an observation's ``value``)."""
    node = el(parent, name, **attributes)
    node.set(f"{{{XSI}}}type", kind)
    return node


def is_oid(text: str) -> bool:
    return bool(_OID.match(text))


def timestamp(value: str) -> str:
    """An HL7 DTM as a CDA TS, or ``""`` when it is not one (then the caller omits it)."""
    return value if _TS.match(value) else ""


def time_el(parent: etree._Element, name: str, value: str) -> etree._Element:
    """A TS element: the time, or nullFlavor UNK when the message has none."""
    value = timestamp(value)
    return el(parent, name, value=value) if value else el(parent, name, nullFlavor="UNK")


def cx_id(segment: Segment, field: int, repetition: int, parent: etree._Element) -> bool:
    """An ``id`` from one CX repetition (ID^^^name&OID&ISO); False when it has no OID."""
    value, oid = (segment.get(field, repetition, 1), segment.get(field, repetition, 4, 2))
    if not value or not is_oid(oid):
        return False
    el(parent, "id", root=oid, extension=value,
       assigningAuthorityName=segment.get(field, repetition, 4, 1))
    return True


def person_id(segment: Segment, field: int, parent: etree._Element) -> None:
    """The ``id`` of an XCN (ID^FAMILY^GIVEN^…^name&OID&ISO at XCN.9), nullFlavor when none."""
    value, oid = segment.get(field, 1, 1), segment.get(field, 1, 9, 2)
    if value and is_oid(oid):
        el(parent, "id", root=oid, extension=value)
    else:
        el(parent, "id", nullFlavor="UNK")


def person_name(segment: Segment, field: int, parent: etree._Element, repetition: int = 1,
                first: int = 2, qualifier: str = "") -> None:
    """A ``name`` from an XPN (family at ``first``) or XCN (family at 2) repetition;
    ``qualifier`` marks the family name (``BR`` birth name, ``CL`` used name: NOTES.md §4)."""
    family = segment.get(field, repetition, first)
    given = segment.get(field, repetition, first + 1)
    prefix = segment.get(field, repetition, first + 4)
    name = el(parent, "name")
    if prefix:
        el(name, "prefix", prefix)
    if given:
        el(name, "given", given)
    el(name, "family", family or None, qualifier=qualifier)


def has_person(segment: Segment | None, field: int) -> bool:
    return segment is not None and bool(segment.get(field, 1, 1) or segment.get(field, 1, 2))


def organization(parent: etree._Element, name: str, oid: str, extension: str = "") -> None:
    """An organization's ``id`` (nullFlavor UNK without an OID) and ``name``."""
    if is_oid(oid):
        el(parent, "id", root=oid, extension=extension)
    else:
        el(parent, "id", nullFlavor="UNK")
    if name:
        el(parent, "name", name)
