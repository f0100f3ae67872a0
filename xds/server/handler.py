"""
The seam between the XDS.b HTTP endpoints and what answers them.

:class:`XDSHandler` is what the built-in registry/repository, a channel
source, or a test fake implements; the resources in :mod:`xds.server.resource`
have read, bounded and checked each request before calling it, off the
reactor thread, and write its answer back in the request's form (MTOM or
inline). Each method returns a Deferred so that a handler may store in a
thread and answer when its transaction has committed.

test-case-name: tests.xds.test_http_server
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import BinaryIO, Protocol, Union

from lxml import etree
from twisted.internet.defer import Deferred

from xds.metadata.model import Submission
from xds.soap.documents import InlineDocument
from xds.soap.envelope import SOAPMessage
from xds.soap.mtom import Attachment
from xds.soap.response import RegistryResponse

#: A received document: an MTOM attachment (spooled file) or decoded inline base64.
ReceivedDocument = Union[Attachment, InlineDocument]


@dataclass
class ProvideAndRegister:
    """An ITI-41 request whose metadata passed validation and whose documents match it.

    *documents* maps each DocumentEntry id to its content (``size``, ``sha1``,
    ``open()``/``read_bytes()``); the spooled files are released once the
    handler's Deferred has fired, so a handler stores them before it answers.
    """

    submission: Submission
    documents: dict[str, ReceivedDocument]
    message: SOAPMessage
    peer: str = ""  # the client's address, "host:port", as the endpoint saw it
    # What validation found that does not refuse the request (a sourceId that is no OID):
    # told to the sender in the RegistryResponse of a stored submission.
    warnings: tuple = ()


@dataclass
class RetrievedDocument:
    """One document of an ITI-43 answer; *source* is bytes or a file read in blocks.

    The endpoint closes a file *source* once the answer is written (or has failed).
    """

    repository_unique_id: str
    document_unique_id: str
    mime_type: str
    source: bytes | BinaryIO
    home_community_id: str = ""


@dataclass
class Retrieved:
    """The answer to an ITI-43 request: a status with errors, and the documents found."""

    response: RegistryResponse
    documents: list[RetrievedDocument] = field(default_factory=list)


class RefusalRecorder(Protocol):
    """What an endpoint tells of each request it refuses (invalid metadata, a hash that does
    not match, an unreadable body) before it answers, so that a Document Recipient can keep
    what it was sent (a channel stores it in ERROR): nothing sent is lost."""

    def __call__(self, content_type: str, body: bytes, reason: str, peer: str) -> Deferred:
        """Record the refused request's body and why; the answer waits for the Deferred."""


class XDSHandler(Protocol):
    """What answers the XDS.b transactions; every method returns a Deferred."""

    def provide_and_register(self, request: ProvideAndRegister) -> Deferred[RegistryResponse]:
        """ITI-41: store the documents and register their metadata (Deferred response)."""

    def register(self, submission: Submission, message: SOAPMessage
                 ) -> Deferred[RegistryResponse]:
        """ITI-42: validate (as a registry) and register *submission* (Deferred response)."""

    def stored_query(self, request: etree._Element, message: SOAPMessage
                     ) -> Deferred[etree._Element]:
        """ITI-18: answer a ``query:AdhocQueryRequest`` with a ``query:AdhocQueryResponse``."""

    def retrieve(self, request: etree._Element, message: SOAPMessage) -> Deferred[Retrieved]:
        """ITI-43: the documents a ``xds:RetrieveDocumentSetRequest`` names (Deferred)."""
