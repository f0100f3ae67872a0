"""End to end on loopback: a request prepared off the reactor (as the destination
hook will do) is sent by the real HTTP client to a stand-in DMP on 127.0.0.1,
which checks the VIHF and the submission-set signature with the independent
verifier and answers as a repository would."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from lxml import etree
from twisted.internet import defer, reactor
from twisted.internet.threads import deferToThread
from twisted.trial import unittest
from twisted.web import resource, server

from tests.xds.dmp.pki import NOW, pki
from tests.xds.dmp.test_prepare import pnr_request
from tests.xds.dmp.verifier import NS, verify_assertion, verify_submission_signature
from tests.standards import standards_dir
from tests.xds.http_fixtures import http_sender
from xds.dmp.prepare import DMPContext, prepare_for_dmp
from xds.dmp.values import SIGNATURE_TYPE, load_value_sets
from xds.dmp.vihf import Practitioner
from xds.metadata.errors import REGISTRY_ERROR, RegistryError
from xds.metadata.model import Code
from xds.metadata.reading import read_submission
from xds.metadata.vocabulary import ACTION_PNR, RESPONSE_FAILURE, RESPONSE_SUCCESS, response_action
from xds.safexml import parse_xml
from xds.soap.documents import read_documents
from xds.soap.envelope import envelope as soap_envelope
from xds.soap.framing import write_message
from xds.soap.mtom import read_mtom
from xds.soap.response import read_registry_response, registry_response


class StandInDMP(resource.Resource):
    """Accepts an ITI-41 only if both signatures verify against *ca_pem*."""

    isLeaf = True

    def __init__(self, ca_pem):
        super().__init__()
        self.ca_pem = ca_pem
        self.refusals: list[str] = []

    def render_POST(self, request):
        package = read_mtom(request.getHeader("content-type"), request.content)
        envelope = parse_xml(package.root)
        errors = []
        try:
            self._check(envelope, package.attachments)
        except Exception as exc:  # the verifier's refusal becomes the DMP's answer
            self.refusals.append(f"{type(exc).__name__}: {exc}")
            errors.append(RegistryError(REGISTRY_ERROR, f"signature refused: {exc}"))
        message_id = envelope.findtext(".//{http://www.w3.org/2005/08/addressing}MessageID")
        answer = soap_envelope(response_action(ACTION_PNR), registry_response(errors),
                               relates_to=message_id)
        content_type, chunks = write_message(answer, [], response_action(ACTION_PNR), True)
        request.setHeader(b"content-type", content_type.encode())
        return b"".join(chunks)

    def _check(self, envelope, attachments) -> None:
        assertion = envelope.find(f".//{{{NS['saml2']}}}Assertion")
        verify_assertion(etree.tostring(assertion), self.ca_pem)
        body = envelope.find(f"{{{NS['soap']}}}Body")[0]
        documents = {key: doc.read_bytes() for key, doc in
                     read_documents(body, attachments).items()}
        submission = read_submission(body)
        [signature] = [e for e in submission.documents if e.type_code.code == SIGNATURE_TYPE.code]
        signed = {e.unique_id: documents[e.entry_uuid] for e in submission.documents
                  if e is not signature}
        verify_submission_signature(documents[signature.entry_uuid], signed, self.ca_pem)


class LoopbackTests(unittest.TestCase):
    timeout = 60

    @defer.inlineCallbacks
    def _send(self, party):
        folder = Path(tempfile.mkdtemp(prefix="dmp-pki-"))
        self.addCleanup(shutil.rmtree, folder)
        paths = pki().write(folder)
        dmp = StandInDMP(paths["ca"])
        port = reactor.listenTCP(0, server.Site(dmp), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        context = DMPContext(
            Practitioner("801234567897", "DAVID Charles",
                         (Code("10", "1.2.250.1.213.1.1.4.5", "Médecin"),)),
            load_value_sets(standards_dir() / "terminology" / "ans-jdv"),
            identity_status="QUAL", now=NOW)
        request = pnr_request(mtom=True)
        request.url = f"http://127.0.0.1:{port.getHost().port}/repository"
        prepared = yield deferToThread(prepare_for_dmp, request, pki().credentials(party),
                                       context)
        response = yield http_sender(self).send(prepared)
        return read_registry_response(response.incoming.message.body), dmp

    @defer.inlineCallbacks
    def test_the_stand_in_dmp_accepts_the_prepared_request(self):
        """If either signature failed off the wire, the stand-in would answer Failure."""
        answer, dmp = yield self._send(pki().structure)
        self.assertEqual((answer.status, dmp.refusals), (RESPONSE_SUCCESS, []))

    @defer.inlineCallbacks
    def test_a_certificate_from_another_ca_is_refused_by_the_receiver(self):
        """If the receiver accepted an untrusted structure certificate, the test CA would mean nothing."""
        answer, dmp = yield self._send(pki().wrong)
        self.assertEqual(answer.status, RESPONSE_FAILURE)
        self.assertIn("InvalidCertificate", dmp.refusals[0])
