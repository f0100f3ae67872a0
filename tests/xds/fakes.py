"""
An in-memory :class:`xds.server.handler.XDSHandler` for the HTTP tests, until the built-in
registry/repository answers. It keeps what ITI-41/42 give it, answers FindDocuments by
patient id from it, and retrieves stored bytes by uniqueId. ``test_fake_matches_the_handler
_protocol`` (tests/xds/test_http_server.py) checks it against the Protocol it stands for.
"""
from __future__ import annotations

from lxml import etree
from twisted.internet import defer

from xds.metadata.model import Submission
from xds.metadata.vocabulary import RESPONSE_SUCCESS
from xds.metadata.writing import registry_object_list
from xds.namespaces import QUERY, RIM, qname
from xds.server.handler import ProvideAndRegister, Retrieved, RetrievedDocument
from xds.soap.response import RegistryResponse
from xds.soap.retrieve import read_retrieve_request

REPOSITORY_UNIQUE_ID = "1.2.250.1.999.4"


class InMemoryXDSHandler:
    """Keeps submissions and document bytes in lists and dicts; fails on demand."""

    def __init__(self):
        self.submissions: list[Submission] = []
        self.documents: dict[str, tuple[str, bytes]] = {}
        self.calls: list[str] = []
        self.fail_with: Exception | None = None

    def provide_and_register(self, request: ProvideAndRegister) -> defer.Deferred:
        self.calls.append("provide_and_register")
        if self.fail_with is not None:
            return defer.fail(self.fail_with)
        for entry in request.submission.documents:
            data = request.documents[entry.entry_uuid].read_bytes()
            self.documents[entry.unique_id] = (entry.mime_type, data)
        self.submissions.append(request.submission)
        return defer.succeed(RegistryResponse(RESPONSE_SUCCESS))

    def register(self, submission, message) -> defer.Deferred:
        self.calls.append("register")
        self.submissions.append(submission)
        return defer.succeed(RegistryResponse(RESPONSE_SUCCESS))

    def stored_query(self, request, message) -> defer.Deferred:
        self.calls.append("stored_query")
        patient = _slot(request, "$XDSDocumentEntryPatientId").strip("'")
        found = Submission(documents=[entry for submission in self.submissions
                                      for entry in submission.documents
                                      if entry.patient_id == patient])
        response = etree.Element(qname(QUERY, "AdhocQueryResponse"), nsmap={"query": QUERY},
                                 status=RESPONSE_SUCCESS)
        response.append(registry_object_list(found))
        return defer.succeed(response)

    def retrieve(self, request, message) -> defer.Deferred:
        self.calls.append("retrieve")
        documents = [RetrievedDocument(REPOSITORY_UNIQUE_ID, reference.document_unique_id,
                                       *self.documents[reference.document_unique_id])
                     for reference in read_retrieve_request(request)
                     if reference.document_unique_id in self.documents]
        return defer.succeed(Retrieved(RegistryResponse(RESPONSE_SUCCESS), documents))


def _slot(request: etree._Element, name: str) -> str:
    for slot in request.iter(qname(RIM, "Slot")):
        if slot.get("name") == name:
            return slot.findtext(f"{qname(RIM, 'ValueList')}/{qname(RIM, 'Value')}") or ""
    return ""
