"""
The structured body of the ORU^R01 → CDA laboratory report: one section per
ORDER_OBSERVATION, a narrative table of its results, and one coded observation per OBX.

Codes: the channel's LOINC table (local OBX-3.1 → LOINC) is tried first, then a LOINC code
the sender already put in the alternate triplet (OBX-3.4..6 with system ``LN``). The local
code is always kept, as the ``translation`` of the LOINC code or, when no LOINC is known, as
the code itself, so that nothing the laboratory said is lost.

Values by OBX-2: NM → PQ with the OBX-6 unit (ST when the text is not a number), ST/TX/FT →
ST, CE/CWE/CNE → CD, SN → PQ or IVL_PQ (comparator, range) else ST, DT/TS/DTM → TS; any
other type → ST holding the text as sent. OBX-7 becomes a reference range, OBX-8 the
interpretation (HL7 ObservationInterpretation), OBX-14 the time, OBX-11 the status.

test-case-name: tests.mappings.test_oru_cda
"""
from __future__ import annotations

import re

from lxml import etree

from mappings.groups import Group
from mappings.message import Segment
from mappings.tables import CodeTable
from mappings.transforms.cdaparts import LOINC, el, time_el, typed

SECTION_TEMPLATES = ("1.3.6.1.4.1.19376.1.3.3.2.1", "1.2.250.1.213.1.1.2.70")
ENTRY_TEMPLATES = ("1.3.6.1.4.1.19376.1.3.1", "1.2.250.1.213.1.1.3.21")
OBSERVATION_TEMPLATES = ("1.3.6.1.4.1.19376.1.3.1.6", "1.2.250.1.213.1.1.3.80")
COMMENT_TEMPLATE = "1.3.6.1.4.1.19376.1.5.3.1.4.2"
INTERPRETATION = "2.16.840.1.113883.5.83"
STATUS = {"F": "completed", "C": "completed", "U": "completed", "P": "active",
          "R": "active", "S": "active", "I": "active", "X": "aborted", "D": "nullified",
          "W": "nullified"}
COLUMNS = ("Analyse", "Résultat", "Unité", "Valeurs de référence", "Interprétation", "Date")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_RANGE = re.compile(r"^\s*([+-]?[\d.]+)\s*-\s*([+-]?[\d.]+)\s*$")
_BOUND = re.compile(r"^\s*(<=|>=|<|>)\s*([+-]?[\d.]+)\s*$")


def structured_body(document: etree._Element, orders: list[Group],
                    loinc: CodeTable | None) -> None:
    """Append the body: a section per order, numbered from 1."""
    body = el(el(document, "component"), "structuredBody")
    for number, order in enumerate(orders, 1):
        _section(el(body, "component"), number, order, loinc)


def _section(component: etree._Element, number: int, order: Group,
             loinc: CodeTable | None) -> None:
    obr = order.segment("OBR")
    section = el(component, "section")
    for template in SECTION_TEMPLATES:
        el(section, "templateId", root=template)
    _code(section, obr, 4, loinc)
    el(section, "title", (obr.get(4, 1, 2) or obr.get(4, 1, 1)) if obr else None)
    results = order.segments("OBX")
    notes = _notes_by_result(order)
    _narrative(el(section, "text"), number, results, order, notes)
    if not results:
        return
    entry = el(section, "entry", typeCode="DRIV")
    for template in ENTRY_TEMPLATES:
        el(entry, "templateId", root=template)
    act = el(entry, "act", classCode="ACT", moodCode="EVN")
    _code(act, obr, 4, loinc)
    el(act, "statusCode", code=STATUS.get(obr.get(25) if obr else "", "completed"))
    for index, obx in enumerate(results, 1):
        _observation(el(act, "entryRelationship", typeCode="COMP"),
                     f"r{number}-{index}", obx, obr, loinc, notes.get(id(obx), []))


def _code(parent: etree._Element, segment: Segment | None, field: int,
          loinc: CodeTable | None) -> None:
    """``code``: LOINC (table, then the sender's LN triplet) with the local code kept."""
    get = (lambda c: segment.get(field, 1, c)) if segment else (lambda c: "")
    local, display, system = get(1), get(2), get(3)
    found = loinc.translate(local) if (loinc and local) else None
    if found is not None:
        code, name = found.code, found.display
    elif get(6) in ("LN", "LOINC") and get(4):
        code, name = get(4), get(5)
    elif system in ("LN", "LOINC"):
        el(parent, "code", code=local, displayName=display, codeSystem=LOINC,
           codeSystemName="LOINC")
        return
    else:
        node = el(parent, "code", code=local, displayName=display, codeSystemName=system)
        if not local:
            node.set("nullFlavor", "UNK")
        return
    node = el(parent, "code", code=code, displayName=name, codeSystem=LOINC,
              codeSystemName="LOINC")
    if local:
        el(node, "translation", code=local, displayName=display, codeSystemName=system)


def _notes_by_result(order: Group) -> dict[int, list[str]]:
    """The NTE texts that follow each OBX (its OBSERVATION group), keyed by the OBX's id()."""
    found = {}
    for observation in order.groups("OBSERVATION"):
        obx = observation.segment("OBX")
        if obx is not None:
            found[id(obx)] = [note.get(3) for note in observation.segments("NTE")
                              if note.get(3)]
    return found


