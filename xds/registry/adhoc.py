"""
Reading an ITI-18 ``query:AdhocQueryRequest``: the stored query id, the
return type, and the parameters with their values (ITI TF-2 §3.18.4.1.2.3).

A parameter value is a quoted string (``'a'``, a doubled quote inside), a
number, or a parenthesised list of those (``('a','b')``). The values of one
``rim:Slot`` are alternatives (OR); for the parameters that may be repeated
(``$XDSDocumentEntryEventCodeList``, ``$XDSDocumentEntryConfidentialityCode``
and their kin) each ``rim:Slot`` of that name is one more condition (AND).
So a parameter is kept as one list of values per Slot element.

Values are data, never SQL: the queries bind them as parameters.

test-case-name: tests.xds.test_registry_adhoc
"""
from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

from xds.metadata import errors as codes
from xds.metadata.errors import MetadataError, RegistryError
from xds.namespaces import QUERY, qname, rim

LEAF_CLASS = "LeafClass"
OBJECT_REF = "ObjectRef"
RETURN_TYPES = (LEAF_CLASS, OBJECT_REF)
STORED_QUERY_PARAM_NUMBER = "XDSStoredQueryParamNumber"
STORED_QUERY_MISSING_PARAM = "XDSStoredQueryMissingParam"
UNKNOWN_STORED_QUERY = "XDSUnknownStoredQuery"
RESULT_NOT_SINGLE_PATIENT = "XDSResultNotSinglePatient"
STATUS_PREFIX = "urn:oasis:names:tc:ebxml-regrep:StatusType:"


@dataclass
class StoredQueryRequest:
    """One read AdhocQueryRequest."""

    query_id: str
    return_type: str = LEAF_CLASS
    home: str = ""
    parameters: dict[str, list[list[str]]] = field(default_factory=dict)


class Parameters:
    """The parameters of one request, read the way stored queries need them.

    Each accessor raises :class:`MetadataError` with the stored query error
    codes, so that a query function is a plain sequence of reads and filters.
    """

    def __init__(self, parameters: dict[str, list[list[str]]]):
        self.parameters = parameters

    def has(self, name: str) -> bool:
        """True when the request carries the parameter."""
        return name in self.parameters

    def values(self, name: str, *, required: bool = False) -> list[str]:
        """Every value of a parameter, all Slots together (OR); [] when absent."""
        groups = self.parameters.get(name)
        if groups is None:
            if required:
                raise _error(STORED_QUERY_MISSING_PARAM, f"{name} is required")
            return []
        return [value for group in groups for value in group]

    def groups(self, name: str) -> list[list[str]]:
        """One list of values per Slot of that name (AND of ORs)."""
        return self.parameters.get(name, [])

    def single(self, name: str, *, required: bool = False) -> str | None:
        """A single-valued parameter; more than one value is XDSStoredQueryParamNumber."""
        values = self.values(name, required=required)
        if len(values) > 1:
            raise _error(STORED_QUERY_PARAM_NUMBER, f"{name} takes one value, got {len(values)}")
        return values[0] if values else None

    def statuses(self, name: str) -> list[str]:
        """A required status list, short names (``Approved``) taken as their URN."""
        return [value if ":" in value else STATUS_PREFIX + value
                for value in self.values(name, required=True)]

    def one_of(self, *names: str) -> tuple[str, list[str]]:
        """Exactly one of *names* must be present: which, and its values."""
        present = [name for name in names if self.has(name)]
        if len(present) > 1:
            raise _error(STORED_QUERY_PARAM_NUMBER, f"only one of {', '.join(present)} may be given")
        if not present:
            raise _error(STORED_QUERY_MISSING_PARAM, f"one of {', '.join(names)} is required")
        return present[0], self.values(present[0])


def _error(code: str, text: str) -> MetadataError:
    return MetadataError([RegistryError(code, text)])


def read_adhoc_query_request(element: etree._Element) -> StoredQueryRequest:
    """The request in a ``query:AdhocQueryRequest`` element, or MetadataError."""
    if element.tag != qname(QUERY, "AdhocQueryRequest"):
        raise _error(codes.REGISTRY_ERROR, f"{element.tag} is not a query:AdhocQueryRequest")
    option = element.find(qname(QUERY, "ResponseOption"))
    return_type = option.get("returnType", LEAF_CLASS) if option is not None else LEAF_CLASS
    if return_type not in RETURN_TYPES:
        raise _error(codes.REGISTRY_ERROR, f"returnType {return_type!r} is not LeafClass or"
                                           " ObjectRef")
    query = element.find(rim("AdhocQuery"))
    if query is None:
        raise _error(codes.REGISTRY_ERROR, "the AdhocQueryRequest has no rim:AdhocQuery")
    parameters: dict[str, list[list[str]]] = {}
    for slot in query.iterfind(rim("Slot")):
        name = slot.get("name", "")
        values = [value for text in slot.itertext() if text.strip()
                  for value in parse_value(text, name)]
        parameters.setdefault(name, []).append(values)
    return StoredQueryRequest("".join(query.get("id", "").split()), return_type,
                              query.get("home", ""), parameters)


def parse_value(text: str, name: str = "parameter") -> list[str]:
    """The values in one ``rim:Value``: a quoted string, a number, or a list of those."""
    text = text.strip()
    if text.startswith("(") and text.endswith(")"):
        return _items(text[1:-1], name)
    items = _items(text, name)
    if len(items) != 1:
        raise _error(codes.REGISTRY_ERROR, f"{name}: value {text!r} is a list without parentheses")
    return items


def _items(text: str, name: str) -> list[str]:
    """Comma-separated quoted strings or bare tokens; a quote is doubled inside a string."""
    items, position = [], 0
    while position < len(text):
        while position < len(text) and text[position] in " \t\r\n":
            position += 1
        if position < len(text) and text[position] == "'":
            value, position = _quoted(text, position + 1, name)
        else:
            end = text.find(",", position)
            end = len(text) if end < 0 else end
            value, position = text[position:end].strip(), end
        items.append(value)
        while position < len(text) and text[position] in " \t\r\n":
            position += 1
        if position < len(text) and text[position] != ",":
            raise _error(codes.REGISTRY_ERROR, f"{name}: unexpected {text[position:]!r} after"
                                               f" value {value!r}")
        position += 1
    return items


def _quoted(text: str, position: int, name: str) -> tuple[str, int]:
    value = []
    while position < len(text):
        if text[position] == "'":
            if text[position + 1:position + 2] == "'":
                value.append("'")
                position += 2
                continue
            return "".join(value), position + 1
        value.append(text[position])
        position += 1
    raise _error(codes.REGISTRY_ERROR, f"{name}: a quoted value is not closed in {text!r}")
