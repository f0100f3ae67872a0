"""
The XDS.b connectors end to end: two real engines on loopback, Aiguillage and the shared
record (an engine serving only its built-in registry/repository, ``shared_record:``), each on
its own database.

- an ORU^R01 sent over MLLP becomes a CDA (valid against the CDA schema) that the ``xds``
  destination submits to the registry, which then holds those very bytes;
- a hospital posts ITI-41 to the ``xds`` source, inline and MTOM: answered Success once
  stored, the submission reaches the registry with the document's bytes; the same submission
  again is a DUPLICATE, answered Success, not sent twice;
- a submission the source refuses is answered with the standard code and stored in ERROR;
- the registry answering Failure parks the delivery in ERROR with the code, at once;
- the registry down: the delivery is retried, then delivered once it listens.

Every test runs on SQLite and on PostgreSQL.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml
from lxml import etree
from sqlalchemy import select
from click.testing import CliRunner
from twisted.internet import defer, threads
from twisted.trial import unittest

from engine import status as st
from engine.cli.main import main
from engine.store import queries
from tests.dbs import open_database
from tests.e2e import harness as h
from tests.e2e.shared_record_support import (
    REPOSITORY, SAMPLE_DOCUMENT_UNIQUE_ID, SAMPLE_PATIENT, as_mtom, post, sample_document,
    sample_pnr, with_hash)
from tests.standards import standards_dir
from tests.xds.standards import assert_valid
from xds.metadata import errors as codes
from xds.metadata.vocabulary import RESPONSE_FAILURE, RESPONSE_SUCCESS
from xds.registry import tables
from xds.soap.response import read_registry_response
from xds.transforms.payload import read_payload

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
SOURCE_ID = "1.2.250.1.999.1.7"
FAST_RETRY = {"max_attempts": 30, "initial_delay": "200ms", "max_delay": "500ms"}
METADATA = {"class-code": {"code": "11", "scheme": "1.2.250.1.213.1.1.4.1",
                           "display": "Compte rendu"},
            "practice-setting-code": {"code": "LAB", "scheme": "1.2.250.1.213.1.1.4.9"},
            "healthcare-facility-code": {"code": "SA01", "scheme": "1.2.250.1.71.4.2.4"}}


def oru() -> bytes:
    return (SAMPLES / "oru" / "r01-biochemistry.hl7").read_bytes()


def registry_documents(conn) -> list[dict]:
    """Each document the shared record holds, with its entry's patient and class."""
    entries, documents = tables.document_entries, tables.documents
    query = select(documents.c.unique_id, documents.c.content, documents.c.hash,
                   entries.c.patient_id).join(
        entries, entries.c.unique_id == documents.c.unique_id)
    return [dict(row._mapping) for row in conn.execute(query)]


