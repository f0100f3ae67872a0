"""Hostile input over the engine's own XDS.b listener, on SQLite and PostgreSQL: a DTD, an
external entity, a billion laughs, a MIME part that never ends, a document or a body over
the configured limits, a hash that does not match. Each is refused with a clear answer (a
SOAP fault, or a RegistryResponse error naming what), nothing is fetched or stored, and the
listener still serves the IHE sample afterwards. Then mutual TLS: a client without a
certificate the configured CA signed is refused before any request is read."""
from __future__ import annotations

import base64
import hashlib
import shutil
import tempfile
from pathlib import Path

from sqlalchemy import func, select
from twisted.internet import defer, protocol, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.trial import unittest
from twisted.web.client import Agent

from tests.e2e.shared_record_support import (
    SAMPLE_PATIENT, SharedRecordCase, as_mtom, post, sample_document, sample_pnr, with_hash,
)
from tests.mllp.test_tls import make_pki
from tests.xds.registry_support import adhoc_query
from tests.xds.test_registry_query import FIND_DOCUMENTS
from xds.metadata import errors as codes
from xds.metadata.vocabulary import ACTION_STORED_QUERY, RESPONSE_FAILURE, RESPONSE_SUCCESS
from xds.registry import tables
from xds.safexml import to_bytes
from xds.soap.envelope import request_envelope
from xds.soap.response import read_registry_response
from xds.tls import ClientTLSPolicy

