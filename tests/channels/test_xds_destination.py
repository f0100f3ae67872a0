"""The ``xds`` destination against a real XDS.b endpoint on loopback (xds/server with an
in-memory handler): what it sends for a CDA and for a submission, its two hooks, and how each
answer is judged (SENT, retried, parked)."""
from __future__ import annotations

import copy
import threading
from pathlib import Path

import pytest
from lxml import etree
from twisted.internet import defer, reactor
from twisted.trial import unittest

from channels.xds_destination import OutgoingSubmission, XDSDestination
from engine.interfaces import DeliveryContext, DeliveryFailed, DeliveryOutcome
from mappings.message import HL7Message
from mappings.transforms.oru_cda import oru_to_cda
from tests.xds import builders
from tests.xds.fakes import InMemoryXDSHandler
from tests.xds.http_fixtures import listen, xds_site
from xds.client.http import SOAPRequest
from xds.metadata.errors import MetadataError, RegistryError
from xds.metadata.vocabulary import ACTION_PNR
from xds.soap.envelope import SOAPFault
from xds.soap.response import RegistryResponse
from xds.transforms.payload import submission_payload

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
CONTEXT = DeliveryContext("lab", 1, 1, "M1", "ORU^R01", 1)
SOURCE_ID = "1.2.250.1.999.1.7"
METADATA = {"class-code": {"code": "11", "scheme": "1.2.250.1.213.1.1.4.1"},
            "practice-setting-code": {"code": "LAB", "scheme": "1.2.250.1.213.1.1.4.9"},
            "healthcare-facility-code": {"code": "SA01", "scheme": "1.2.250.1.71.4.2.4"}}


def lab_cda() -> bytes:
    text = (SAMPLES / "oru" / "r01-biochemistry.hl7").read_text(encoding="utf-8")
    return oru_to_cda(HL7Message.parse(text))


class ScriptedHandler(InMemoryXDSHandler):
    """Answers ITI-41 with ``answer`` when set (a RegistryResponse), else stores."""

    answer: RegistryResponse | None = None

    def provide_and_register(self, request):
        if self.answer is not None:
            return defer.succeed(self.answer)
        return super().provide_and_register(request)


