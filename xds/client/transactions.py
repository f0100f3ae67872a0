"""
The XDS.b transactions a Document Source and a Document Consumer start:
ITI-41, ITI-42, ITI-18 and ITI-43, each one SOAP exchange over a
:class:`xds.client.http.Sender`.

Errors the peer reports in a RegistryResponse are a result (the caller
decides what Failure or PartialSuccess means); a SOAP fault fails the
Deferred with :class:`xds.soap.envelope.SOAPFault`, a transport failure with
:class:`xds.client.http.XDSTransportError`.

test-case-name: tests.xds.test_http_client
"""
from __future__ import annotations

from typing import BinaryIO, Mapping

from lxml import etree
from twisted.internet import defer

from xds.client.http import Sender, SOAPRequest, SOAPResponse, XDSTransportError, run_for_size
from xds.metadata.model import Submission
from xds.metadata.vocabulary import (
    ACTION_PNR, ACTION_REGISTER, ACTION_RETRIEVE, ACTION_STORED_QUERY, response_action,
)
from xds.metadata.writing import submit_objects_request_bytes
from xds.soap.documents import provide_and_register_bytes
from xds.soap.envelope import new_message_id, read_fault, request_envelope_bytes
from xds.soap.response import RegistryResponse, read_registry_response
from xds.soap.retrieve import DocumentReference, read_retrieve_response, retrieve_request


class XDSClient:
    """Calls one peer's endpoints: *repository_url* (ITI-41, ITI-43), *registry_url*."""

    def __init__(self, sender: Sender, *, repository_url: str = "", registry_url: str = ""):
        self.sender = sender
        self.repository_url = repository_url
        self.registry_url = registry_url

    def provide_and_register(self, submission: Submission,
                             documents: Mapping[str, bytes | BinaryIO], *, mtom: bool = True
                             ) -> defer.Deferred[RegistryResponse]:
        """ITI-41: send *submission* and its documents (MTOM or inline base64)."""
        body, parts = provide_and_register_bytes(submission, documents, optimise=mtom)
        return self._call(self.repository_url, ACTION_PNR, body, parts, mtom,
                          lambda response: read_registry_response(response.incoming.message.body))

    def register(self, submission: Submission) -> defer.Deferred[RegistryResponse]:
        """ITI-42: register *submission*'s metadata."""
        return self._call(self.registry_url, ACTION_REGISTER,
                          submit_objects_request_bytes(submission), [], False,
                          lambda response: read_registry_response(response.incoming.message.body))

    def stored_query(self, request: etree._Element) -> defer.Deferred[etree._Element]:
        """ITI-18: send a ``query:AdhocQueryRequest``; the ``AdhocQueryResponse`` element."""
        return self._call(self.registry_url, ACTION_STORED_QUERY, request, [], False,
                          lambda response: response.incoming.message.body)

    def retrieve(self, references: list[DocumentReference], *, mtom: bool = True
                 ) -> defer.Deferred[tuple]:
        """ITI-43: (RegistryResponse, {document uniqueId: content}) for *references*.

        Attachments stay spooled until the caller closes them (``close()``).
        """
        return self._call(self.repository_url, ACTION_RETRIEVE, retrieve_request(references),
                          [], mtom, lambda response: read_retrieve_response(
                              response.incoming.message.body, response.incoming.attachments))

    def _call(self, url: str, action: str, body: bytes | etree._Element, parts: list,
              mtom: bool, read) -> defer.Deferred:
        """Send *body* (an element, or one already serialised) to *url* in a request
        envelope; the answer read by *read* (on the reactor thread when it is small:
        :func:`run_for_size`)."""
        if not url:
            raise ValueError(f"no endpoint URL configured for {action}")
        if not isinstance(body, bytes):
            body = etree.tostring(body, encoding="UTF-8")
        message_id = new_message_id()
        request = SOAPRequest(url, action, parts=parts, mtom=mtom,
                              data=request_envelope_bytes(action, body, url, message_id))
        exchange = self.sender.send(request)
        return exchange.addCallback(lambda response: run_for_size(
            response.size, _answer, response, action, message_id, read))


def _answer(response: SOAPResponse, action: str, message_id: str, read):
    """The answer's content, or raise its fault (in a thread for a large answer)."""
    message = response.incoming.message
    if message.relates_to and message.relates_to != message_id:
        response.incoming.close()
        raise XDSTransportError(f"answer to {action} relates to {message.relates_to},"
                                f" not to the request {message_id}")
    fault = read_fault(message.body)
    if fault is not None:
        response.incoming.close()
        raise fault
    if message.action and message.action != response_action(action):
        raise XDSTransportError(f"answer to {action} has wsa:Action {message.action}")
    if message.body is None:
        raise XDSTransportError(f"answer to {action} has an empty SOAP Body")
    try:
        return read(response)
    except ValueError as exc:
        raise XDSTransportError(f"answer to {action} cannot be read: {exc}") from None
