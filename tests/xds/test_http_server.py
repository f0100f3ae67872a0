"""XDS.b over real HTTP on loopback: ITI-41/43 both forms, faults, hostile bodies.

twisted.trial's TestCase (pytest runs it) so that tests return Deferreds the reactor drives.
"""
from __future__ import annotations

import hashlib
import inspect
import tempfile
from xml.sax.saxutils import escape

from lxml import etree
from twisted.internet import defer, reactor
from twisted.trial import unittest

from tests.xds.builders import DOCUMENT_BYTES, PATIENT, submission
from tests.xds.fakes import REPOSITORY_UNIQUE_ID, InMemoryXDSHandler
from tests.xds.http_fixtures import http_sender, listen, post, xds_site
from xds.client.http import SOAPRequest
from xds.client.transactions import XDSClient
from xds.metadata.vocabulary import ACTION_PNR, RESPONSE_FAILURE, RESPONSE_SUCCESS
from xds.safexml import to_bytes
from xds.server.decoding import ServerLimits
from xds.server.handler import Retrieved, RetrievedDocument, XDSHandler
from xds.soap.documents import provide_and_register_request
from xds.namespaces import RIM, qname
from xds.soap.envelope import SOAPFault, read_fault, request_envelope
from xds.soap.response import RegistryResponse
from xds.soap.retrieve import DocumentReference

BIG = bytes(range(256)) * 4096  # 1 MiB: spooled to disk on both sides


def test_fake_matches_the_handler_protocol():
    """If XDSHandler's methods or signatures change, then the fake must follow."""
    for name, method in inspect.getmembers(XDSHandler, inspect.isfunction):
        if name.startswith("_"):
            continue
        fake = getattr(InMemoryXDSHandler, name)
        assert list(inspect.signature(fake).parameters) == \
            list(inspect.signature(method).parameters), name


def big_submission():
    spec = submission()
    entry = spec.documents[0]
    entry.hash, entry.size = hashlib.sha1(BIG).hexdigest(), str(len(BIG))
    return spec


