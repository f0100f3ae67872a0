"""The shared record served by the real engine on loopback, on SQLite and PostgreSQL: the IHE
ITI-41 sample accepted inline and over MTOM, found by zeep (a SOAP client no one here wrote)
with ITI-18 stored queries, retrieved byte for byte with ITI-43 in both forms, every answer
valid against the official schemas, and counted by ``aiguillage status``."""
from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

from lxml import etree
from twisted.internet import defer
from twisted.internet.threads import deferToThread
from twisted.trial import unittest

from tests.e2e.harness import status_cli
from tests.e2e.shared_record_support import (
    REPOSITORY, SAMPLE_DOCUMENT_UNIQUE_ID, SharedRecordCase, SAMPLE_PATIENT, SAMPLE_SUBMISSION_SET_UNIQUE_ID,
    as_mtom, mtom_envelope, post, raw_objects, retrieved_document, sample_document,
    sample_pnr, sample_retrieve, zeep_query, zeep_registry,
)
from tests.standards import sample
from tests.xds.standards import assert_valid
from tests.xds.test_registry_query import (
    FIND_DOCUMENTS, FIND_SUBMISSION_SETS, GET_ASSOCIATIONS, GET_DOCUMENTS,
    GET_SUBMISSION_SET_AND_CONTENTS,
)
from xds.metadata import errors as codes
from xds.metadata.vocabulary import (
    ACTION_REGISTER, RESPONSE_FAILURE, RESPONSE_PARTIAL_SUCCESS, RESPONSE_SUCCESS,
)
from xds.namespaces import RIM, qname
from xds.soap.response import read_registry_response

APPROVED = "('urn:oasis:names:tc:ebxml-regrep:StatusType:Approved')"
SAMPLE_REGISTER = "xds/examples/ihe/RegisterDocumentSet-bRequest_SOAP.xml"


def slot_values(element: etree._Element, name: str) -> list[str]:
    return [value.text for slot in element.iterchildren(qname(RIM, "Slot"))
            if slot.get("name") == name for value in slot.iter(qname(RIM, "Value"))]


def external_id(element: etree._Element, name: str) -> str:
    for identifier in element.iterchildren(qname(RIM, "ExternalIdentifier")):
        if identifier.find(f"{qname(RIM, 'Name')}/{qname(RIM, 'LocalizedString')}").get(
                "value") == name:
            return identifier.get("value")
    return ""