def _observation(relationship: etree._Element, ident: str, obx: Segment,
                 obr: Segment | None, loinc: CodeTable | None, notes: list[str]) -> None:
    observation = el(relationship, "observation", classCode="OBS", moodCode="EVN")
    for template in OBSERVATION_TEMPLATES:
        el(observation, "templateId", root=template)
    _code(observation, obx, 3, loinc)
    el(el(observation, "text"), "reference", value=f"#{ident}")
    el(observation, "statusCode", code=STATUS.get(obx.get(11), "completed"))
    time_el(observation, "effectiveTime", obx.get(14) or (obr.get(7) if obr else ""))
    _value(observation, obx)
    flag = obx.get(8)
    if flag:
        el(observation, "interpretationCode", code=flag, codeSystem=INTERPRETATION)
    for note in notes:
        _comment(observation, note)
    _reference_range(observation, obx.get(7), obx.get(6))


def _comment(observation: etree._Element, note: str) -> None:
    """A result's NTE as an IHE comment entry (LOINC 48767-8), inside the observation."""
    act = el(el(observation, "entryRelationship", typeCode="SUBJ", inversionInd="true"), "act",
             classCode="ACT", moodCode="EVN")
    el(act, "templateId", root=COMMENT_TEMPLATE)
    el(act, "code", code="48767-8", codeSystem=LOINC, displayName="Annotation comment")
    el(act, "text", note)
    el(act, "statusCode", code="completed")


def _value(observation: etree._Element, obx: Segment) -> None:
    kind, text, unit = obx.get(2), obx.get(5), obx.get(6)
    if kind in ("CE", "CWE", "CNE"):
        typed(observation, "value", "CD", code=obx.get(5, 1, 1), displayName=obx.get(5, 1, 2),
              codeSystemName=obx.get(5, 1, 3))
    elif kind == "NM" and _NUMBER.match(text.strip()):
        typed(observation, "value", "PQ", value=text.strip(), unit=unit or "1")
    elif kind == "SN":
        _structured_numeric(observation, obx, unit)
    elif kind in ("DT", "TS", "DTM") and text.isdigit():
        typed(observation, "value", "TS", value=text)
    elif text:
        typed(observation, "value", "ST").text = _as_text(obx)


def _structured_numeric(observation: etree._Element, obx: Segment, unit: str) -> None:
    """SN (comparator^num1^separator^num2) as PQ, IVL_PQ, or ST when it is a ratio."""
    comparator, low, separator, high = (obx.get(5, 1, c) for c in (1, 2, 3, 4))
    number = _NUMBER.match
    if not separator and number(low) and comparator in ("", "="):
        typed(observation, "value", "PQ", value=low, unit=unit or "1")
    elif not separator and number(low) and comparator in ("<", "<=", ">", ">="):
        _interval(observation, "value", comparator, low, unit)
    elif separator == "-" and number(low) and number(high):
        interval = typed(observation, "value", "IVL_PQ")
        el(interval, "low", value=low, unit=unit or "1")
        el(interval, "high", value=high, unit=unit or "1")
    else:
        typed(observation, "value", "ST").text = _as_text(obx)


def _interval(parent: etree._Element, name: str, comparator: str, number: str,
              unit: str) -> etree._Element:
    interval = typed(parent, name, "IVL_PQ")
    side = "high" if comparator.startswith("<") else "low"
    el(interval, side, value=number, unit=unit or "1",
       inclusive="true" if comparator.endswith("=") else "false")
    return interval


def _reference_range(observation: etree._Element, text: str, unit: str) -> None:
    """OBX-7 as an IVL_PQ range when it reads ``a-b``, ``<b`` or ``>a``; else as text."""
    if not text:
        return
    observed = el(el(observation, "referenceRange", typeCode="REFV"), "observationRange")
    between, bound = _RANGE.match(text), _BOUND.match(text)
    if between:
        interval = typed(observed, "value", "IVL_PQ")
        el(interval, "low", value=between.group(1), unit=unit or "1")
        el(interval, "high", value=between.group(2), unit=unit or "1")
    elif bound:
        _interval(observed, "value", bound.group(1), bound.group(2), unit)
    else:
        el(observed, "text", text)


def _as_text(obx: Segment) -> str:
    """OBX-5 as readable text: its repetitions on lines, components joined by spaces."""
    lines = []
    for repetition in range(1, len(obx.repetitions(5)) + 1):
        parts = [obx.get(5, repetition, c) for c in range(1, 10)]
        lines.append(" ".join(part for part in parts if part))
    return "\n".join(lines)


def _narrative(text: etree._Element, number: int, results: list[Segment],
               order: Group, notes: dict[int, list[str]]) -> None:
    """The human-readable table (an order with no result yet says so: a table needs a row)."""
    if not results:
        el(text, "paragraph", "Aucun résultat transmis.")
    else:
        _table(text, number, results)
    for index, obx in enumerate(results, 1):
        for note in notes.get(id(obx), []):
            el(text, "paragraph", f"{obx.get(3, 1, 2) or obx.get(3, 1, 1)} : {note}")
    for note in order.segments("NTE"):
        el(text, "paragraph", note.get(3))


def _table(text: etree._Element, number: int, results: list[Segment]) -> None:
    table = el(text, "table", border="1")
    row = el(el(table, "thead"), "tr")
    for column in COLUMNS:
        el(row, "th", column)
    body = el(table, "tbody")
    for index, obx in enumerate(results, 1):
        row = el(body, "tr", ID=f"r{number}-{index}")
        cells = (obx.get(3, 1, 2) or obx.get(3, 1, 1), _as_text(obx),
                 obx.get(6, 1, 2) or obx.get(6, 1, 1), obx.get(7), obx.get(8), obx.get(14))
        for cell in cells:
            el(row, "td", cell or None)
