"""
Parsing untrusted XML: the one place where XDS.b, XDM and CDA input meets lxml.

Peers send SOAP envelopes, ebRIM metadata and CDA documents from outside the
trust boundary. The parser built here never resolves entities, never loads
or keeps a DTD (a document that declares one is refused outright, so a
billion-laughs or external-entity payload gets no further than its
declaration), never touches the network, keeps libxml2's huge-tree limits on,
and refuses input larger than a configured number of bytes before parsing.

A parser is built for each call: lxml parsers are not meant to be shared
between threads, and building one costs little next to parsing.

test-case-name: tests.xds.test_safexml
"""
from __future__ import annotations

from lxml import etree

#: Default largest XML text accepted, in bytes (a SOAP envelope or CDA header
#: with inline base64 can be large; MTOM attachments are not counted here).
DEFAULT_MAX_BYTES = 64 * 1024 * 1024


_DOCTYPE_MARKERS = tuple("<!DOCTYPE".encode(codec) for codec in ("ascii", "utf-16-le", "utf-16-be"))


class UnsafeXMLError(ValueError):
    """The input is refused: not well-formed, too large, or carries a DTD."""


def safe_parser() -> etree.XMLParser:
    """An lxml parser that resolves no entity, loads no DTD and reads no URL."""
    return etree.XMLParser(
        resolve_entities=False,
        load_dtd=False,
        dtd_validation=False,
        no_network=True,
        huge_tree=False,
        remove_pis=True,
    )


def parse_xml(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES,
              what: str = "XML") -> etree._Element:
    """Parse *data* into its root element, or raise :class:`UnsafeXMLError`.

    *what* names the input in error messages ("SOAP envelope", "CDA document").
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError("parse_xml takes bytes, so that the document's own encoding is used")
    if len(data) > max_bytes:
        raise UnsafeXMLError(f"{what} is {len(data)} bytes, over the {max_bytes}-byte limit")
    try:
        root = etree.fromstring(bytes(data), safe_parser())
    except etree.XMLSyntaxError as exc:
        if any(marker in data for marker in _DOCTYPE_MARKERS):
            # libxml2 may stop inside the DTD (entity amplification) before we see it.
            raise UnsafeXMLError(f"{what} declares a DTD (<!DOCTYPE ...>), which is refused;"
                                 f" the parser stopped at: {exc}") from None
        raise UnsafeXMLError(f"{what} is not well-formed XML: {exc}") from None
    _refuse_dtd(root, what)
    return root


def _refuse_dtd(root: etree._Element, what: str) -> None:
    """Refuse any document type declaration, internal subset or not.

    XDS.b, SOAP and CDA never use one, so its presence is either a mistake or
    an attack (entity expansion, external entities, external DTD fetch).
    Without a DTD no entity but the five predefined ones can be declared, so
    any other reference already failed as not well-formed.
    """
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise UnsafeXMLError(f"{what} declares a DTD (<!DOCTYPE ...>), which is refused")


def to_bytes(root: etree._Element) -> bytes:
    """Serialise an element Aiguillage built, as UTF-8 with an XML declaration."""
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