class SharedRecordTests(SharedRecordCase):
    """The transactions of the shared record, as other vendors' clients send them."""

    @defer.inlineCallbacks
    def zeep(self):
        tmp = Path(tempfile.mkdtemp(prefix="aiguillage-zeep-"))
        self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
        service, self.captured = yield deferToThread(zeep_registry, tmp, self.registry)
        return service

    def query(self, service, query_id, **slots):
        """Deferred[zeep's answer] of one stored query, its envelope checked by schema."""
        def run():
            response = zeep_query(service, query_id, **slots)
            envelope = self.captured[-1]
            assert_valid("soap", envelope)
            assert_valid("query", envelope.find("{http://www.w3.org/2003/05/soap-envelope}"
                                                "Body")[0])
            return response
        return deferToThread(run)

    @defer.inlineCallbacks
    def assert_found_and_retrieved(self):
        """zeep finds the sample in four stored queries, and ITI-43 gives its bytes back in
        both forms, with the hash and size the registry reports."""
        data = sample_document()
        service = yield self.zeep()
        response = yield self.query(service, FIND_DOCUMENTS,
                                    XDSDocumentEntryPatientId=[f"'{SAMPLE_PATIENT}'"],
                                    XDSDocumentEntryStatus=[APPROVED])
        self.assertEqual(response.status, RESPONSE_SUCCESS)
        [(kind, entry)] = raw_objects(response)
        self.assertEqual(kind, "ExtrinsicObject")
        self.assertEqual(external_id(entry, "XDSDocumentEntry.uniqueId"),
                         SAMPLE_DOCUMENT_UNIQUE_ID)
        self.assertEqual((slot_values(entry, "hash"), slot_values(entry, "size"),
                          slot_values(entry, "repositoryUniqueId")),
                         ([hashlib.sha1(data).hexdigest()], [str(len(data))], [REPOSITORY]))
        entry_uuid = entry.get("id")
        self.assertTrue(entry_uuid.startswith("urn:uuid:"), entry_uuid)

        got = yield self.query(service, GET_DOCUMENTS,
                               XDSDocumentEntryUniqueId=[f"('{SAMPLE_DOCUMENT_UNIQUE_ID}')"])
        self.assertEqual([e.get("id") for _, e in raw_objects(got)], [entry_uuid])
        contents = yield self.query(
            service, GET_SUBMISSION_SET_AND_CONTENTS,
            XDSSubmissionSetUniqueId=[f"'{SAMPLE_SUBMISSION_SET_UNIQUE_ID}'"])
        kinds = sorted(kind for kind, _ in raw_objects(contents))
        # the Classification marks the RegistryPackage as a SubmissionSet
        self.assertEqual(kinds, ["Association", "Classification", "ExtrinsicObject",
                                 "RegistryPackage"])
        sets = yield self.query(service, FIND_SUBMISSION_SETS,
                                XDSSubmissionSetPatientId=[f"'{SAMPLE_PATIENT}'"],
                                XDSSubmissionSetStatus=[APPROVED])
        [package] = [e for kind, e in raw_objects(sets) if kind == "RegistryPackage"]
        self.assertEqual(external_id(package, "XDSSubmissionSet.uniqueId"),
                         SAMPLE_SUBMISSION_SET_UNIQUE_ID)
        associations = yield self.query(service, GET_ASSOCIATIONS, uuid=[f"('{entry_uuid}')"])
        [(kind, association)] = raw_objects(associations)
        self.assertEqual((kind, association.get("sourceObject"), association.get("targetObject")),
                         ("Association", package.get("id"), entry_uuid))

        inline = yield post(self.repository, sample_retrieve(SAMPLE_DOCUMENT_UNIQUE_ID))
        mtom = yield post(self.repository, *reversed(mtom_envelope(
            sample_retrieve(SAMPLE_DOCUMENT_UNIQUE_ID))))
        for answer, form in ((inline, "application/soap+xml"), (mtom, "multipart/related")):
            self.assertEqual((answer.status, answer.content_type.split(";")[0]), (200, form))
            answer.assert_valid("xdsb")
            self.assertEqual(read_registry_response(answer.body.find(
                "{urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0}RegistryResponse")).status,
                RESPONSE_SUCCESS)
            unique_id, retrieved = retrieved_document(answer)
            self.assertEqual((unique_id, hashlib.sha1(retrieved).hexdigest(), len(retrieved)),
                             (SAMPLE_DOCUMENT_UNIQUE_ID, slot_values(entry, "hash")[0],
                              int(slot_values(entry, "size")[0])))
        self.assertEqual(len(mtom.attachments), 1)

    @defer.inlineCallbacks
    def test_ihe_sample_inline_is_stored_found_and_retrieved(self):
        """If the engine misread the IHE envelope, stored it outside one transaction, or
        answered in a form others cannot read, then a step would fail here."""
        yield self.serve()
        response = yield self.provide(sample_pnr())
        self.assertEqual((response.status, response.errors), (RESPONSE_SUCCESS, []))
        yield self.assert_found_and_retrieved()

    @defer.inlineCallbacks
    def test_ihe_sample_over_mtom_is_stored_found_and_retrieved(self):
        """If the MTOM part were lost or altered, then the retrieved bytes would differ."""
        yield self.serve()
        content_type, body = as_mtom(sample_pnr())
        response = yield self.provide(body, content_type)
        self.assertEqual((response.status, response.errors), (RESPONSE_SUCCESS, []))
        yield self.assert_found_and_retrieved()

    @defer.inlineCallbacks
    def test_ihe_sample_as_published_is_stored_with_a_warning_on_its_source_id(self):
        """If the sample's sourceId (no OID) were an error, then a document IHE publishes as
        an example would be lost; it is stored, and the answer's warning names the value."""
        yield self.serve()
        response = yield self.provide(sample_pnr(keep_source_id=True))
        self.assertEqual(response.status, RESPONSE_SUCCESS)
        self.assertEqual([(e.error_code, e.is_error) for e in response.errors],
                         [(codes.REPOSITORY_METADATA_ERROR, False)])
        self.assertIn("sourceId '3670984664'", response.errors[0].code_context)
        answer = yield post(self.repository, sample_retrieve(SAMPLE_DOCUMENT_UNIQUE_ID))
        answer.assert_valid("xdsb")
        self.assertEqual(retrieved_document(answer),
                         (SAMPLE_DOCUMENT_UNIQUE_ID, sample_document()))

    @defer.inlineCallbacks
    def test_same_submission_twice_is_a_duplicate_and_retrieve_names_the_missing(self):
        """If uniqueIds were not checked against the registry, then the second would pass."""
        yield self.serve()
        first = yield self.provide(sample_pnr())
        self.assertEqual(first.status, RESPONSE_SUCCESS)
        second = yield self.provide(sample_pnr())
        self.assertEqual(second.status, RESPONSE_FAILURE)
        self.assertEqual({e.error_code for e in second.errors},
                         {codes.DUPLICATE_UNIQUE_ID_IN_REGISTRY})
        answer = yield post(self.repository, sample_retrieve(SAMPLE_DOCUMENT_UNIQUE_ID,
                                                             "1.2.250.1.999.404"))
        answer.assert_valid("xdsb")
        read = read_registry_response(answer.body[0])
        self.assertEqual((read.status, [e.error_code for e in read.errors]),
                         (RESPONSE_PARTIAL_SUCCESS, ["XDSDocumentUniqueIdError"]))
        self.assertIn("1.2.250.1.999.404", read.errors[0].code_context)

    @defer.inlineCallbacks
    def test_register_sample_needs_the_repository_attributes(self):
        """If ITI-42 were accepted without hash, size and repositoryUniqueId, then no
        consumer could retrieve the entry; with them added it is registered."""
        yield self.serve()
        data = sample(SAMPLE_REGISTER).read_bytes().replace(
            b'value="3670984664"', b'value="1.3.6.1.4.1.21367.2005.3.7"')
        refused = yield post(self.registry, data)
        refused.assert_valid("rs")
        read = read_registry_response(refused.body)
        self.assertEqual(read.status, RESPONSE_FAILURE)
        self.assertEqual(len(read.errors), 3)
        for error, name in zip(read.errors, ("hash", "size", "repositoryUniqueId")):
            self.assertIn(name, error.code_context)
        slots = b"".join(b'<rim:Slot name="%s"><rim:ValueList><rim:Value>%s</rim:Value>'
                         b"</rim:ValueList></rim:Slot>" % pair for pair in (
                             (b"hash", b"a" * 40), (b"size", b"10"),
                             (b"repositoryUniqueId", b"1.2.250.1.999.8")))
        opening = data.index(b">", data.index(b"<rim:ExtrinsicObject")) + 1
        accepted = yield post(self.registry, data[:opening] + slots + data[opening:])
        accepted.assert_valid("rs")
        self.assertEqual(read_registry_response(accepted.body).status, RESPONSE_SUCCESS)
        self.assertIn(ACTION_REGISTER, accepted.message.action)

    @defer.inlineCallbacks
    def test_concurrent_submissions_are_all_stored_and_a_race_is_a_duplicate(self):
        """If concurrent ITI-41s were not each one transaction, or the unique constraint's
        error escaped when two race for one uniqueId, then some would fail otherwise than
        with XDSDuplicateUniqueIdInRegistry, or be half-stored."""
        yield self.serve()

        def numbered(number: int) -> bytes:
            return sample_pnr().replace(b"2005.3.9999.32", b"2005.3.9999.32.%d" % number) \
                .replace(b"2005.3.9999.33", b"2005.3.9999.33.%d" % number)

        distinct = [self.provide(numbered(n)) for n in range(8)]
        racing = [self.provide(numbered(99)) for _ in range(2)]
        responses = yield defer.gatherResults(distinct + racing, consumeErrors=True)
        self.assertEqual([r.status for r in responses[:8]], [RESPONSE_SUCCESS] * 8)
        race = sorted((r.status, tuple(sorted({e.error_code for e in r.errors})))
                      for r in responses[8:])
        self.assertEqual(race, [(RESPONSE_FAILURE, (codes.DUPLICATE_UNIQUE_ID_IN_REGISTRY,)),
                                (RESPONSE_SUCCESS, ())])
        report = yield status_cli(self.config_path)
        self.assertEqual((report["shared_record"]["document_entries"],
                          report["shared_record"]["submission_sets"],
                          report["shared_record"]["documents"]), (9, 9, 9))

    @defer.inlineCallbacks
    def test_status_counts_the_shared_record(self):
        """If status did not read the registry's tables, then the counts would be absent."""
        yield self.serve()
        response = yield self.provide(sample_pnr())
        self.assertEqual(response.status, RESPONSE_SUCCESS)
        report = yield status_cli(self.config_path)
        self.assertEqual(report["shared_record"], {
            "document_entries": 1, "submission_sets": 1, "folders": 0, "documents": 1,
            "document_bytes": len(sample_document())})


class SQLiteSharedRecordTests(SharedRecordTests, unittest.TestCase):
    timeout = 180
    backend = "sqlite"


class PostgreSQLSharedRecordTests(SharedRecordTests, unittest.TestCase):
    timeout = 180
    backend = "postgresql"
