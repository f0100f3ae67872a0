"""
Turning one read XDS.b request into the handler call its wsa:Action names,
off the reactor thread (reading the body itself is :mod:`xds.soap.framing`).

Everything here is blocking and pure of Twisted, so the resource runs it with
``deferToThread`` and tests call it directly. Whatever cannot be read becomes
a :class:`xds.soap.envelope.SOAPFault` naming what and where; ITI-41 metadata
or documents that are read but wrong become a RegistryResponse with the
standard error codes, without calling the handler.

test-case-name: tests.xds.test_http_server
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from xds.metadata.content import check_documents
from xds.metadata.errors import MetadataError
from xds.metadata.reading import read_submission
from xds.metadata.validation import Actor, validate
from xds.metadata.vocabulary import (
    ACTION_PNR, ACTION_REGISTER, ACTION_RETRIEVE, ACTION_STORED_QUERY,
)
from xds.namespaces import LCM, QUERY, XDS, qname
from xds.safexml import DEFAULT_MAX_BYTES
from xds.server.handler import ProvideAndRegister
from xds.soap.documents import DEFAULT_MAX_INLINE_BYTES, read_provide_and_register
from xds.soap.envelope import SOAPFault, SOAPMessage
from xds.soap.framing import Incoming
from xds.soap.mtom import MTOMError, MTOMLimits
from xds.soap.response import RegistryResponse, status_for

#: wsa:Action -> (handler method, element the SOAP Body must hold).
TRANSACTIONS = {
    ACTION_PNR: ("provide_and_register", qname(XDS, "ProvideAndRegisterDocumentSetRequest")),
    ACTION_REGISTER: ("register", qname(LCM, "SubmitObjectsRequest")),
    ACTION_STORED_QUERY: ("stored_query", qname(QUERY, "AdhocQueryRequest")),
    ACTION_RETRIEVE: ("retrieve", qname(XDS, "RetrieveDocumentSetRequest")),
}


@dataclass(frozen=True)
class ServerLimits:
    """What one endpoint accepts; a body over *max_body_bytes* is refused as it arrives."""

    max_body_bytes: int = 1024 * 1024 * 1024
    max_xml_bytes: int = DEFAULT_MAX_BYTES
    max_inline_bytes: int = DEFAULT_MAX_INLINE_BYTES
    mtom: MTOMLimits = MTOMLimits()


@dataclass
class Call:
    """The handler method to call with *args*, or the *answer* already decided."""

    method: str
    args: tuple = ()
    answer: Any = None


def decode_call(incoming: Incoming, actions: frozenset[str], limits: ServerLimits) -> Call:
    """The handler call for a read request, or raise SOAPFault (blocking)."""
    message = incoming.message
    if message.action not in actions:
        raise SOAPFault("Sender", f"wsa:Action {message.action or '(missing)'} is not served"
                        " at this endpoint", subcode="wsa:ActionNotSupported")
    method, expected = TRANSACTIONS[message.action]
    if message.body is None or message.body.tag != expected:
        found = message.body.tag if message.body is not None else "nothing"
        raise SOAPFault("Sender", f"the Body of {message.action} holds {found},"
                        f" not {expected}")
    if message.action == ACTION_PNR:
        return _provide_and_register(incoming, limits)
    if message.action == ACTION_REGISTER:
        return _register(message)
    return Call(method, (message.body, message))


def _provide_and_register(incoming: Incoming, limits: ServerLimits) -> Call:
    """Read, validate (as a repository) and check the documents of an ITI-41 request."""
    message = incoming.message
    try:
        submission, documents = read_provide_and_register(
            message.body, incoming.attachments, limits.max_inline_bytes)
    except MetadataError as exc:
        return Call("", answer=_failure(exc.errors))
    except MTOMError as exc:
        raise SOAPFault("Sender", str(exc)) from None
    errors = validate(submission, actor=Actor.REPOSITORY, read_from_xml=True) + \
        check_documents(submission, documents)
    if any(error.is_error for error in errors):
        return Call("", answer=_failure(errors))
    return Call("provide_and_register",
                (ProvideAndRegister(submission, documents, message, warnings=tuple(errors)),))


def _register(message: SOAPMessage) -> Call:
    try:
        submission = read_submission(message.body)
    except MetadataError as exc:
        return Call("", answer=_failure(exc.errors))
    return Call("register", (submission, message))


def _failure(errors: list) -> RegistryResponse:
    return RegistryResponse(status_for(errors), list(errors))