class XDSDestinationTests(unittest.TestCase):
    timeout = 30

    @defer.inlineCallbacks
    def setUp(self):
        self.handler = ScriptedHandler()
        base = yield listen(self, xds_site(self.handler))
        self.url = base + "/repository"

    def destination(self, **options) -> XDSDestination:
        made = XDSDestination("dmp", "lab", 0, {"url": self.url, "source_id": SOURCE_ID,
                                                "metadata": METADATA, **options}, reactor)
        self.addCleanup(made.stop)  # closes the connections it keeps
        return made

    @defer.inlineCallbacks
    def failure_of(self, payload: bytes, **options) -> DeliveryFailed:
        try:
            yield self.destination(**options).send(payload, CONTEXT)
        except DeliveryFailed as failed:
            return failed
        self.fail("the delivery did not fail")

    @defer.inlineCallbacks
    def test_a_cda_is_submitted_with_its_header_metadata(self):
        """If the payload is a CDA, then the repository receives it, its DocumentEntry from
        the header and the settings, and the outcome keeps the RegistryResponse."""
        for mtom in (True, False):
            outcome = yield self.destination(mtom=mtom).send(lab_cda(), CONTEXT)
            self.assertIsInstance(outcome, DeliveryOutcome)
            self.assertIn(b"ResponseStatusType:Success", outcome.response)
        entry = self.handler.submissions[-1].documents[0]
        self.assertEqual((entry.class_code.code, entry.practice_setting_code.code),
                         ("11", "LAB"))
        self.assertEqual(self.handler.submissions[-1].submission_set.source_id, SOURCE_ID)
        self.assertEqual(self.handler.documents[entry.unique_id], ("text/xml", lab_cda()))

    @defer.inlineCallbacks
    def test_a_submission_is_sent_as_it_is(self):
        """If the payload is a submission, then its metadata and bytes go unchanged."""
        submission = builders.submission()
        payload = submission_payload(submission, {"Document01": builders.DOCUMENT_BYTES})
        yield self.destination().send(payload, CONTEXT)
        sent = self.handler.submissions[0]
        self.assertEqual(sent.documents[0].unique_id, submission.documents[0].unique_id)
        self.assertEqual(self.handler.documents[sent.documents[0].unique_id][1],
                         builders.DOCUMENT_BYTES)

    @defer.inlineCallbacks
    def test_the_patient_id_hook_rewrites_every_patient_id(self):
        """If a patient_id hook is given, then the entry and the set carry what it says."""
        asked = []

        def affinity(patient_id, submission, context):
            asked.append((patient_id, context.message_id))
            return defer.succeed("INS123^^^&1.2.250.1.213.1.4.8&ISO^NH")

        yield self.destination(patient_id=affinity).send(lab_cda(), CONTEXT)
        sent = self.handler.submissions[0]
        self.assertEqual({sent.documents[0].patient_id, sent.submission_set.patient_id},
                         {"INS123^^^&1.2.250.1.213.1.4.8&ISO^NH"})
        self.assertEqual(asked, [("00451203^^^&1.2.250.1.999.1.1&ISO", 1)])

    @defer.inlineCallbacks
    def test_prepare_request_gets_the_built_request_in_a_thread(self):
        """If prepare_request is given, then it gets the SOAPRequest and what it was built
        from, in a worker thread, and what it returns is sent: a mustUnderstand header it
        adds reaches the repository, which faults on it (MustUnderstand: permanent)."""
        seen = []

        def secure(request: SOAPRequest, outgoing: OutgoingSubmission) -> SOAPRequest:
            seen.append((threading.current_thread() is threading.main_thread(),
                         request.action, outgoing.context.message_id,
                         outgoing.submission.documents[0].mime_type))
            prepared = copy.deepcopy(request)
            header = etree.SubElement(prepared.envelope[0], "{urn:example:security}Security")
            header.set("{http://www.w3.org/2003/05/soap-envelope}mustUnderstand", "true")
            return prepared

        failed = yield self.failure_of(lab_cda(), prepare_request=secure)
        self.assertEqual(seen, [(False, ACTION_PNR, 1, "text/xml")])
        self.assertIn("MustUnderstand", failed.reason)
        self.assertIn("urn:example:security", failed.reason)
        self.assertFalse(failed.retryable)
        self.assertEqual(self.handler.calls, [])

        yield self.destination(prepare_request=lambda request, outgoing: request).send(
            lab_cda(), CONTEXT)
        self.assertEqual(self.handler.calls, ["provide_and_register"])

    @defer.inlineCallbacks
    def test_a_request_prepare_request_refuses_is_not_sent(self):
        """If prepare_request raises a MetadataError (the DMP rules), then the delivery
        fails for good with its codes, and nothing is sent."""
        def refuse(request, outgoing):
            raise MetadataError([RegistryError("XDSPatientIdDoesNotMatch",
                                               "the INS is not qualified")])

        failed = yield self.failure_of(lab_cda(), prepare_request=refuse)
        self.assertFalse(failed.retryable)
        self.assertIn("XDSPatientIdDoesNotMatch: the INS is not qualified", failed.reason)
        self.assertEqual(self.handler.calls, [])

    @defer.inlineCallbacks
    def test_a_registry_failure_is_permanent_with_its_codes(self):
        """If the repository answers Failure, then the delivery fails for good, naming each
        error's code, text and location, the RegistryResponse kept."""
        self.handler.answer = RegistryResponse(
            "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure",
            [RegistryError("XDSPatientIdDoesNotMatch", "patient differs", "Document01")])
        failed = yield self.failure_of(lab_cda())
        self.assertFalse(failed.retryable)
        self.assertIn("Failure: XDSPatientIdDoesNotMatch: patient differs (at Document01)",
                      failed.reason)
        self.assertIn(b'errorCode="XDSPatientIdDoesNotMatch"', failed.response)

    @defer.inlineCallbacks
    def test_a_retry_the_registry_already_holds_is_sent(self):
        """If a second attempt is answered only XDSDuplicateUniqueIdInRegistry (the first
        was stored, its answer lost), then it is SENT; at the first attempt it is an error."""
        self.handler.answer = RegistryResponse(
            "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure",
            [RegistryError("XDSDuplicateUniqueIdInRegistry", "1.2.3 is registered")])
        retry = DeliveryContext("lab", 1, 1, "M1", "ORU^R01", attempt=2)
        outcome = yield self.destination().send(lab_cda(), retry)
        self.assertIn("already registered by an earlier attempt", outcome.detail)
        self.assertEqual(outcome.note, outcome.detail)  # journalled
        failed = yield self.failure_of(lab_cda())
        self.assertFalse(failed.retryable)

    @defer.inlineCallbacks
    def test_warnings_of_a_success_are_noted_for_the_journal(self):
        """If the registry answers Success with a warning, then the outcome's note names it
        (its SENT line is written with it); a plain Success has no note."""
        outcome = yield self.destination().send(lab_cda(), CONTEXT)
        self.assertEqual((outcome.detail, outcome.note), ("Success", None))
        self.handler.answer = RegistryResponse(
            "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success",
            [RegistryError("XDSRegistryMetadataError", "sourceId is no OID", None, "urn:oasis:"
                           "names:tc:ebxml-regrep:ErrorSeverityType:Warning")])
        outcome = yield self.destination().send(lab_cda(), CONTEXT)
        self.assertIn("warnings: XDSRegistryMetadataError: sourceId is no OID", outcome.note)

    @defer.inlineCallbacks
    def test_a_busy_registry_is_retried(self):
        """If every error says busy or out of resources, then the delivery is retried."""
        self.handler.answer = RegistryResponse(
            "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure",
            [RegistryError("XDSRepositoryOutOfResources", "disk full")])
        failed = yield self.failure_of(lab_cda())
        self.assertTrue(failed.retryable)

    @defer.inlineCallbacks
    def test_soap_faults_sender_permanent_receiver_retried(self):
        """If the repository faults Sender, then the delivery fails for good; Receiver: it
        is retried."""
        for code, retryable in (("Sender", False), ("Receiver", True)):
            self.handler.fail_with = SOAPFault(code, "scripted")
            failed = yield self.failure_of(lab_cda())
            self.assertEqual(failed.retryable, retryable, code)
            self.assertIn(f"SOAP {code} fault: scripted", failed.reason)

    @defer.inlineCallbacks
    def test_a_peer_that_does_not_answer_is_retried(self):
        """If nothing listens, then the delivery fails and is retried."""
        destination = XDSDestination("dmp", "lab", 0, {
            "url": "http://127.0.0.1:1/xds", "source_id": SOURCE_ID, "timeout": 5}, reactor)
        try:
            yield destination.send(lab_cda(), CONTEXT)
        except DeliveryFailed as failed:
            self.assertTrue(failed.retryable)
            self.assertIn("127.0.0.1:1", failed.reason)
        else:
            self.fail("delivered to nobody")

    @defer.inlineCallbacks
    def test_an_hl7_message_is_refused_for_good_asking_for_a_transform(self):
        """If the payload is the HL7 v2 message itself, then it is permanent, saying to name
        a transform, and nothing is sent."""
        failed = yield self.failure_of(b"MSH|^~\\&|A|B|C|D|20260101||ORU^R01|1|P|2.5\r")
        self.assertFalse(failed.retryable)
        self.assertIn("name a transform", failed.reason)
        self.assertEqual(self.handler.calls, [])


@pytest.mark.parametrize("options,message", [
    ({"url": "ftp://x"}, "url must start with http:// or https://"),
    ({"url": "http://x", "tls_ca": "/ca.pem"}, "tls_ca set but the url is http://"),
    ({"url": "http://x", "patient_id": "no.such.module:f"}, "patient_id 'no.such.module:f' "
                                                           "cannot be loaded"),
    ({"url": "http://x", "metadata": {"class-code": "11"}}, "metadata: class-code must be"),
    ({"url": "http://x", "timeout": 0}, "timeout must be more than 0"),
])
def test_bad_options_are_refused_naming_the_destination(options, message):
    """If an option is wrong, then building the destination says which, and where."""
    with pytest.raises(ValueError, match=message) as caught:
        XDSDestination("dmp", "lab", 0, options, reactor)
    assert str(caught.value).startswith('destination "dmp" (xds)')


def test_a_hook_may_be_named_by_its_module():
    """If patient_id names module:function, then that function is the hook."""
    destination = XDSDestination("dmp", "lab", 0, {
        "url": "http://x", "patient_id": "tests.channels.test_xds_destination:lab_cda"},
        reactor)
    assert destination.patient_id is lab_cda