class ServerTests(unittest.TestCase):
    timeout = 60

    @defer.inlineCallbacks
    def start(self, limits=ServerLimits(), timeout=60):
        self.handler = InMemoryXDSHandler()
        self.base = yield listen(self, xds_site(self.handler, limits, timeout))
        self.sender = http_sender(self, timeout=20)
        self.client = XDSClient(self.sender, repository_url=self.base + "/repository",
                                registry_url=self.base + "/registry")

    @defer.inlineCallbacks
    def assert_still_serving(self):
        response = yield self.client.provide_and_register(submission(), {"Document01": DOCUMENT_BYTES})
        self.assertEqual(response.status, RESPONSE_SUCCESS)

    @defer.inlineCallbacks
    def test_provide_and_retrieve_with_mtom(self):
        """If MTOM attachments were lost or altered either way, then the bytes would differ."""
        yield self.start()
        response = yield self.client.provide_and_register(big_submission(), {"Document01": BIG})
        self.assertEqual((response.status, response.errors), (RESPONSE_SUCCESS, []))
        self.assertEqual(self.handler.documents["1.2.250.1.999.1.1"], ("text/xml", BIG))
        status, documents = yield self.client.retrieve(
            [DocumentReference(REPOSITORY_UNIQUE_ID, "1.2.250.1.999.1.1")])
        self.assertEqual(status.status, RESPONSE_SUCCESS)
        document = documents["1.2.250.1.999.1.1"]
        self.assertEqual((document.sha1, document.read_bytes()), (hashlib.sha1(BIG).hexdigest(), BIG))
        self.assertEqual(type(document).__name__, "Attachment")

    @defer.inlineCallbacks
    def test_provide_and_retrieve_inline(self):
        """If inline base64 were not accepted or answered inline, then this would fail."""
        yield self.start()
        response = yield self.client.provide_and_register(
            submission(), {"Document01": DOCUMENT_BYTES}, mtom=False)
        self.assertEqual(response.status, RESPONSE_SUCCESS)
        status, documents = yield self.client.retrieve(
            [DocumentReference(REPOSITORY_UNIQUE_ID, "1.2.250.1.999.1.1")], mtom=False)
        self.assertEqual(type(documents["1.2.250.1.999.1.1"]).__name__, "InlineDocument")
        self.assertEqual(documents["1.2.250.1.999.1.1"].read_bytes(), DOCUMENT_BYTES)

    @defer.inlineCallbacks
    def test_answer_takes_the_form_of_the_request(self):
        """If an MTOM request got an inline answer (or the reverse), then .mtom would differ."""
        yield self.start()
        for mtom in (True, False):
            body, parts = provide_and_register_request(submission(), {"Document01": DOCUMENT_BYTES},
                                                       optimise=mtom)
            url = self.base + "/repository"
            answer = yield self.sender.send(SOAPRequest(
                url, ACTION_PNR, request_envelope(ACTION_PNR, body, to=url), parts, mtom))
            self.assertEqual((answer.status, answer.incoming.mtom), (200, mtom))

    @defer.inlineCallbacks
    def test_mismatched_hash_is_refused_before_the_handler(self):
        """If the hash were not checked, then the handler would store a wrong document."""
        yield self.start()
        response = yield self.client.provide_and_register(submission(), {"Document01": b"other"})
        self.assertEqual(response.status, RESPONSE_FAILURE)
        self.assertIn("hash", " ".join(e.code_context for e in response.errors))
        self.assertEqual(self.handler.calls, [])
        yield self.assert_still_serving()

    @defer.inlineCallbacks
    def test_unsupported_action_is_a_sender_fault(self):
        """If the registry endpoint accepted ITI-41, then no ActionNotSupported fault."""
        yield self.start()
        self.client.repository_url = self.base + "/registry"
        error = yield self.assertFailure(
            self.client.provide_and_register(submission(), {"Document01": DOCUMENT_BYTES}),
            SOAPFault)
        self.assertEqual((error.code, error.subcode), ("Sender", "wsa:ActionNotSupported"))

    @defer.inlineCallbacks
    def test_handler_failure_is_a_receiver_fault_and_serving_goes_on(self):
        """If a handler error escaped, then the client would hang or see no fault."""
        yield self.start()
        self.handler.fail_with = RuntimeError("disk full")
        error = yield self.assertFailure(
            self.client.provide_and_register(submission(), {"Document01": DOCUMENT_BYTES}),
            SOAPFault)
        self.assertEqual(error.code, "Receiver")
        self.flushLoggedErrors(RuntimeError)
        self.handler.fail_with = None
        yield self.assert_still_serving()


SOAP11 = b"""<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">
<s:Body/></s:Envelope>"""
FOREIGN_HEADER = b"""<?xml version="1.0"?><soap:Envelope
 xmlns:soap="http://www.w3.org/2003/05/soap-envelope" xmlns:x="urn:x"><soap:Header>
<x:Secret soap:mustUnderstand="true">1</x:Secret></soap:Header><soap:Body/></soap:Envelope>"""


