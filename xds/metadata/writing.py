"""
Writing the model as ebRIM XML: a ``lcm:SubmitObjectsRequest`` whose
RegistryObjectList is valid against the OASIS ebRS 3.0 schemas, laid out as
ITI TF-3 §4.2 asks (full URNs for association types, the SubmissionSet and
Folder classifications beside their RegistryPackage as in IHE's examples).

Classification and ExternalIdentifier ids are new ``urn:uuid`` values from
*new_id* (uuid4 by default; tests pass a counter to get stable output).
Every element is made in place under its parent (``SubElement``): an element
made alone and appended later is moved from a document of its own, which
costs lxml a namespace reconciliation of its whole subtree.

test-case-name: tests.xds.test_metadata_xml
"""
from __future__ import annotations

import os
from typing import Callable

from lxml import etree

from xds.metadata import layout as layouts
from xds.metadata.layout import Layout
from xds.metadata.model import Association, Author, Code, DocumentEntry, RegistryEntry, Submission
from xds.metadata.vocabulary import (
    AUTHOR_SLOTS, CODING_SCHEME_SLOT, FOLDER_NODE, OBJECT_TYPE_CLASSIFICATION,
    OBJECT_TYPE_EXTERNAL_IDENTIFIER, SUBMISSION_SET_NODE,
)
from xds.namespaces import LCM, RIM, qname, rim

IdFactory = Callable[[], str]

_REGISTRY_OBJECT_LIST, _EXTRINSIC_OBJECT, _REGISTRY_PACKAGE, _OBJECT_REF = (
    rim("RegistryObjectList"), rim("ExtrinsicObject"), rim("RegistryPackage"), rim("ObjectRef"))
_CLASSIFICATION, _EXTERNAL_IDENTIFIER, _ASSOCIATION = (
    rim("Classification"), rim("ExternalIdentifier"), rim("Association"))
_SLOT, _VALUE_LIST, _VALUE = rim("Slot"), rim("ValueList"), rim("Value")
_NAME, _DESCRIPTION, _LOCALIZED_STRING = rim("Name"), rim("Description"), rim("LocalizedString")


#: RFC 4122 version 4: the version nibble 4 and the variant bits 10 set in a random value.
_VERSION_4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_VERSION_4_SET = (0x4000 << 64) | (0x8000 << 48)


def new_uuid() -> str:
    """A fresh random (version 4) ``urn:uuid:`` id, as ``uuid.uuid4().urn`` gives, without
    building a UUID object: every registered object and classification takes one."""
    digits = f"{int.from_bytes(os.urandom(16), 'big') & _VERSION_4_CLEAR | _VERSION_4_SET:032x}"
    return (f"urn:uuid:{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}"
            f"-{digits[20:]}")


def submit_objects_request(submission: Submission, new_id: IdFactory = new_uuid) -> etree._Element:
    """The ``lcm:SubmitObjectsRequest`` carrying *submission* (ITI-42, XDM METADATA.XML)."""
    request = etree.Element(qname(LCM, "SubmitObjectsRequest"), nsmap={"lcm": LCM, "rim": RIM})
    request.append(registry_object_list(submission, new_id))
    return request


def registry_object_list(submission: Submission, new_id: IdFactory = new_uuid) -> etree._Element:
    """The ``rim:RegistryObjectList`` of *submission*, objects in a stable order."""
    objects = etree.Element(_REGISTRY_OBJECT_LIST, nsmap={"rim": RIM})
    for document in submission.documents:
        _entry(objects, document, _EXTRINSIC_OBJECT, layouts.DOCUMENT_ENTRY, new_id)
    for packages, node, layout in ((submission.submission_sets, SUBMISSION_SET_NODE,
                                    layouts.SUBMISSION_SET),
                                   (submission.folders, FOLDER_NODE, layouts.FOLDER)):
        for package in packages:
            _entry(objects, package, _REGISTRY_PACKAGE, layout, new_id)
            _classification(objects, package.entry_uuid, new_id, classificationNode=node)
    for association in submission.associations:
        _association(objects, association)
    for reference in submission.object_refs:
        etree.SubElement(objects, _OBJECT_REF, id=reference)
    return objects


