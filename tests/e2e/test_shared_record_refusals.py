"""Requests the served shared record refuses are answered with their fault or Failure
response AND stored, as messages in ERROR of the pseudo-channel ``shared_record`` that
``aiguillage messages list`` and ``messages show`` show: hostile XML, a broken MTOM body,
metadata errors, a submission the registry turns down, a body over the size limit."""
from __future__ import annotations

import json

from click.testing import CliRunner
from twisted.internet import defer, reactor
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread
from twisted.trial import unittest

from engine.cli.main import main
from engine.config.shared_record import REFUSALS_CHANNEL
from tests.e2e.shared_record_support import (
    SharedRecordCase, as_mtom, post, sample_pnr, with_hash,
)
from tests.xds.test_http_hostile import BILLION_LAUGHS
from xds.metadata import errors as codes
from xds.metadata.vocabulary import RESPONSE_FAILURE, RESPONSE_SUCCESS
from xds.soap.envelope import read_fault
from xds.soap.response import read_registry_response

LIMIT = 64 * 1024


class RefusalTests(SharedRecordCase):

    @defer.inlineCallbacks
    def setUp(self):
        super().setUp()
        yield self.serve(max_request_bytes=LIMIT, max_document_bytes=LIMIT)

    def cli(self, *args: str) -> defer.Deferred:
        """``aiguillage <args> --config <engine.yaml>`` in a thread; Deferred[its output]."""
        def run() -> bytes:
            result = CliRunner().invoke(main, [*args, "--config", self.config_path])
            assert result.exit_code == 0, result.output
            return result.stdout_bytes
        return deferToThread(run)

    @defer.inlineCallbacks
    def refusals(self, count: int = 1) -> list[dict]:
        """The stored refusals as ``messages list --json`` shows them, once *count* are
        there (a 413 is answered before its refusal is committed)."""
        for _ in range(100):
            rows = json.loads((yield self.cli("messages", "list", "--channel", REFUSALS_CHANNEL,
                                              "--status", "ERROR", "--json")))
            if len(rows) >= count:
                return rows
            yield deferLater(reactor, 0.05, lambda: None)
        self.fail(f"{count} refusal(s) expected, {len(rows)} stored")

    @defer.inlineCallbacks
    def stored_body(self, message_id: int) -> bytes:
        return (yield self.cli("messages", "show", str(message_id), "--raw"))

    def assert_from_loopback(self, row: dict) -> None:
        self.assertTrue(row["peer"].startswith("http://127.0.0.1:"), row["peer"])
        self.assertEqual(row["message_type"], "XDS.b")

    @defer.inlineCallbacks
    def test_entity_expansion_is_a_fault_and_stored(self):
        """If hostile XML were only logged, then the operator could not see who sent what."""
        answer = yield post(self.repository, BILLION_LAUGHS)
        self.assertEqual(answer.status, 400)
        self.assertIn("DTD", read_fault(answer.body).reason)
        [row] = yield self.refusals()
        self.assertIn("refused: SOAP Sender fault", row["error"])
        self.assertIn("DTD", row["error"])
        self.assert_from_loopback(row)
        self.assertEqual((yield self.stored_body(row["id"])), BILLION_LAUGHS)

    @defer.inlineCallbacks
    def test_broken_mtom_is_a_fault_and_stored_with_its_content_type(self):
        """If a MIME part that never ends were not stored, with the Content-Type that says
        its boundary, then the body could not be read again to see what was wrong."""
        content_type, body = as_mtom(sample_pnr(), closed=False)
        answer = yield post(self.repository, body, content_type)
        self.assertEqual(answer.status, 400)
        reason = read_fault(answer.body).reason
        [row] = yield self.refusals()
        self.assertIn(reason, row["error"])
        self.assertEqual((yield self.stored_body(row["id"])),
                         content_type.encode() + b"\r\n\r\n" + body)

    @defer.inlineCallbacks
    def test_metadata_errors_are_a_failure_and_stored_with_their_codes(self):
        """If a submission refused for its metadata were not kept, then it would be lost."""
        body = with_hash(sample_pnr(), "0" * 40)
        answer = yield post(self.repository, body)
        self.assertEqual(answer.status, 200)
        response = read_registry_response(answer.body)
        self.assertEqual(response.status, RESPONSE_FAILURE)
        self.assertEqual([e.error_code for e in response.errors],
                         [codes.REPOSITORY_METADATA_ERROR])
        [row] = yield self.refusals()
        self.assertIn(codes.REPOSITORY_METADATA_ERROR, row["error"])
        self.assertIn("does not match the document's SHA-1", row["error"])
        self.assertEqual((yield self.stored_body(row["id"])), body)

    @defer.inlineCallbacks
    def test_a_submission_the_registry_turns_down_is_stored(self):
        """If the registry's own refusal (a uniqueId it holds) were not stored, then the
        second copy would vanish; the first, accepted, is no refusal."""
        first = yield post(self.repository, sample_pnr())
        self.assertEqual(read_registry_response(first.body).status, RESPONSE_SUCCESS)
        again = yield post(self.repository, sample_pnr())
        response = read_registry_response(again.body)
        self.assertEqual(response.status, RESPONSE_FAILURE)
        [row] = yield self.refusals()
        self.assertIn(codes.DUPLICATE_UNIQUE_ID_IN_REGISTRY, row["error"])

    @defer.inlineCallbacks
    def test_a_body_over_the_limit_is_413_and_its_first_bytes_stored(self):
        """If an oversized request were stored whole, then a hostile peer could fill the
        disk; if not at all, then nothing would say it came."""
        body = sample_pnr() + b" " * (LIMIT * 2)
        answer = yield post(self.repository, body)
        self.assertEqual(answer.status, 413)
        [row] = yield self.refusals()
        self.assertIn("HTTP 413", row["error"])
        self.assertIn(f"over this endpoint's {LIMIT}-byte limit", row["error"])
        self.assertIn(f"announces {len(body)} bytes", row["error"])
        self.assertIn("nothing had arrived", row["error"])
        self.assertEqual((yield self.stored_body(row["id"])), b"")


class SQLiteRefusalTests(RefusalTests, unittest.TestCase):
    backend = "sqlite"


class PostgreSQLRefusalTests(RefusalTests, unittest.TestCase):
    backend = "postgresql"
