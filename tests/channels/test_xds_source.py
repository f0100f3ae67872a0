"""The ``xds`` source on loopback, with a recording DocumentReceiver: over mutual TLS, with
the ``xds`` destination as its client (both connectors' TLS options), a submission is handed
over in the form an xds destination sends; the answer waits for the commit, a failed commit
is a Receiver fault (the destination retries), and a shared port serves several listeners.
The real engine behind it is in tests/e2e/test_xds.py."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from twisted.internet import defer, reactor
from twisted.trial import unittest

from channels.xds_destination import XDSDestination
from channels.xds_source import MESSAGE_TYPE, XDSSource
from engine.interfaces import DeliveryContext, DeliveryFailed
from tests.channels.fakes import FakeDocumentReceiver
from tests.channels.test_xds_destination import METADATA, SOURCE_ID, lab_cda
from tests.mllp.test_tls import make_pki
from xds.transforms.payload import read_payload

CONTEXT = DeliveryContext("lab", 1, 1, "M1", "ORU^R01", 1)


class XDSSourceTests(unittest.TestCase):
    timeout = 30

    @defer.inlineCallbacks
    def setUp(self):
        directory = tempfile.mkdtemp(prefix="aiguillage-xds-source-")
        self.addCleanup(shutil.rmtree, directory)
        self.pki = make_pki(Path(directory))
        self.receiver = FakeDocumentReceiver()
        self.source = XDSSource("in", "hospital", {
            "port": 0, "tls_cert": self.pki["server_cert"], "tls_key": self.pki["server_key"],
            "tls_ca": self.pki["ca"]}, self.receiver, reactor)
        yield self.source.start()
        self.addCleanup(self.source.stop)
        self.url = f"https://127.0.0.1:{self.source.port}/xds/recipient"

    def destination(self, **options) -> XDSDestination:
        made = XDSDestination("hospital-out", "lab", 0, {
            "url": self.url, "source_id": SOURCE_ID, "metadata": METADATA, "tls_ca": self.pki["ca"],
            **options},
            reactor)
        self.addCleanup(made.stop)  # closes the connections it keeps
        return made

    @defer.inlineCallbacks
    def test_a_submission_over_mutual_tls_is_handed_over(self):
        """If a client with a certificate sends a CDA, then the receiver gets one ITI-41
        document: the submission with the CDA inline, described by its set, from https."""
        destination = self.destination(tls_cert=self.pki["client_cert"],
                                       tls_key=self.pki["client_key"])
        outcome = yield destination.send(lab_cda(), CONTEXT)
        self.assertIn(b"Success", outcome.response)
        [(channel, document, peer)] = self.receiver.documents
        read = read_payload(document.payload)
        entry = read.submission.documents[0]
        self.assertEqual((channel, document.message_type, peer.transport),
                         ("hospital", MESSAGE_TYPE, "https"))
        self.assertEqual(read.documents[entry.entry_uuid], lab_cda())
        self.assertEqual((document.control_id, document.sender, document.patient),
                         (read.submission.submission_set.unique_id, SOURCE_ID,
                          entry.patient_id))
        self.assertEqual(self.source.stats(), {"submissions_received": 1,
                                               "submissions_refused": 0})

    @defer.inlineCallbacks
    def test_a_failed_commit_is_a_receiver_fault_the_sender_retries(self):
        """If the receiver cannot commit, then the answer is a SOAP Receiver fault, which
        the xds destination judges retryable."""
        self.receiver.fail_with = RuntimeError("database is locked")
        destination = self.destination(tls_cert=self.pki["client_cert"],
                                       tls_key=self.pki["client_key"])
        with self.assertRaises(DeliveryFailed) as caught:
            yield destination.send(lab_cda(), CONTEXT)
        self.assertTrue(caught.exception.retryable)
        self.assertIn("Receiver fault: the submission could not be stored", caught.exception.reason)

    @defer.inlineCallbacks
    def test_a_client_without_a_certificate_is_refused(self):
        """If the client shows no certificate, then nothing is handed over and the delivery
        is retried (a transport failure)."""
        with self.assertRaises(DeliveryFailed) as caught:
            yield self.destination().send(lab_cda(), CONTEXT)
        self.assertTrue(caught.exception.retryable)
        self.assertEqual(self.receiver.documents, [])

    @defer.inlineCallbacks
    def test_listener_processes_share_the_port(self):
        """If two sources with reuse_port listen on one port, then both start."""
        first = XDSSource("a", "hospital", {"port": 0}, self.receiver, reactor)
        first.reuse_port = True
        yield first.start()
        self.addCleanup(first.stop)
        second = XDSSource("b", "hospital", {"port": first.port}, self.receiver, reactor)
        second.reuse_port = True
        yield second.start()
        self.addCleanup(second.stop)
        self.assertEqual(first.port, second.port)


@pytest.mark.parametrize("options,message", [
    ({"port": 0, "tls_cert": "/x.pem"}, "tls_cert and tls_key go together"),
    ({"port": 0, "tls_ca": "/ca.pem"}, "tls_ca needs tls_cert and tls_key"),
    ({"port": 0, "tls_cert": "/no/x.pem", "tls_key": "/no/x.key"}, "cannot load TLS files"),
    ({"port": 0, "max_body_size": 0}, "max_body_size must be more than 0"),
])
def test_bad_options_are_refused_naming_the_source(options, message):
    """If an option is wrong, then building the source says which."""
    with pytest.raises(ValueError, match=message) as caught:
        XDSSource("in", "hospital", options, None, reactor)
    assert str(caught.value).startswith('source "in" (xds)')
