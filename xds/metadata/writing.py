"""
Writing the model as ebRIM XML: a ``lcm:SubmitObjectsRequest`` whose
RegistryObjectList is valid against the OASIS ebRS 3.0 schemas, laid out as
ITI TF-3 §4.2 asks (full URNs for association types, the SubmissionSet and
Folder classifications beside their RegistryPackage as in IHE's examples).

Classification and ExternalIdentifier ids are new ``urn:uuid`` values from
*new_id* (uuid4 by default; tests pass a counter to get stable output).
The layout is written once, into a target (:mod:`xds.metadata.xmltext`): an
lxml tree for the requests a client sends, each element made in place under
its parent (an element made alone and appended later is moved from a document
of its own, which costs lxml a namespace reconciliation of its whole
subtree); or the same bytes as text, for the objects the registry keeps, which
need no element at all.

test-case-name: tests.xds.test_metadata_xml
"""
from __future__ import annotations

import os
from typing import Callable, Union

from lxml import etree

from xds.metadata import layout as layouts
from xds.metadata.layout import Layout
from xds.metadata.model import Association, Author, Code, DocumentEntry, RegistryEntry, Submission
from xds.metadata.vocabulary import (
    AUTHOR_SLOTS, CODING_SCHEME_SLOT, FOLDER_NODE, OBJECT_TYPE_CLASSIFICATION,
    OBJECT_TYPE_EXTERNAL_IDENTIFIER, SUBMISSION_SET_NODE,
)
from xds.metadata.xmltext import TextTarget, TreeTarget
from xds.namespaces import LCM, RIM, qname, rim

IdFactory = Callable[[], str]

_REGISTRY_OBJECT_LIST = rim("RegistryObjectList")
#: What a target is: where the writer puts each element (xds.metadata.xmltext).
Target = Union[TreeTarget, TextTarget]


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


def submit_objects_request_bytes(submission: Submission, new_id: IdFactory = new_uuid) -> bytes:
    """What ``etree.tostring(submit_objects_request(...), encoding="UTF-8")`` gives, written
    as text (the request a client sends; no element made)."""
    target = TextTarget("RegistryObjectList", declare=False)
    write_objects(target, submission, new_id)
    return (_SUBMIT_OBJECTS_OPEN + target.finish() + b"</lcm:SubmitObjectsRequest>")


_SUBMIT_OBJECTS_OPEN = f'<lcm:SubmitObjectsRequest xmlns:lcm="{LCM}" xmlns:rim="{RIM}">'.encode()


def registry_object_list(submission: Submission, new_id: IdFactory = new_uuid) -> etree._Element:
    """The ``rim:RegistryObjectList`` of *submission*, objects in a stable order."""
    objects = etree.Element(_REGISTRY_OBJECT_LIST, nsmap={"rim": RIM})
    write_objects(TreeTarget(objects), submission, new_id)
    return objects


def registry_object_list_bytes(submission: Submission, new_id: IdFactory = new_uuid) -> bytes:
    """What ``etree.tostring(registry_object_list(...), encoding="UTF-8")`` gives, written
    as text without making the elements (the registry keeps each object so)."""
    target = TextTarget("RegistryObjectList")
    write_objects(target, submission, new_id)
    return target.finish()


def write_objects(target: Target, submission: Submission, new_id: IdFactory = new_uuid) -> None:
    """Every object of *submission* into *target*, in a stable order."""
    for document in submission.documents:
        _entry(target, document, "ExtrinsicObject", layouts.DOCUMENT_ENTRY, new_id)
    for packages, node, layout in ((submission.submission_sets, SUBMISSION_SET_NODE,
                                    layouts.SUBMISSION_SET),
                                   (submission.folders, FOLDER_NODE, layouts.FOLDER)):
        for package in packages:
            _entry(target, package, "RegistryPackage", layout, new_id)
            _classification(target, package.entry_uuid, new_id, {"classificationNode": node})
            target.close()
    for association in submission.associations:
        _association(target, association)
    for reference in submission.object_refs:
        target.leaf("ObjectRef", {"id": reference})


def _entry(target: Target, entry: RegistryEntry, tag: str, layout: Layout,
           new_id: IdFactory) -> None:
    attributes = {"id": entry.entry_uuid}
    is_document = isinstance(entry, DocumentEntry)
    if is_document and entry.object_type:
        attributes["objectType"] = entry.object_type
    if entry.home_community_id:
        attributes["home"] = entry.home_community_id
    if entry.availability_status:
        attributes["status"] = entry.availability_status
    if is_document and entry.mime_type:
        attributes["mimeType"] = entry.mime_type
    target.open(tag, attributes)
    _append_slots(target, _entry_slots(entry, layout))
    _append_localized(target, "Name", entry.title)
    _append_localized(target, "Description", entry.comments)
    for author in getattr(entry, "authors", []):
        _author(target, author, layout.author_scheme, entry.entry_uuid, new_id)
    for name, scheme in layout.codes.items():
        for code in _codes(entry, layout.code_fields[name]):
            _code(target, code, scheme, entry.entry_uuid, new_id)
    for name, (scheme, label) in layout.identifiers.items():
        value = getattr(entry, layouts.IDENTIFIER_FIELDS[name])
        if value:
            _identifier(target, value, scheme, label, entry.entry_uuid, new_id)
    target.close()


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


def _code(target: Target, code: Code, scheme: str, owner: str, new_id: IdFactory) -> None:
    _classification(target, owner, new_id, {"classificationScheme": scheme,
                                             "nodeRepresentation": code.code})
    _append_slots(target, {CODING_SCHEME_SLOT: [code.scheme]})
    _append_localized(target, "Name", code.display)
    target.close()


def _author(target: Target, author: Author, scheme: str, owner: str,
            new_id: IdFactory) -> None:
    _classification(target, owner, new_id, {"classificationScheme": scheme,
                                             "nodeRepresentation": ""})
    values = [[author.person] if author.person else [], author.institutions, author.roles,
              author.specialties, author.telecommunications]
    _append_slots(target, {name: list(v) for name, v in zip(AUTHOR_SLOTS, values) if v})
    target.close()


def _classification(target: Target, owner: str, new_id: IdFactory,
                    attributes: dict[str, str]) -> None:
    """Open a Classification of *owner* (the caller closes it)."""
    target.open("Classification", {"id": new_id(), "objectType": OBJECT_TYPE_CLASSIFICATION,
                                   **attributes, "classifiedObject": owner})


def _identifier(target: Target, value: str, scheme: str, label: str, owner: str,
                new_id: IdFactory) -> None:
    target.open("ExternalIdentifier", {
        "id": new_id(), "objectType": OBJECT_TYPE_EXTERNAL_IDENTIFIER, "registryObject": owner,
        "identificationScheme": scheme, "value": value})
    _append_localized(target, "Name", label)
    target.close()


def _association(target: Target, association: Association) -> None:
    target.open("Association", {"id": association.entry_uuid,
                                "associationType": association.association_type,
                                "sourceObject": association.source,
                                "targetObject": association.target})
    _append_slots(target, association.extra_slots)
    target.close()


def _append_slots(target: Target, slots: dict[str, list[str]]) -> None:
    for name, values in slots.items():
        target.slot(name, values)


def _append_localized(target: Target, tag: str, value: str) -> None:
    if value:
        target.localized(tag, value)