LIMITS = {"max_document_bytes": "64KiB", "max_request_bytes": "256KiB"}
DOCTYPE = b"""<?xml version="1.0"?>
<!DOCTYPE Envelope [<!ELEMENT Envelope ANY>]>
"""
BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body>&lol3;</soap:Body>
</soap:Envelope>"""
EXTERNAL = """<?xml version="1.0"?>
<!DOCTYPE e [<!ENTITY x SYSTEM "http://127.0.0.1:{port}/secret">]>
<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body>&x;</soap:Body>
</soap:Envelope>"""


class _Bait(protocol.Protocol):
    def connectionMade(self):
        self.factory.connections.append(self)
        self.transport.loseConnection()


def stored_counts(conn) -> dict[str, int]:
    return {table.name: conn.execute(select(func.count()).select_from(table)).scalar()
            for table in [*tables.OBJECT_TABLES, tables.documents]}


class HostileCase(SharedRecordCase):

    @defer.inlineCallbacks
    def assert_refused_then_serving(self, answer, status: int, *words: str):
        """*answer* is a SOAP fault with *status* naming *words*; nothing was stored; the
        listener then answers a stored query and takes the IHE sample."""
        self.assertEqual(answer.status, status, answer.data[:400])
        fault = answer.fault
        self.assertIsNotNone(fault, answer.data[:400])
        answer.assert_valid("soap")  # the envelope, and the soap:Fault in its Body
        for word in words:
            self.assertIn(word, fault.reason)
        yield self.assert_nothing_stored_and_serving()

    @defer.inlineCallbacks
    def assert_nothing_stored_and_serving(self):
        counts = yield self.engine.store.read(stored_counts)
        self.assertEqual(set(counts.values()), {0}, counts)
        query = to_bytes(request_envelope(ACTION_STORED_QUERY, adhoc_query(FIND_DOCUMENTS, {
            "$XDSDocumentEntryPatientId": SAMPLE_PATIENT,
            "$XDSDocumentEntryStatus": ["urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"]}),
            self.registry))
        found = yield post(self.registry, query)
        found.assert_valid("query")
        self.assertEqual(found.body.get("status"), RESPONSE_SUCCESS)
        accepted = yield self.provide(sample_pnr())
        self.assertEqual((accepted.status, accepted.errors), (RESPONSE_SUCCESS, []))

    @defer.inlineCallbacks
    def test_a_dtd_is_refused(self):
        yield self.serve(**LIMITS)
        answer = yield post(self.repository, DOCTYPE + sample_pnr().split(b"?>", 1)[-1])
        yield self.assert_refused_then_serving(answer, 400, "DTD")

    @defer.inlineCallbacks
    def test_billion_laughs_is_refused(self):
        """If entities were expanded, then the fault would not name the DTD (or memory
        would run out)."""
        yield self.serve(**LIMITS)
        answer = yield post(self.registry, BILLION_LAUGHS)
        yield self.assert_refused_then_serving(answer, 400, "DTD")

    @defer.inlineCallbacks
    def test_external_entity_is_refused_and_not_fetched(self):
        """If the external entity were resolved, then the bait listener would see a
        connection."""
        factory = protocol.Factory.forProtocol(_Bait)
        factory.connections = []
        bait = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(bait.stopListening)
        yield self.serve(**LIMITS)
        answer = yield post(self.repository,
                            EXTERNAL.format(port=bait.getHost().port).encode())
        self.assertEqual(factory.connections, [])
        yield self.assert_refused_then_serving(answer, 400, "DTD")

    @defer.inlineCallbacks
    def test_mime_part_that_never_ends_is_refused(self):
        """If a body without its closing boundary were taken, then the sample would be
        stored from a truncated message."""
        yield self.serve(**LIMITS)
        content_type, body = as_mtom(sample_pnr(), closed=False)
        answer = yield post(self.repository, body, content_type)
        yield self.assert_refused_then_serving(answer, 400, "MTOM message refused")

    @defer.inlineCallbacks
    def test_mtom_document_over_the_limit_is_refused(self):
        """If max_document_bytes did not bound an MTOM part, then the 100 KiB document
        would be stored."""
        yield self.serve(**LIMITS)
        content_type, body = as_mtom(sample_pnr(), b"d" * 100 * 1024)
        answer = yield post(self.repository, body, content_type)
        yield self.assert_refused_then_serving(answer, 400, "65536-byte limit")

    @defer.inlineCallbacks
    def test_inline_document_over_the_limit_is_refused(self):
        """If max_document_bytes did not bound an inline document, then it would be decoded
        and stored; the fault names the Document and the limit."""
        yield self.serve(**LIMITS)
        envelope = sample_pnr().replace(
            base64.b64encode(sample_document()), base64.b64encode(b"i" * 100 * 1024))
        answer = yield post(self.repository, envelope)
        yield self.assert_refused_then_serving(answer, 400, "Document 'Document01'",
                                               "65536-byte limit")

    @defer.inlineCallbacks
    def test_body_over_the_request_limit_is_refused_with_413(self):
        """If max_request_bytes were checked after reading, then the answer would be no
        413 and the whole body would be read."""
        yield self.serve(**LIMITS)
        content_type, body = as_mtom(sample_pnr(), b"b" * 300 * 1024)
        answer = yield post(self.repository, body, content_type)
        yield self.assert_refused_then_serving(answer, 413, "262144-byte limit",
                                               "nothing was read")

    @defer.inlineCallbacks
    def test_mismatched_hash_is_refused_naming_it(self):
        """If the hash the source sent were not checked against the bytes, then the
        registry would publish a hash no retrieved document has."""
        yield self.serve(**LIMITS)
        wrong = hashlib.sha1(b"another document").hexdigest()
        content_type, body = as_mtom(with_hash(sample_pnr(), wrong))
        response = yield self.provide(body, content_type)
        self.assertEqual(response.status, RESPONSE_FAILURE)
        [error] = response.errors
        self.assertEqual(error.error_code, codes.REPOSITORY_METADATA_ERROR)
        self.assertIn(f"hash {wrong} does not match the document's SHA-1 "
                      f"{hashlib.sha1(sample_document()).hexdigest()}", error.code_context)
        yield self.assert_nothing_stored_and_serving()

    @defer.inlineCallbacks
    def test_stalled_request_does_not_stop_the_listener(self):
        """If a client that stops mid-body held the listener, then the next request would
        wait; it is served while the stalled one hangs."""
        yield self.serve(**LIMITS)
        stalled = yield TCP4ClientEndpoint(reactor, "127.0.0.1", self.engine.shared_record.port
                                           ).connect(protocol.Factory.forProtocol(
                                               protocol.Protocol))
        stalled.transport.write(b"POST /xds/repository HTTP/1.1\r\nHost: x\r\nContent-Type: "
                                b"application/soap+xml\r\nContent-Length: 100000\r\n\r\n<s:")
        self.addCleanup(stalled.transport.loseConnection)
        yield self.assert_nothing_stored_and_serving()


class SQLiteHostileTests(HostileCase, unittest.TestCase):
    timeout = 120
    backend = "sqlite"


class PostgreSQLHostileTests(HostileCase, unittest.TestCase):
    timeout = 120
    backend = "postgresql"


class MutualTLSTests(SharedRecordCase, unittest.TestCase):
    """The shared record behind mutual TLS (SQLite: TLS is the listener's, not the store's)."""

    timeout = 60
    backend = "sqlite"

    @defer.inlineCallbacks
    def serve_tls(self):
        directory = tempfile.mkdtemp(prefix="aiguillage-pki-")
        self.addCleanup(shutil.rmtree, directory, ignore_errors=True)
        self.pki = make_pki(Path(directory))
        yield self.serve(tls={"certificate": self.pki["server_cert"],
                              "key": self.pki["server_key"], "ca": self.pki["ca"],
                              "require_client_certificate": True})
        self.url = self.repository.replace("127.0.0.1", "localhost")
        self.assertTrue(self.url.startswith("https://localhost:"), self.url)

    def agent(self, **certificate) -> Agent:
        return Agent(reactor, contextFactory=ClientTLSPolicy(ca_path=self.pki["ca"],
                                                             **certificate))

    @defer.inlineCallbacks
    def test_client_with_a_certificate_is_served(self):
        """If the server did not present its certificate or verify the client's, then
        the handshake would fail and no Success come back."""
        yield self.serve_tls()
        agent = self.agent(cert_path=self.pki["client_cert"], key_path=self.pki["client_key"])
        answer = yield post(self.url, sample_pnr(), agent=agent)
        answer.assert_valid("rs")
        self.assertEqual(read_registry_response(answer.body).status, RESPONSE_SUCCESS)

    @defer.inlineCallbacks
    def test_client_without_a_certificate_is_refused(self):
        """If client certificates were optional, then this request would be stored."""
        yield self.serve_tls()
        yield self.assertFailure(post(self.url, sample_pnr(), agent=self.agent()), Exception)
        counts = yield self.engine.store.read(stored_counts)
        self.assertEqual(set(counts.values()), {0}, counts)