class XDSConnectorsCase(h.EngineCase):
    """Aiguillage (``self.engine``) in front of the shared record (``self.registry``)."""

    def write_configs(self, registry_port: int, dedupe: bool = True,
                      retry: dict = FAST_RETRY) -> str:
        """engine.yaml of Aiguillage: an ORU channel (MLLP, oru-to-cda) and a hospital
        channel (xds source), both to an xds destination at the registry; its path."""
        url = f"http://127.0.0.1:{registry_port}/xds/repository"
        destination = {"name": "dmp", "type": "xds", "url": url, "timeout": "10s",
                       "source_id": SOURCE_ID, "metadata": METADATA, "retry": retry}
        channels = {
            "lab": {"name": "lab", "dedupe": dedupe,
                    "source": {"type": "mllp", "host": "127.0.0.1", "port": 0},
                    "tables": {"lab-loinc": str(SAMPLES / "tables" / "lab-loinc.csv")},
                    "transform": {"name": "oru-to-cda", "loinc-table": "lab-loinc",
                                  "custodian-oid": "1.2.250.1.999.1"},
                    "destinations": [destination]},
            "hospital": {"name": "hospital",
                         "source": {"type": "xds", "host": "127.0.0.1", "port": 0},
                         "destinations": [dict(destination, mtom=False)]},
            "lab-chain": {"name": "lab-chain",
                          "source": {"type": "mllp", "host": "127.0.0.1", "port": 0},
                          "transform": {"name": "oru-to-cda"},
                          "destinations": [{"name": "next", "type": "channel",
                                            "channel": "to-dmp"}]},
            "to-dmp": {"name": "to-dmp", "source": {"type": "channel"},
                       "destinations": [destination]},
        }
        (self.directory / "channels").mkdir(exist_ok=True)
        for name, channel in channels.items():
            (self.directory / "channels" / f"{name}.yaml").write_text(yaml.safe_dump(channel))
        engine_yaml = {"node": "aiguillage", "store": {"url": self.store_url},
                       "channels": ["channels/*.yaml"], "log_level": "warning"}
        path = self.directory / "engine.yaml"
        path.write_text(yaml.safe_dump(engine_yaml))
        return str(path)

    @defer.inlineCallbacks
    def start_registry(self, port: int):
        """The shared record, on its own database, listening on ``port``."""
        directory = self.directory / "registry"
        directory.mkdir(exist_ok=True)
        config = {"node": "registry", "log_level": "warning", "channels": [],
                  "store": {"url": open_database(self, self.backend)},
                  "shared_record": {"listen": f"127.0.0.1:{port}",
                                    "repository_unique_id": REPOSITORY}}
        (directory / "engine.yaml").write_text(yaml.safe_dump(config))
        self.registry = yield h.start_engine(str(directory / "engine.yaml"))
        self.addCleanup(self.registry.stop)

    @defer.inlineCallbacks
    def start(self, *, registry_up: bool = True, dedupe: bool = True,
              retry: dict = FAST_RETRY):
        standards_dir()
        port = self.reserved_port()
        if registry_up:
            yield self.start_registry(port)
        self.registry_port = port
        self.config_path = self.write_configs(port, dedupe, retry)
        self.engine = yield h.start_engine(self.config_path)
        self.addCleanup(self.engine.stop)
        self.recipient = (f"http://127.0.0.1:{self.engine.source_port('hospital')}"
                          "/xds/recipient")

    def deliveries(self, channel: str) -> defer.Deferred:
        """Deferred[every delivery of ``channel``'s messages, oldest first]."""
        def read(conn):
            found = []
            for message in reversed(queries.list_messages(conn, channel=channel)):
                found.extend(queries.message_detail(conn, message["id"])["deliveries"])
            return found
        return self.engine.store.read(read)

    @defer.inlineCallbacks
    def wait_for_delivery(self, channel: str, status: str, count: int = 1):
        found = []

        @defer.inlineCallbacks
        def check():
            found[:] = [d for d in (yield self.deliveries(channel)) if d["status"] == status]
            return len(found) >= count
        yield h.wait_until(check, 30, f"{count} {channel} deliveries {status}")
        return found

    def held(self) -> defer.Deferred:
        return self.registry.store.read(registry_documents)

    # -- the tests ---------------------------------------------------------------------

    @defer.inlineCallbacks
    def test_an_oru_over_mllp_becomes_a_cda_in_the_registry(self):
        """If an ORU^R01 comes over MLLP to a channel with oru-to-cda and an xds
        destination, then the registry holds a schema-valid CDA of it, for the patient's
        local identifier, and the delivery keeps the RegistryResponse Success."""
        yield self.start()
        yield h.send_over(self.engine.source_port("lab"), [oru()])
        sent = yield self.wait_for_delivery("lab", st.SENT)
        self.assertIn(b"ResponseStatusType:Success", bytes(sent[0]["response"]))
        held = yield self.held()
        self.assertEqual(len(held), 1)
        document = bytes(held[0]["content"])
        assert_valid("cda", etree.fromstring(document))
        self.assertEqual(held[0]["patient_id"], "00451203^^^&1.2.250.1.999.1.1&ISO")
        self.assertEqual(held[0]["hash"], hashlib.sha1(document).hexdigest())
        self.assertIn("Hélène".encode(), document)

    @defer.inlineCallbacks
    def test_a_cda_handed_to_another_channel_reaches_the_registry(self):
        """If a channel makes the CDA and hands it to another channel (a ``channel``
        destination), then that channel stores it as a document and submits it."""
        yield self.start()
        yield h.send_over(self.engine.source_port("lab-chain"), [oru()])
        yield self.wait_for_delivery("to-dmp", st.SENT)
        stored = yield h.stored_messages(self.engine, channel="to-dmp")
        self.assertEqual([(m["status"], m["message_type"]) for m in stored],
                         [(st.TRANSFORMED, "document")])
        held = yield self.held()
        assert_valid("cda", etree.fromstring(bytes(held[0]["content"])))

    @defer.inlineCallbacks
    def hospital_posts(self, content_type: str, body: bytes, warned: bool = False):
        """A hospital's ITI-41 to the xds source: answered Success after the commit (with
        the warning that its sourceId is no OID when ``warned``), the sample's document then
        in the registry, byte for byte."""
        yield self.start()
        answer = yield post(self.recipient, body, content_type)
        self.assertEqual(answer.status, 200, answer.data[:300])
        answer.assert_valid("rs")
        response = read_registry_response(answer.body)
        self.assertEqual(response.status, RESPONSE_SUCCESS)
        expected = [(codes.REPOSITORY_METADATA_ERROR, False)] if warned else []
        self.assertEqual([(e.error_code, e.is_error) for e in response.errors], expected)
        if warned:
            self.assertIn("sourceId '3670984664' is not an OID", response.errors[0].code_context)
        stored = yield h.stored_messages(self.engine, channel="hospital")
        self.assertEqual([(m["status"], m["message_type"]) for m in stored],
                         [(st.TRANSFORMED, "ITI-41")])
        yield self.wait_for_delivery("hospital", st.SENT)
        held = yield self.held()
        self.assertEqual([(d["unique_id"], bytes(d["content"])) for d in held],
                         [(SAMPLE_DOCUMENT_UNIQUE_ID, sample_document())])
        return stored[0]

    @defer.inlineCallbacks
    def test_a_hospital_posts_inline_and_the_document_reaches_the_registry(self):
        """If a hospital posts the IHE ITI-41 sample inline, then it is stored as an ITI-41
        message whose payload is the submission, and the registry gets the document; the
        same submission again is a DUPLICATE answered Success, not sent twice."""
        message = yield self.hospital_posts("application/soap+xml", sample_pnr())
        detail = yield self.engine.store.read(queries.message_detail, message["id"])
        read = read_payload(bytes(detail["raw"]))
        self.assertEqual(read.submission.documents[0].unique_id, SAMPLE_DOCUMENT_UNIQUE_ID)
        again = yield post(self.recipient, sample_pnr())
        self.assertEqual(read_registry_response(again.body).status, RESPONSE_SUCCESS)
        stored = yield h.stored_messages(self.engine, channel="hospital")
        self.assertEqual([m["status"] for m in stored], [st.TRANSFORMED, st.DUPLICATE])

    @defer.inlineCallbacks
    def test_the_sample_as_published_is_stored_and_its_warning_answered(self):
        """If the endpoint's validation warnings were dropped, then the hospital would never
        learn that its sourceId ('3670984664') is no OID: the answer is Success carrying that
        warning, and the document still reaches the registry."""
        message = yield self.hospital_posts("application/soap+xml",
                                            sample_pnr(keep_source_id=True), warned=True)
        self.assertEqual(message["status"], st.TRANSFORMED)

    @defer.inlineCallbacks
    def test_a_hospital_posts_mtom_and_the_document_reaches_the_registry(self):
        """If a hospital posts the sample as MTOM, then the registry gets the document."""
        content_type, body = as_mtom(sample_pnr())
        yield self.hospital_posts(content_type, body)

    @defer.inlineCallbacks
    def test_an_invalid_submission_is_refused_with_its_code_and_stored_in_error(self):
        """If a hospital posts the sample with a hash that is not its document's, then the
        answer is a Failure with XDSRepositoryMetadataError, the request is stored in ERROR
        with that code, and nothing reaches the registry."""
        yield self.start()
        answer = yield post(self.recipient, with_hash(sample_pnr(), "0" * 40))
        response = read_registry_response(answer.body)
        self.assertEqual(response.status, RESPONSE_FAILURE)
        self.assertIn(codes.REPOSITORY_METADATA_ERROR, [e.error_code for e in response.errors])
        stored = yield h.stored_messages(self.engine, channel="hospital")
        self.assertEqual([m["status"] for m in stored], [st.ERROR])
        self.assertIn(codes.REPOSITORY_METADATA_ERROR, stored[0]["error"])
        self.assertEqual((yield self.held()), [])

    @defer.inlineCallbacks
    def test_a_registry_failure_parks_the_delivery_with_its_code(self):
        """If the registry answers Failure (the same document submitted twice), then the
        second delivery is ERROR at its first attempt, its error naming the code."""
        yield self.start(dedupe=False)
        yield h.send_over(self.engine.source_port("lab"), [oru()])
        yield self.wait_for_delivery("lab", st.SENT)
        yield h.send_over(self.engine.source_port("lab"), [oru()])
        failed = yield self.wait_for_delivery("lab", st.ERROR)
        self.assertEqual(failed[0]["attempts"], 1)
        self.assertIn(codes.DUPLICATE_UNIQUE_ID_IN_REGISTRY, failed[0]["last_error"])
        self.assertIn(b"ResponseStatusType:Failure", bytes(failed[0]["response"]))
        self.assertEqual(len((yield self.held())), 1)

    @defer.inlineCallbacks
    def test_a_registry_down_is_retried_then_delivered(self):
        """If the registry does not listen yet, then the delivery stays QUEUED, retried,
        and is SENT once the registry listens."""
        yield self.start(registry_up=False)
        yield h.send_over(self.engine.source_port("lab"), [oru()])
        queued = yield self.wait_for_delivery("lab", st.QUEUED)

        @defer.inlineCallbacks
        def retried():
            rows = yield self.deliveries("lab")
            return rows[0]["attempts"] >= 2 and rows[0]["status"] == st.QUEUED
        yield h.wait_until(retried, 30, "the delivery is retried")
        self.assertTrue(queued)
        yield self.start_registry(self.registry_port)
        sent = yield self.wait_for_delivery("lab", st.SENT)
        self.assertGreaterEqual(sent[0]["attempts"], 3)
        self.assertEqual(len((yield self.held())), 1)

    @defer.inlineCallbacks
    def parked_then_replayed(self, *replay_options: str):
        """The registry stays down past the retry budget: the hospital's submission is
        parked in ERROR; ``messages show`` prints it as the ITI-41 XML; the registry starts
        and ``messages replay`` (with ``replay_options``) delivers it. What replay said."""
        yield self.start(registry_up=False, retry={"max_attempts": 2, "initial_delay": "100ms"})
        answer = yield post(self.recipient, sample_pnr())
        self.assertEqual(read_registry_response(answer.body).status, RESPONSE_SUCCESS)
        yield self.wait_for_delivery("hospital", st.ERROR)
        message_id = (yield h.stored_messages(self.engine, channel="hospital"))[0]["id"]
        shown = yield threads.deferToThread(self.cli, "messages", "show", str(message_id))
        self.assertIn("ProvideAndRegisterDocumentSetRequest", shown)
        self.assertIn("ITI-41", shown)
        yield self.start_registry(self.registry_port)
        said = yield threads.deferToThread(self.cli, "messages", "replay", *replay_options,
                                           str(message_id))
        yield self.wait_for_delivery("hospital", st.SENT)
        held = yield self.held()
        self.assertEqual([bytes(d["content"]) for d in held], [sample_document()])
        return said

    @defer.inlineCallbacks
    def test_a_parked_submission_is_shown_and_replayed_with_the_cli(self):
        """If a parked submission is replayed, then its delivery is queued again and sent."""
        said = yield self.parked_then_replayed()
        self.assertIn("1 delivery(ies) queued again", said)

    @defer.inlineCallbacks
    def test_a_parked_submission_is_reprocessed_with_the_cli(self):
        """If a parked submission is reprocessed, then it is routed again (no MSH to read:
        it is recognised as a document) and its new delivery is sent."""
        said = yield self.parked_then_replayed("--reprocess")
        self.assertIn("set back to RECEIVED", said)
        stored = yield h.stored_messages(self.engine, channel="hospital")
        self.assertEqual([m["status"] for m in stored], [st.TRANSFORMED])

    @defer.inlineCallbacks
    def parked_then_opposed(self) -> Any:
        """A submission parked in ERROR (the registry down), then its patient's opposition
        recorded by an operator, then the registry up; the message's id."""
        yield self.start(registry_up=False, retry={"max_attempts": 2, "initial_delay": "100ms"})
        answer = yield post(self.recipient, sample_pnr())
        self.assertEqual(read_registry_response(answer.body).status, RESPONSE_SUCCESS)
        yield self.wait_for_delivery("hospital", st.ERROR)
        message_id = (yield h.stored_messages(self.engine, channel="hospital"))[0]["id"]
        said = yield threads.deferToThread(self.cli, "consent", "oppose", "--patient",
                                           SAMPLE_PATIENT, "--operator", "ana",
                                           "--reason", "asked at the desk")
        self.assertIn("opposed to shared-record", said)
        yield self.start_registry(self.registry_port)
        return message_id

    @defer.inlineCallbacks
    def test_a_replay_after_an_opposition_is_refused_with_the_reason(self):
        """If re-queuing a parked submission skipped the consent check of its first intake,
        then a patient who opposed since would have it sent to the shared record."""
        message_id = yield self.parked_then_opposed()
        result = yield threads.deferToThread(
            CliRunner().invoke, main, ["messages", "replay", "--config", self.config_path,
                                       str(message_id)], catch_exceptions=False)
        self.assertEqual(result.exit_code, 1, result.output)
        self.assertIn(f"message {message_id}: not queued again (dmp: consent: patient "
                      f"{SAMPLE_PATIENT} opposed to shared-record since", result.stderr)
        self.assertIn("operator:ana; asked at the desk", result.stderr)
        [delivery] = yield self.deliveries("hospital")
        self.assertEqual(delivery["status"], st.ERROR)
        detail = yield self.engine.store.read(queries.message_detail, message_id)
        self.assertIn(f"replay: not queued again: consent: patient {SAMPLE_PATIENT}",
                      " ".join(line.get("detail") or "" for line in detail["journal"]))
        self.assertEqual((yield self.held()), [])

    @defer.inlineCallbacks
    def test_a_reprocess_after_an_opposition_is_blocked_with_the_reason(self):
        """If a reprocessed submission were routed without its patient's consent, then it
        would reach the shared record: it is FILTERED, the reason on its journal."""
        message_id = yield self.parked_then_opposed()
        said = yield threads.deferToThread(self.cli, "messages", "replay", "--reprocess",
                                           str(message_id))
        self.assertIn("set back to RECEIVED", said)

        @defer.inlineCallbacks
        def decided():
            rows = yield h.stored_messages(self.engine, channel="hospital")
            return rows[0]["status"] == st.FILTERED
        yield h.wait_until(decided, 30, "the reprocessed submission is decided again")
        detail = yield self.engine.store.read(queries.message_detail, message_id)
        self.assertIn(f"dmp: consent: patient {SAMPLE_PATIENT} opposed to shared-record",
                      " ".join(line.get("detail") or "" for line in detail["journal"]))
        self.assertEqual((yield self.held()), [])

    def cli(self, *args: str) -> str:
        """What ``aiguillage ARGS --config …`` prints (it must exit 0)."""
        result = CliRunner().invoke(main, [*args[:2], "--config", self.config_path, *args[2:]],
                                    catch_exceptions=False)
        self.assertEqual(result.exit_code, 0, result.output)
        return result.output


class SQLiteXDSConnectorsTests(XDSConnectorsCase, unittest.TestCase):
    timeout = 180
    backend = "sqlite"


class PostgreSQLXDSConnectorsTests(XDSConnectorsCase, unittest.TestCase):
    timeout = 180
    backend = "postgresql"
