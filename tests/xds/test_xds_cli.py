"""
``aiguillage xds`` against the built-in registry/repository over real HTTP on loopback.

The server is the usual XDS.b site (xds/server) answered by :class:`StoreXDSHandler` over
xds/registry on a real store (SQLite, then PostgreSQL). The commands' coroutines
(engine/cli/xds_calls.py) run in this process on trial's reactor; the command line itself
(engine/cli/xds.py, its exit codes and output) runs as ``python -m engine.cli.main`` in a
subprocess, against the same server.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml
from sqlalchemy import update
from twisted.internet import defer, reactor, threads
from twisted.trial import unittest

from engine.cli.common import EXIT_FAILED, EXIT_UNREACHABLE
from engine.cli.xds_calls import XDSCommandError, query, retrieve, submit
from engine.cli.xds_files import SubmitFileError, read_submissions
from engine.config.registries import RegistryConfig
from engine.store import migrate
from engine.store.store import make_engine
from tests.dbs import open_database
from tests.e2e.harness import PortReservation, REPO_ROOT
from tests import standards
from tests.xds.http_fixtures import listen, xds_site
from tests.xds.store_handler import REPOSITORY_UNIQUE_ID, StoreXDSHandler
from tests.xds.xdm_builders import DOCUMENT, bomb_zip, traversal_zip, xdm_zip
from xds.registry import tables
from xds.server.handler import XDSHandler

CDA_SAMPLE = "cda/examples/ans/LDL-SES_2022.01.xml"
CDA_PATIENT = "279035121518989^^^&1.2.250.1.213.1.4.10&ISO^NH"
XDM_PATIENT = "279035121518989^^^&1.2.250.1.213.1.4.10&ISO^NH"
CLASS_CODE = "10^^1.2.250.1.213.1.1.4.1"


def test_store_handler_matches_the_protocol():
    """If XDSHandler's methods change, then the store-backed handler must follow."""
    for name, method in inspect.getmembers(XDSHandler, inspect.isfunction):
        if not name.startswith("_"):
            assert list(inspect.signature(getattr(StoreXDSHandler, name)).parameters) == \
                list(inspect.signature(method).parameters), name


