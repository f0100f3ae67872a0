"""
The SOAP response to a handled XDS.b request, or to a fault: envelope,
Content-Type, chunks and HTTP status, in the request's form (MTOM answers
MTOM, inline answers inline). Pure of Twisted; the resource writes the chunks.

test-case-name: tests.xds.test_http_server
"""
from __future__ import annotations

import functools
from typing import Any, Iterator

from lxml import etree

from xds.metadata.vocabulary import ACTION_RETRIEVE, ACTION_STORED_QUERY, response_action
from xds.metadata.xmltext import escape_text
from xds.safexml import to_bytes
from xds.soap.envelope import SOAPFault, envelope, fault_envelope, new_message_id
from xds.soap.framing import write_envelope_bytes, write_message
from xds.soap.mtom import OutgoingPart
from xds.soap.response import registry_response
from xds.soap.retrieve import retrieve_response

FAULT_ACTION = "http://www.w3.org/2005/08/addressing/soap/fault"
#: SOAP 1.2 HTTP binding: a Sender fault is the client's (400), the others 500.
_FAULT_STATUS = {"Sender": 400}


def answer_body(action: str, answer: Any, mtom: bool
                ) -> tuple[etree._Element, list[OutgoingPart]]:
    """The response Body element (and MTOM parts) for a handler's *answer* to *action*."""
    if action == ACTION_STORED_QUERY:
        return answer, []
    if action == ACTION_RETRIEVE:
        return retrieve_response(answer.response, answer.documents, optimise=mtom)
    return registry_response(answer.errors, answer.status), []


def answer_message(action: str, answer: Any, relates_to: str, mtom: bool
                   ) -> tuple[str, Iterator[bytes]]:
    """Content-Type and chunks of the response to *action* (blocking for file documents)."""
    quick = quick_answer(action, answer, relates_to, mtom)
    if quick is not None:
        return quick
    body, parts = answer_body(action, answer, mtom)
    root = envelope(response_action(action), body, message_id=new_message_id(),
                    relates_to=relates_to)
    return write_message(root, parts, response_action(action), mtom)


def quick_answer(action: str, answer: Any, relates_to: str, mtom: bool
                 ) -> tuple[str, Iterator[bytes]] | None:
    """The response to a submission (ITI-41, ITI-42) stored without error or warning, from
    a template (a few string joins: cheap enough for the reactor thread); None for any
    other answer, which :func:`answer_message` builds."""
    if action in (ACTION_STORED_QUERY, ACTION_RETRIEVE) or answer.errors or not relates_to:
        return None
    data = success_envelope(response_action(action), answer.status, new_message_id(),
                            relates_to)
    return write_envelope_bytes(data, [], response_action(action), mtom)


_MESSAGE_ID, _RELATES_TO = "urn:uuid:message-id-here", "urn:uuid:relates-to-here"


def success_envelope(action: str, status: str, message_id: str, relates_to: str) -> bytes:
    """The bytes of ``envelope(action, registry_response([], status), message_id=...,
    relates_to=...)``, the same as lxml writes them, from a template made once per action."""
    head, middle, tail = _template(action, status)
    return b"".join((head, escape_text(message_id).encode("utf-8"), middle,
                     escape_text(relates_to).encode("utf-8"), tail))


@functools.lru_cache(maxsize=32)
def _template(action: str, status: str) -> tuple[bytes, bytes, bytes]:
    data = to_bytes(envelope(action, registry_response([], status), message_id=_MESSAGE_ID,
                             relates_to=_RELATES_TO))
    head, rest = data.split(_MESSAGE_ID.encode("ascii"))
    middle, tail = rest.split(_RELATES_TO.encode("ascii"))
    return head, middle, tail


def fault_message(fault: SOAPFault, relates_to: str, mtom: bool
                  ) -> tuple[int, str, Iterator[bytes]]:
    """HTTP status, Content-Type and chunks of the envelope reporting *fault*."""
    content_type, chunks = write_message(fault_envelope(fault, relates_to=relates_to), [],
                                         FAULT_ACTION, mtom)
    return _FAULT_STATUS.get(fault.code, 500), content_type, chunks

