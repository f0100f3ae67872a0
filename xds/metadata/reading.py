"""
Reading ebRIM XML (a ``rim:RegistryObjectList``, inside a SubmitObjectsRequest
or a ProvideAndRegisterDocumentSetRequest) into the model.

Reading is tolerant and never throws on content: what cannot be placed in
the model (a RegistryPackage that is neither SubmissionSet nor Folder, an
unknown object) is recorded in :attr:`Submission.reading_problems` as a
RegistryError, which :func:`xds.metadata.validation.validate` reports along
with its own findings. Known sender quirks are read as meant: whitespace
inside scheme UUIDs, the short association types of ebRS 2.1
(``HasMember``), the ``authorSpeciality`` misspelling, and the SubmissionSet
classification placed inside or beside its RegistryPackage.

Only a structural fault (no RegistryObjectList at all) raises
:class:`~xds.metadata.errors.MetadataError`.

test-case-name: tests.xds.test_metadata_xml
"""
from __future__ import annotations

from lxml import etree

from xds.metadata import layout as layouts
from xds.metadata.errors import REGISTRY_METADATA_ERROR, MetadataError, RegistryError
from xds.metadata.layout import Layout
from xds.metadata.model import (
    Association, Author, Code, DocumentEntry, Folder, RegistryEntry, Submission, SubmissionSet,
)
from xds.metadata.vocabulary import (
    AUTHOR_SPECIALTY_ALIAS, CODING_SCHEME_SLOT, FOLDER_NODE, LEGACY_ASSOCIATION_TYPES,
    SUBMISSION_SET_NODE,
)
from xds.namespaces import LCM, RIM, XDS, qname, rim

_ELEMENT_LIST = rim("RegistryObjectList")
_SLOT, _VALUE_LIST, _VALUE = rim("Slot"), rim("ValueList"), rim("Value")


def read_submission(element: etree._Element) -> Submission:
    """The submission carried by *element*: a SubmitObjectsRequest, a
    ProvideAndRegisterDocumentSetRequest, or a RegistryObjectList itself."""
    object_list = _find_object_list(element)
    children = [child for child in object_list if isinstance(child.tag, str)]
    standalone = [c for c in children if c.tag == rim("Classification")]
    nodes = _classification_nodes(children, standalone)
    submission = Submission()
    for child in children:
        if child.tag != rim("Classification"):
            _read_object(child, nodes, submission)
    _apply_standalone(standalone, submission)
    return submission


def _find_object_list(element: etree._Element) -> etree._Element:
    if element.tag == _ELEMENT_LIST:
        return element
    request = element
    if element.tag == qname(XDS, "ProvideAndRegisterDocumentSetRequest"):
        request = element.find(qname(LCM, "SubmitObjectsRequest"))
    found = request.find(_ELEMENT_LIST) if request is not None else None
    if found is not None:
        return found
    namespace = etree.QName(element).namespace or ""
    if namespace not in (LCM, XDS, RIM):
        text = (f"{etree.QName(element).localname} is in namespace {namespace!r}, not ebXML"
                " RegRep 3.0 (XDS.a-era ebRS 2.1 metadata is not supported)")
    else:
        text = f"no rim:RegistryObjectList in {etree.QName(element).localname}"
    raise MetadataError([RegistryError(REGISTRY_METADATA_ERROR, text)])


def _classification_nodes(children, standalone) -> dict[str, str]:
    """Object id -> classificationNode, from inside or beside each object."""
    nodes = {}
    for child in children:
        for classification in child.findall(rim("Classification")):
            node = _compact(classification.get("classificationNode"))
            if node:
                nodes[child.get("id", "")] = node
    for classification in standalone:
        node = _compact(classification.get("classificationNode"))
        if node:
            nodes[classification.get("classifiedObject", "")] = node
    return nodes


def _read_object(child: etree._Element, nodes: dict[str, str], submission: Submission) -> None:
    object_id = child.get("id", "")
    if child.tag == rim("ExtrinsicObject"):
        submission.documents.append(_read_entry(child, DocumentEntry, layouts.DOCUMENT_ENTRY))
    elif child.tag == rim("RegistryPackage") and nodes.get(object_id) == SUBMISSION_SET_NODE:
        submission.submission_sets.append(
            _read_entry(child, SubmissionSet, layouts.SUBMISSION_SET))
    elif child.tag == rim("RegistryPackage") and nodes.get(object_id) == FOLDER_NODE:
        submission.folders.append(_read_entry(child, Folder, layouts.FOLDER))
    elif child.tag == rim("Association"):
        submission.associations.append(_read_association(child))
    elif child.tag == rim("ObjectRef"):
        submission.object_refs.append(object_id)
    else:
        submission.reading_problems.append(RegistryError(
            REGISTRY_METADATA_ERROR,
            f"{etree.QName(child).localname} {object_id!r} is neither a SubmissionSet, a Folder,"
            " a DocumentEntry nor an Association", object_id))