class XDSCommandTestsMixin:
    backend = "sqlite"
    timeout = 120

    @defer.inlineCallbacks
    def setUp(self):
        self.url = open_database(self, self.backend)
        self.engine = make_engine(self.url)
        self.addCleanup(self.engine.dispose)
        yield threads.deferToThread(migrate.ensure_current, self.engine)
        base = yield listen(self, xds_site(StoreXDSHandler(self.engine)))
        self.registry = RegistryConfig(
            "test", query_url=f"{base}/registry", submit_url=f"{base}/repository",
            retrieve_url=f"{base}/repository", repository_unique_id=REPOSITORY_UNIQUE_ID,
            source_id="1.2.250.1.999.8", class_code=CLASS_CODE, timeout=30)
        self.directory = Path(tempfile.mkdtemp(prefix="aiguillage-xds-cli-"))
        self.addCleanup(shutil.rmtree, self.directory, ignore_errors=True)

    def file(self, name: str, data: bytes) -> str:
        path = self.directory / name
        path.write_bytes(data)
        return str(path)

    def cda(self) -> bytes:
        return standards.sample(CDA_SAMPLE).read_bytes()

    @defer.inlineCallbacks
    def test_a_cda_is_submitted_found_and_retrieved_with_its_hash_checked(self):
        """If a CDA is submitted, then FindDocuments lists it with the header's uniqueId and
        type, and retrieve gives the same bytes, size and SHA-1 checked against the registry."""
        data = self.cda()
        submissions = read_submissions(self.file("ldl.xml", data), self.registry)
        [response] = yield defer.ensureDeferred(submit(reactor, self.registry, submissions))
        self.assertTrue(response.succeeded)
        _, documents = yield defer.ensureDeferred(
            query(reactor, self.registry, CDA_PATIENT, ["11490-0"]))
        [entry] = documents
        unique_id = submissions[0][0].documents[0].unique_id
        self.assertEqual((entry.unique_id, entry.type_code.code, entry.hash),
                         (unique_id, "11490-0", hashlib.sha1(data).hexdigest()))
        _, none = yield defer.ensureDeferred(
            query(reactor, self.registry, CDA_PATIENT, ["34133-9"]))
        self.assertEqual(none, [])
        found = yield defer.ensureDeferred(retrieve(reactor, self.registry, unique_id))
        self.addCleanup(getattr(found.content, "close", lambda: None))
        self.assertEqual(found.content.read_bytes(), data)
        self.assertEqual(found.checked, [f"size {len(data)}",
                                         f"SHA-1 {hashlib.sha1(data).hexdigest()}"])

    @defer.inlineCallbacks
    def test_an_xdm_zip_built_here_is_submitted_and_retrieved(self):
        path = self.file("IHE_XDM.ZIP", xdm_zip())
        submissions = read_submissions(path, self.registry)
        yield defer.ensureDeferred(submit(reactor, self.registry, submissions))
        _, documents = yield defer.ensureDeferred(
            query(reactor, self.registry, XDM_PATIENT, [], "all"))
        self.assertEqual([d.unique_id for d in documents], ["1.2.250.1.999.1.1"])
        found = yield defer.ensureDeferred(retrieve(reactor, self.registry, "1.2.250.1.999.1.1"))
        self.addCleanup(getattr(found.content, "close", lambda: None))
        self.assertEqual(found.content.read_bytes(), DOCUMENT)

    def test_hostile_zips_are_refused_before_any_connection(self):
        for name, data, message in (("traversal.zip", traversal_zip(), "points outside"),
                                    ("bomb.zip", bomb_zip(), "zip bomb")):
            with self.assertRaises(SubmitFileError) as caught:
                read_submissions(self.file(name, data), self.registry)
            self.assertIn("XDM package refused", str(caught.exception))
            self.assertIn(message, str(caught.exception))

    @defer.inlineCallbacks
    def test_a_duplicate_submission_is_refused_with_the_registry_error_code(self):
        """If the same CDA is submitted twice, then the second fails with exit 1 and the
        RegistryResponse's error code (XDSDuplicateUniqueIdInRegistry) in the sentence."""
        path = self.file("ldl.xml", self.cda())
        yield defer.ensureDeferred(submit(reactor, self.registry,
                                          read_submissions(path, self.registry)))
        with self.assertRaises(XDSCommandError) as caught:
            yield defer.ensureDeferred(submit(reactor, self.registry,
                                              read_submissions(path, self.registry)))
        self.assertEqual(caught.exception.exit_code, EXIT_FAILED)
        self.assertIn("Failure", caught.exception.text)
        self.assertIn("XDSDuplicateUniqueIdInRegistry", caught.exception.text)

    @defer.inlineCallbacks
    def test_a_tampered_document_is_refused_on_retrieval(self):
        """If the repository's bytes no longer match the registry's hash and size, then
        retrieve refuses the document, naming both values."""
        data = self.cda()
        submissions = read_submissions(self.file("ldl.xml", data), self.registry)
        yield defer.ensureDeferred(submit(reactor, self.registry, submissions))
        unique_id = submissions[0][0].documents[0].unique_id

        def tamper():
            with self.engine.begin() as conn:
                conn.execute(update(tables.documents).where(
                    tables.documents.c.unique_id == unique_id).values(content=data + b" "))

        yield threads.deferToThread(tamper)
        with self.assertRaises(XDSCommandError) as caught:
            yield defer.ensureDeferred(retrieve(reactor, self.registry, unique_id))
        self.assertIn(f"size {len(data) + 1} bytes, the registry says {len(data)}",
                      caught.exception.text)
        self.assertIn("SHA-1", caught.exception.text)

    @defer.inlineCallbacks
    def test_an_unknown_document_is_a_registry_error(self):
        with self.assertRaises(XDSCommandError) as caught:
            yield defer.ensureDeferred(retrieve(reactor, self.registry, "1.2.3.4.5"))
        self.assertIn("XDSDocumentUniqueIdError", caught.exception.text)

    @defer.inlineCallbacks
    def test_a_soap_fault_is_reported_with_its_code(self):
        """If the submit URL is an endpoint that does not take ITI-41, then the SOAP fault's
        code and reason are printed."""
        wrong = RegistryConfig("wrong", submit_url=self.registry.query_url,
                               source_id="1.2.250.1.999.8", class_code=CLASS_CODE)
        submissions = read_submissions(self.file("ldl.xml", self.cda()), wrong)
        with self.assertRaises(XDSCommandError) as caught:
            yield defer.ensureDeferred(submit(reactor, wrong, submissions))
        self.assertEqual(caught.exception.exit_code, EXIT_FAILED)
        self.assertIn("answered a SOAP fault: Sender", caught.exception.text)

    @defer.inlineCallbacks
    def test_a_registry_that_refuses_connections_is_unreachable(self):
        reservation = PortReservation()
        self.addCleanup(reservation.close)
        down = RegistryConfig("down", query_url=f"http://127.0.0.1:{reservation.port}/registry",
                              timeout=10)
        with self.assertRaises(XDSCommandError) as caught:
            yield defer.ensureDeferred(query(reactor, down, CDA_PATIENT, []))
        self.assertEqual(caught.exception.exit_code, EXIT_UNREACHABLE)
        self.assertIn("registry down: ITI-18 FindDocuments failed", caught.exception.text)
        self.assertIn("refused", caught.exception.text.lower())

    # -- the command line, in a subprocess ------------------------------------------------

    def config(self) -> str:
        registry = {k: v for k, v in self.registry.__dict__.items()
                    if k not in ("name", "tls_ca", "tls_cert", "tls_key", "max_response_bytes")
                    and v is not None}
        path = self.directory / "engine.yaml"
        path.write_text(yaml.safe_dump({"store": {"url": self.url},
                                        "registries": {"test": registry}}))
        return str(path)

    def cli(self, *args: str) -> defer.Deferred:
        def run():
            return subprocess.run([sys.executable, "-m", "engine.cli.main", "xds", *args,
                                   "--registry", "test", "--config", self.config()],
                                  cwd=REPO_ROOT, capture_output=True, timeout=120,
                                  env={**os.environ, "COLUMNS": "300"})

        return threads.deferToThread(run)

    @defer.inlineCallbacks
    def test_the_commands_end_to_end(self):
        """If a CDA is submitted, queried and retrieved with the commands, then each prints
        what it did and the retrieved file is the submitted one; a hostile zip is refused
        with exit 1 and a sentence naming the problem."""
        data = self.cda()
        done = yield self.cli("submit", self.file("ldl.xml", data))
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn(b"submitted to test: submission set 2.25.", done.stdout)
        done = yield self.cli("query", "--patient", CDA_PATIENT, "--json")
        [listed] = json.loads(done.stdout)
        self.assertEqual(listed["type_code"], "11490-0^^2.16.840.1.113883.6.1")
        table = yield self.cli("query", "--patient", CDA_PATIENT)
        self.assertIn(listed["unique_id"].encode(), table.stdout)
        output = self.directory / "out.xml"
        done = yield self.cli("retrieve", listed["unique_id"], "-o", str(output))
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(output.read_bytes(), data)
        self.assertIn(b"SHA-1", done.stderr)
        done = yield self.cli("submit", self.file("evil.zip", traversal_zip()))
        self.assertEqual(done.returncode, EXIT_FAILED)
        self.assertIn(b"XDM package refused: zip entry", done.stderr)
        self.assertIn(b"points outside the package", done.stderr)


class SQLiteXDSCommandTests(XDSCommandTestsMixin, unittest.TestCase):
    backend = "sqlite"


class PostgreSQLXDSCommandTests(XDSCommandTestsMixin, unittest.TestCase):
    backend = "postgresql"