def _entry(parent: etree._Element, entry: RegistryEntry, tag: str, layout: Layout,
           new_id: IdFactory) -> None:
    element = etree.SubElement(parent, tag, id=entry.entry_uuid)
    if isinstance(entry, DocumentEntry):
        _set(element, "objectType", entry.object_type)
    _set(element, "home", entry.home_community_id)
    _set(element, "status", entry.availability_status)
    if isinstance(entry, DocumentEntry):
        _set(element, "mimeType", entry.mime_type)
    _append_slots(element, _entry_slots(entry, layout))
    _append_localized(element, _NAME, entry.title)
    _append_localized(element, _DESCRIPTION, entry.comments)
    for author in getattr(entry, "authors", []):
        _author(element, author, layout.author_scheme, entry.entry_uuid, new_id)
    for name, scheme in layout.codes.items():
        for code in _codes(entry, layout.code_fields[name]):
            _code(element, code, scheme, entry.entry_uuid, new_id)
    for name, (scheme, label) in layout.identifiers.items():
        value = getattr(entry, layouts.IDENTIFIER_FIELDS[name])
        if value:
            _identifier(element, value, scheme, label, entry.entry_uuid, new_id)


def _entry_slots(entry: RegistryEntry, layout: Layout) -> dict[str, list[str]]:
    slots = {}
    for name, attribute in layout.single_slots.items():
        if getattr(entry, attribute):
            slots[name] = [getattr(entry, attribute)]
    for name, attribute in layout.multi_slots.items():
        if getattr(entry, attribute):
            slots[name] = list(getattr(entry, attribute))
    slots.update(entry.extra_slots)
    return slots


def _codes(entry: RegistryEntry, field: tuple[str, bool]) -> list[Code]:
    attribute, repeats = field
    value = getattr(entry, attribute)
    if repeats:
        return list(value)
    return [value] if value is not None else []


def _code(parent: etree._Element, code: Code, scheme: str, owner: str,
          new_id: IdFactory) -> None:
    element = _classification(parent, owner, new_id, classificationScheme=scheme,
                              nodeRepresentation=code.code)
    _append_slots(element, {CODING_SCHEME_SLOT: [code.scheme]})
    _append_localized(element, _NAME, code.display)


def _author(parent: etree._Element, author: Author, scheme: str, owner: str,
            new_id: IdFactory) -> None:
    element = _classification(parent, owner, new_id, classificationScheme=scheme,
                              nodeRepresentation="")
    values = [[author.person] if author.person else [], author.institutions, author.roles,
              author.specialties, author.telecommunications]
    _append_slots(element, {name: list(v) for name, v in zip(AUTHOR_SLOTS, values) if v})


def _classification(parent: etree._Element, owner: str, new_id: IdFactory,
                    **attributes: str) -> etree._Element:
    element = etree.SubElement(parent, _CLASSIFICATION, id=new_id(),
                               objectType=OBJECT_TYPE_CLASSIFICATION)
    for name, value in attributes.items():
        element.set(name, value)
    element.set("classifiedObject", owner)
    return element


def _identifier(parent: etree._Element, value: str, scheme: str, label: str, owner: str,
                new_id: IdFactory) -> None:
    element = etree.SubElement(parent, _EXTERNAL_IDENTIFIER, id=new_id(),
                               objectType=OBJECT_TYPE_EXTERNAL_IDENTIFIER,
                               registryObject=owner, identificationScheme=scheme, value=value)
    _append_localized(element, _NAME, label)


def _association(parent: etree._Element, association: Association) -> None:
    element = etree.SubElement(parent, _ASSOCIATION, id=association.entry_uuid,
                               associationType=association.association_type,
                               sourceObject=association.source,
                               targetObject=association.target)
    _append_slots(element, association.extra_slots)


def _append_slots(element: etree._Element, slots: dict[str, list[str]]) -> None:
    for name, values in slots.items():
        value_list = etree.SubElement(etree.SubElement(element, _SLOT, name=name), _VALUE_LIST)
        for value in values:
            etree.SubElement(value_list, _VALUE).text = value


def _append_localized(element: etree._Element, tag: str, value: str) -> None:
    if value:
        etree.SubElement(etree.SubElement(element, tag), _LOCALIZED_STRING, value=value)


def _set(element: etree._Element, name: str, value: str) -> None:
    if value:
        element.set(name, value)
