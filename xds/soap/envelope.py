"""
SOAP 1.2 envelopes with the WS-Addressing headers of IHE's synchronous
exchange (ITI TF-2 Appendix V): building, reading, and SOAP faults.

A request carries ``wsa:Action`` (mustUnderstand), ``wsa:MessageID``,
``wsa:ReplyTo`` (anonymous) and ``wsa:To``; a response carries the
``…Response`` action and ``wsa:RelatesTo`` the request's MessageID.
Reading refuses what a SOAP 1.2 node must refuse: a SOAP 1.1 envelope
(VersionMismatch), a header block marked mustUnderstand that is not
WS-Addressing (MustUnderstand), and anything that is no envelope (Sender).

test-case-name: tests.xds.test_soap
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass

from lxml import etree

from xds.metadata.formats import xml_text_problem
from xds.metadata.xmltext import escape_text
from xds.namespaces import SOAP11, SOAP12, WSA, qname
from xds.safexml import DEFAULT_MAX_BYTES, UnsafeXMLError, parse_xml

ANONYMOUS = "http://www.w3.org/2005/08/addressing/anonymous"
_MUST_UNDERSTAND = qname(SOAP12, "mustUnderstand")
_TRUE = ("1", "true")
_WSA_PREFIX = "{" + WSA + "}"


def soap(local: str) -> str:
    """Clark name in the SOAP 1.2 envelope namespace."""
    return qname(SOAP12, local)


def wsa(local: str) -> str:
    """Clark name in the WS-Addressing 1.0 namespace."""
    return qname(WSA, local)


@dataclass
class SOAPMessage:
    """A read envelope: the addressing headers and the one element in Body."""

    action: str
    message_id: str
    relates_to: str
    to: str
    body: etree._Element | None


class SOAPFault(Exception):
    """A SOAP 1.2 fault, raised by readers and written back by servers.

    *code* is ``Sender``, ``Receiver``, ``MustUnderstand`` or
    ``VersionMismatch``; *subcode* an optional qualified subcode such as
    ``wsa:ActionNotSupported``.
    """

    def __init__(self, code: str, reason: str, subcode: str = ""):
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason
        self.subcode = subcode


def new_message_id() -> str:
    """A fresh ``urn:uuid:`` MessageID."""
    return uuid.uuid4().urn


def envelope(action: str, body: etree._Element | None, *, message_id: str = "",
             relates_to: str = "", to: str = "", reply_to_anonymous: bool = False
             ) -> etree._Element:
    """A SOAP 1.2 envelope with WS-Addressing headers around *body*.

    Requests pass *message_id*, *to* and ``reply_to_anonymous=True``;
    responses pass *relates_to* (and may pass a *message_id* of their own).
    """
    root = etree.Element(soap("Envelope"), nsmap={"soap": SOAP12, "wsa": WSA})
    header = etree.SubElement(root, soap("Header"))
    action_element = etree.SubElement(header, wsa("Action"))
    action_element.set(_MUST_UNDERSTAND, "1")
    action_element.text = action
    if message_id:
        etree.SubElement(header, wsa("MessageID")).text = message_id
    if reply_to_anonymous:
        reply_to = etree.SubElement(header, wsa("ReplyTo"))
        etree.SubElement(reply_to, wsa("Address")).text = ANONYMOUS
    if relates_to:
        etree.SubElement(header, wsa("RelatesTo")).text = relates_to
    if to:
        to_element = etree.SubElement(header, wsa("To"))
        to_element.set(_MUST_UNDERSTAND, "1")
        to_element.text = to
    body_element = etree.SubElement(root, soap("Body"))
    if body is not None:
        body_element.append(body)
    return root


def request_envelope(action: str, body: etree._Element, to: str,
                     message_id: str = "") -> etree._Element:
    """A request envelope: Action, a new MessageID, anonymous ReplyTo, To."""
    return envelope(action, body, message_id=message_id or new_message_id(), to=to,
                    reply_to_anonymous=True)


def request_envelope_bytes(action: str, body: bytes, to: str, message_id: str) -> bytes:
    """What :func:`xds.safexml.to_bytes` gives for ``request_envelope(action, element, to,
    message_id)``, *body* being that element's ``etree.tostring(..., encoding="UTF-8")``:
    the request written as text around a body already serialised."""
    values = (action, message_id, to)
    for value in values:
        if xml_text_problem(value):
            raise ValueError(f"{value!r} cannot be written in XML: {xml_text_problem(value)}")
    action, message_id, to = (escape_text(value) for value in values)
    to_header = f'<wsa:To soap:mustUnderstand="1">{to}</wsa:To>' if to else ""
    headers = (f'<wsa:Action soap:mustUnderstand="1">{action}</wsa:Action>'
               f"<wsa:MessageID>{message_id}</wsa:MessageID><wsa:ReplyTo><wsa:Address>"
               f"{ANONYMOUS}</wsa:Address></wsa:ReplyTo>{to_header}</soap:Header><soap:Body>")
    return b"".join((_REQUEST_HEAD, headers.encode("utf-8"), body,
                     b"</soap:Body></soap:Envelope>"))


_REQUEST_HEAD = (f"<?xml version='1.0' encoding='UTF-8'?>\n<soap:Envelope xmlns:soap=\"{SOAP12}\""
                 f' xmlns:wsa="{WSA}"><soap:Header>').encode("ascii")


def parse_envelope(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> SOAPMessage:
    """Read a SOAP 1.2 envelope from bytes, or raise :class:`SOAPFault`."""
    try:
        root = parse_xml(data, max_bytes=max_bytes, what="SOAP envelope")
    except UnsafeXMLError as exc:
        raise SOAPFault("Sender", str(exc)) from None
    return read_envelope(root)


def read_envelope(root: etree._Element) -> SOAPMessage:
    """Read an already parsed envelope, or raise :class:`SOAPFault`."""
    if root.tag == qname(SOAP11, "Envelope"):
        raise SOAPFault("VersionMismatch", "SOAP 1.1 envelope received; XDS.b uses SOAP 1.2")
    if root.tag != soap("Envelope"):
        raise SOAPFault("Sender", f"root element is {root.tag}, not a SOAP 1.2 Envelope")
    header = root.find(soap("Header"))
    body = root.find(soap("Body"))
    if body is None:
        raise SOAPFault("Sender", "SOAP envelope has no Body")
    headers = _read_headers(header)
    children = [child for child in body if isinstance(child.tag, str)]
    return SOAPMessage(action=headers.get("Action", ""), message_id=headers.get("MessageID", ""),
                       relates_to=headers.get("RelatesTo", ""), to=headers.get("To", ""),
                       body=children[0] if children else None)


def _read_headers(header: etree._Element | None) -> dict[str, str]:
    """The WS-Addressing values; a foreign mustUnderstand header is a fault."""
    values: dict[str, str] = {}
    if header is None:
        return values
    for block in header:
        tag = block.tag
        if not isinstance(tag, str):
            continue
        if tag.startswith(_WSA_PREFIX):
            values[tag[len(_WSA_PREFIX):]] = (block.text or "").strip()
        elif block.get(_MUST_UNDERSTAND, "").strip() in _TRUE:
            raise SOAPFault("MustUnderstand", f"header {block.tag} is not understood")
    return values


def fault_envelope(fault: SOAPFault, *, relates_to: str = "") -> etree._Element:
    """The envelope that reports *fault* (WS-Addressing fault action, RelatesTo)."""
    element = etree.Element(soap("Fault"))
    code = etree.SubElement(element, soap("Code"))
    etree.SubElement(code, soap("Value")).text = f"soap:{fault.code}"
    if fault.subcode:
        subcode = etree.SubElement(etree.SubElement(code, soap("Subcode")), soap("Value"))
        subcode.text = fault.subcode
    reason = etree.SubElement(element, soap("Reason"))
    text = etree.SubElement(reason, soap("Text"))
    text.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
    text.text = fault.reason
    return envelope("http://www.w3.org/2005/08/addressing/soap/fault", element,
                    relates_to=relates_to)


def read_fault(body: etree._Element) -> SOAPFault | None:
    """The fault carried by a response body, or None if the body is no fault."""
    if body is None or body.tag != soap("Fault"):
        return None
    value = body.findtext(f"{soap('Code')}/{soap('Value')}") or ""
    subcode = body.findtext(f"{soap('Code')}/{soap('Subcode')}/{soap('Value')}") or ""
    reason = body.findtext(f"{soap('Reason')}/{soap('Text')}") or ""
    return SOAPFault(value.rpartition(":")[2], reason.strip(), subcode.strip())