class FaultTests(unittest.TestCase):
    timeout = 30

    @defer.inlineCallbacks
    def setUp(self):
        self.handler = InMemoryXDSHandler()
        self.base = yield listen(self, xds_site(self.handler))
        self.client = XDSClient(http_sender(self, timeout=20),
                                repository_url=self.base + "/repository",
                                registry_url=self.base + "/registry")

    @defer.inlineCallbacks
    def fault(self, body: bytes, content_type: str = "application/soap+xml"):
        status, message = yield post(self.base + "/repository", body, content_type)
        return status, read_fault(message.body)

    @defer.inlineCallbacks
    def test_soap11_is_a_version_mismatch(self):
        """If a SOAP 1.1 envelope were read, then no VersionMismatch (HTTP 500) fault."""
        status, fault = yield self.fault(SOAP11, "text/xml")
        self.assertEqual((status, fault.code), (500, "VersionMismatch"))

    @defer.inlineCallbacks
    def test_foreign_must_understand_header(self):
        """If an unknown mustUnderstand header were ignored, then no MustUnderstand fault."""
        status, fault = yield self.fault(FOREIGN_HEADER)
        self.assertEqual((status, fault.code), (500, "MustUnderstand"))

    @defer.inlineCallbacks
    def test_wrong_content_type(self):
        """If any Content-Type were taken for SOAP, then the fault would not name it."""
        status, fault = yield self.fault(b"{}", "application/json")
        self.assertEqual((status, fault.code), (400, "Sender"))
        self.assertIn("application/json", fault.reason)

    @defer.inlineCallbacks
    def test_body_that_does_not_match_the_action(self):
        """If the Body were not checked against the Action, then the handler would be misfed."""
        envelope = request_envelope(ACTION_PNR, etree.Element("{urn:x}Other"), to="x")
        status, fault = yield self.fault(to_bytes(envelope))
        self.assertEqual((status, fault.code), (400, "Sender"))
        self.assertIn("{urn:x}Other", fault.reason)
        self.assertEqual(self.handler.calls, [])

    @defer.inlineCallbacks
    def test_fault_relates_to_the_request(self):
        """If a fault did not carry RelatesTo, then the sender could not match it."""
        envelope = request_envelope(ACTION_PNR, etree.Element("{urn:x}Other"), to="x",
                                    message_id="urn:uuid:0000-1")
        status, message = yield post(self.base + "/repository", to_bytes(envelope))
        self.assertEqual(message.relates_to, "urn:uuid:0000-1")

    @defer.inlineCallbacks
    def test_register_and_stored_query_with_the_own_client(self):
        """If ITI-42 or ITI-18 were not dispatched, then the query would find nothing."""
        response = yield self.client.register(submission())
        self.assertEqual(response.status, RESPONSE_SUCCESS)
        request = etree.fromstring(ADHOC_QUERY.format(patient=escape(PATIENT)).encode())
        answer = yield self.client.stored_query(request)
        self.assertEqual(answer.get("status"), RESPONSE_SUCCESS)
        self.assertEqual([e.get("id") for e in answer.iter(qname(RIM, "ExtrinsicObject"))],
                         ["Document01"])
        self.assertEqual(self.handler.calls, ["register", "stored_query"])


ADHOC_QUERY = """<query:AdhocQueryRequest xmlns:query="urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"
 xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0">
 <query:ResponseOption returnComposedObjects="true" returnType="LeafClass"/>
 <rim:AdhocQuery id="urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d">
  <rim:Slot name="$XDSDocumentEntryPatientId"><rim:ValueList>
   <rim:Value>'{patient}'</rim:Value></rim:ValueList></rim:Slot>
 </rim:AdhocQuery></query:AdhocQueryRequest>"""


class RecipientTests(unittest.TestCase):
    timeout = 30

    @defer.inlineCallbacks
    def test_recipient_takes_provide_and_register_only(self):
        """If the Document Recipient endpoint served ITI-43, then no ActionNotSupported."""
        handler = InMemoryXDSHandler()
        base = yield listen(self, xds_site(handler))
        client = XDSClient(http_sender(self), repository_url=base + "/recipient")
        response = yield client.provide_and_register(submission(), {"Document01": DOCUMENT_BYTES})
        self.assertEqual(response.status, RESPONSE_SUCCESS)
        error = yield self.assertFailure(
            client.retrieve([DocumentReference(REPOSITORY_UNIQUE_ID, "1.2.250.1.999.1.1")]),
            SOAPFault)
        self.assertEqual(error.subcode, "wsa:ActionNotSupported")


class FileSourceTests(unittest.TestCase):
    timeout = 30

    @defer.inlineCallbacks
    def test_retrieved_file_is_streamed_then_closed(self):
        """If the endpoint left a handler's file open, then each retrieve would leak one."""
        handler = InMemoryXDSHandler()
        opened = []

        def retrieve(request, message):
            source = tempfile.TemporaryFile()
            source.write(BIG)
            source.seek(0)
            opened.append(source)
            return defer.succeed(Retrieved(RegistryResponse(RESPONSE_SUCCESS), [
                RetrievedDocument(REPOSITORY_UNIQUE_ID, "1.2.3", "application/pdf", source)]))

        handler.retrieve = retrieve
        base = yield listen(self, xds_site(handler))
        client = XDSClient(http_sender(self), repository_url=base + "/repository")
        status, documents = yield client.retrieve([DocumentReference(REPOSITORY_UNIQUE_ID, "1.2.3")])
        self.assertEqual(documents["1.2.3"].read_bytes(), BIG)
        self.assertTrue(opened[0].closed)
