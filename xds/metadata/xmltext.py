"""
Writing XML as text, byte for byte as lxml would serialise the same elements, for the
registry's kept objects: the writer of :mod:`xds.metadata.writing` hands its elements to
a target, either an lxml tree (:class:`TreeTarget`, what a request carries) or this text
(:class:`TextTarget`, what the registry stores and only ever reads back), so that the
layout is written once and the stored bytes need no element objects at all.

Every tag is in the ebRIM namespace, written with the ``rim`` prefix that the outermost
element declares. Escaping is lxml's (libxml2's): ``& < >`` in text, and in attributes
``"`` and the tab, line feed and carriage return too; a carriage return in text is a
character reference so that a parser gives it back. A string XML cannot carry is refused
with the ValueError lxml raises.

test-case-name: tests.xds.test_metadata_text
"""
from __future__ import annotations

import functools
import re

from lxml import etree

from xds.metadata.formats import xml_text_problem
from xds.namespaces import RIM, rim

_TEXT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})
_ATTRIBUTE_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;",
                                    "\t": "&#9;", "\n": "&#10;", "\r": "&#13;"})
#: A character either escaping changes: most values hold none and are written as they are.
_TEXT_SPECIAL = re.compile("[&<>\r]")
_ATTRIBUTE_SPECIAL = re.compile('[&<>"\t\n\r]')
_NOT_XML = ("All strings must be XML compatible: Unicode or ASCII, no NULL bytes or control"
            " characters")


class TreeTarget:
    """Elements made in place under *root* (``SubElement``: no namespace reconciliation)."""

    def __init__(self, root: etree._Element):
        self.root = root
        self._open = [root]

    def open(self, local: str, attributes: dict[str, str]) -> None:
        self._open.append(etree.SubElement(self._open[-1], _clark(local), attributes))

    def close(self) -> None:
        self._open.pop()

    def leaf(self, local: str, attributes: dict[str, str], text: str | None = None) -> None:
        element = etree.SubElement(self._open[-1], _clark(local), attributes)
        if text is not None:
            element.text = text

    def slot(self, name: str, values: list[str]) -> None:
        """A ``rim:Slot`` named *name* holding *values*."""
        value_list = etree.SubElement(etree.SubElement(self._open[-1], _SLOT, name=name),
                                      _VALUE_LIST)
        for value in values:
            etree.SubElement(value_list, _VALUE).text = value

    def localized(self, local: str, value: str) -> None:
        """A ``rim:Name`` or ``rim:Description`` holding one LocalizedString of *value*."""
        etree.SubElement(etree.SubElement(self._open[-1], _clark(local)), _LOCALIZED_STRING,
                         value=value)


_SLOT, _VALUE_LIST, _VALUE, _LOCALIZED_STRING = (rim("Slot"), rim("ValueList"), rim("Value"),
                                                 rim("LocalizedString"))


@functools.lru_cache(maxsize=None)
def _clark(local: str) -> str:
    return rim(local)


class TextTarget:
    """The same elements as UTF-8 text, inside ``rim:<outer>`` (which declares ``rim``
    unless *declare* is false: an ancestor does): :meth:`finish` gives what
    ``etree.tostring(element, encoding="UTF-8")`` would."""

    def __init__(self, outer: str, declare: bool = True):
        self._outer = outer
        self._parts = [f'<rim:{outer} xmlns:rim="{RIM}">' if declare else f"<rim:{outer}>"]
        self._open: list[str] = []
        self._pending = False  # the last start tag is not closed yet ('>' or '/>')

    def open(self, local: str, attributes: dict[str, str]) -> None:
        parts = self._parts
        if self._pending:
            parts.append(">")
        parts.append(f"<rim:{local}")
        for name, value in attributes.items():
            parts.append(f' {name}="{_attribute(value)}"')
        self._open.append(local)
        self._pending = True

    def close(self) -> None:
        local = self._open.pop()
        if self._pending:
            self._parts.append("/>")
            self._pending = False
        else:
            self._parts.append(f"</rim:{local}>")

    def leaf(self, local: str, attributes: dict[str, str], text: str | None = None) -> None:
        self.open(local, attributes)
        if text is not None:
            self._parts.append(f">{_text(text)}")
            self._pending = False
        self.close()

    def slot(self, name: str, values: list[str]) -> None:
        if self._pending:
            self._parts.append(">")
            self._pending = False
        inside = "".join([f"<rim:Value>{_text(value)}</rim:Value>" for value in values])
        self._parts.append(f'<rim:Slot name="{_attribute(name)}"><rim:ValueList>{inside}'
                           "</rim:ValueList></rim:Slot>" if inside else
                           f'<rim:Slot name="{_attribute(name)}"><rim:ValueList/></rim:Slot>')

    def localized(self, local: str, value: str) -> None:
        if self._pending:
            self._parts.append(">")
            self._pending = False
        self._parts.append(f'<rim:{local}><rim:LocalizedString value="{_attribute(value)}"/>'
                           f"</rim:{local}>")

    def finish(self) -> bytes:
        """The whole text, the outer element closed; ValueError if a string was no XML text."""
        if len(self._parts) == 1:  # nothing inside: an empty element, as lxml writes it
            self._parts[0] = self._parts[0][:-1] + "/>"
        else:
            if self._pending:
                self._parts.append(">")
                self._pending = False
            self._parts.append(f"</rim:{self._outer}>")
        text = "".join(self._parts)
        if xml_text_problem(text):
            raise ValueError(_NOT_XML)
        return text.encode("utf-8")


def escape_text(value: str) -> str:
    """*value* as element text, escaped as lxml escapes it."""
    return value.translate(_TEXT_ESCAPES) if _TEXT_SPECIAL.search(value) else value


_text = escape_text


def escape_attribute(value: str) -> str:
    """*value* as an attribute value (between double quotes), escaped as lxml escapes it."""
    return value.translate(_ATTRIBUTE_ESCAPES) if _ATTRIBUTE_SPECIAL.search(value) else value


_attribute = escape_attribute
