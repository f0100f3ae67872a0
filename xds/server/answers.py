"""
The SOAP response to a handled XDS.b request, or to a fault: envelope,
Content-Type, chunks and HTTP status, in the request's form (MTOM answers
MTOM, inline answers inline). Pure of Twisted; the resource writes the chunks.

test-case-name: tests.xds.test_http_server
"""
from __future__ import annotations

from typing import Any, Iterator

from lxml import etree

from xds.metadata.vocabulary import ACTION_RETRIEVE, ACTION_STORED_QUERY, response_action
from xds.soap.envelope import SOAPFault, envelope, fault_envelope, new_message_id
from xds.soap.framing import write_message
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
    body, parts = answer_body(action, answer, mtom)
    root = envelope(response_action(action), body, message_id=new_message_id(),
                    relates_to=relates_to)
    return write_message(root, parts, response_action(action), mtom)


def fault_message(fault: SOAPFault, relates_to: str, mtom: bool
                  ) -> tuple[int, str, Iterator[bytes]]:
    """HTTP status, Content-Type and chunks of the envelope reporting *fault*."""
    content_type, chunks = write_message(fault_envelope(fault, relates_to=relates_to), [],
                                         FAULT_ACTION, mtom)
    return _FAULT_STATUS.get(fault.code, 500), content_type, chunks