def _read_entry(element: etree._Element, cls, layout: Layout) -> RegistryEntry:
    entry = cls(entry_uuid=element.get("id", ""))
    entry.title = _localized(element.find(rim("Name")))
    entry.comments = _localized(element.find(rim("Description")))
    entry.availability_status = element.get("status", "")
    entry.home_community_id = element.get("home", "")
    if isinstance(entry, DocumentEntry):
        entry.mime_type = element.get("mimeType", "")
        entry.object_type = _compact(element.get("objectType", ""))
    _read_slots(entry, read_slots(element), layout)
    for classification in element.findall(rim("Classification")):
        _read_classification(entry, classification, layout)
    for identifier in element.findall(rim("ExternalIdentifier")):
        _read_identifier(entry, identifier, layout)
    return entry


def _read_slots(entry: RegistryEntry, slots: dict[str, list[str]], layout: Layout) -> None:
    for name, values in slots.items():
        if name in layout.single_slots and len(values) == 1:
            setattr(entry, layout.single_slots[name], values[0])
        elif name in layout.multi_slots:
            setattr(entry, layout.multi_slots[name], values)
        else:
            entry.extra_slots[name] = values


def _read_classification(entry: RegistryEntry, element: etree._Element, layout: Layout) -> None:
    scheme = _compact(element.get("classificationScheme"))
    if not scheme:
        return          # a classificationNode: already used to tell the object's kind
    if scheme == layout.author_scheme:
        entry.authors.append(read_author(element))
        return
    name = layout.code_name(scheme)
    if name is None:
        return
    attribute, repeats = layout.code_fields[name]
    code = read_code(element)
    if repeats:
        getattr(entry, attribute).append(code)
    else:
        setattr(entry, attribute, code)


def _read_identifier(entry: RegistryEntry, element: etree._Element, layout: Layout) -> None:
    name = layout.identifier_name(_compact(element.get("identificationScheme")))
    if name is not None:
        setattr(entry, layouts.IDENTIFIER_FIELDS[name], element.get("value", ""))


def _read_association(element: etree._Element) -> Association:
    kind = _compact(element.get("associationType", ""))
    return Association(
        entry_uuid=element.get("id", ""),
        association_type=LEGACY_ASSOCIATION_TYPES.get(kind, kind),
        source=element.get("sourceObject", ""),
        target=element.get("targetObject", ""),
        extra_slots=read_slots(element),
    )


def _apply_standalone(standalone: list[etree._Element], submission: Submission) -> None:
    """Coded or author classifications placed beside their object, not inside it."""
    targets = {entry.entry_uuid: (entry, layouts.DOCUMENT_ENTRY) for entry in submission.documents}
    targets.update((s.entry_uuid, (s, layouts.SUBMISSION_SET)) for s in submission.submission_sets)
    targets.update((f.entry_uuid, (f, layouts.FOLDER)) for f in submission.folders)
    for classification in standalone:
        target = targets.get(classification.get("classifiedObject", ""))
        if target is not None:
            _read_classification(target[0], classification, target[1])


def read_code(element: etree._Element) -> Code:
    """A coded-value Classification: nodeRepresentation, codingScheme slot, Name."""
    scheme = read_slots(element).get(CODING_SCHEME_SLOT, [""])
    return Code(element.get("nodeRepresentation", ""), scheme[0] if scheme else "",
                _localized(element.find(rim("Name"))))


def read_author(element: etree._Element) -> Author:
    """An author Classification's slots."""
    author = Author()
    for name, values in read_slots(element).items():
        name = "authorSpecialty" if name == AUTHOR_SPECIALTY_ALIAS else name
        if name == "authorPerson":
            author.person = values[0] if values else ""
        elif name in layouts.AUTHOR_MULTI:
            getattr(author, layouts.AUTHOR_MULTI[name]).extend(values)
    return author


def read_slots(element: etree._Element) -> dict[str, list[str]]:
    """The element's own ``rim:Slot`` children: name -> values, in document order."""
    slots: dict[str, list[str]] = {}
    for slot in element.iterchildren(_SLOT):
        # children by tag (lxml's C iteration), not a path (its ElementPath runs in Python)
        values = [value.text or "" for value_list in slot.iterchildren(_VALUE_LIST)
                  for value in value_list.iterchildren(_VALUE)]
        slots.setdefault(slot.get("name", "").strip(), []).extend(values)
    return slots


def _localized(element: etree._Element | None) -> str:
    if element is None:
        return ""
    string = element.find(rim("LocalizedString"))
    return string.get("value", "") if string is not None else ""


def _compact(value: str | None) -> str:
    """A URN with any whitespace removed: UUIDs never contain it, some senders wrap them."""
    return "".join(value.split()) if value else ""
