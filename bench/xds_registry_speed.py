"""
Speed of the built-in XDS.b registry/repository (xds/registry/) on SQLite.

1. ITI-41 submissions per second: each a ProvideAndRegister of one ~50 kB CDA as an MTOM
   message, taken from its bytes to the response envelope's bytes on the server side (MTOM
   read, envelope, metadata, validation, hash/size check, one transaction, RegistryResponse).
   The requests are built before the clock starts (that is the sender's work). With
   --group N, N submissions share one commit, each in its own savepoint (what a server that
   gathers concurrent requests would do: each still stored whole or not at all, each answered
   after the commit).
2. Stored query latency with --documents DocumentEntries in the registry (bulk-loaded in
   submissions of --per-patient documents, one patient each): p50/p95/max of each stored
   query, from the AdhocQueryRequest element to the response's bytes.

    .venv/bin/python bench/xds_registry_speed.py
    .venv/bin/python bench/xds_registry_speed.py --submissions 300 --documents 20000
"""
from __future__ import annotations

import argparse
import hashlib
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lxml import etree  # noqa: E402

from engine.store import migrate  # noqa: E402
from engine.store.store import make_engine  # noqa: E402
from xds.metadata.model import (  # noqa: E402
    Association, Author, Code, DocumentEntry, Submission, SubmissionSet,
)
from xds.metadata.vocabulary import ACTION_PNR, RPLC, response_action  # noqa: E402
from xds.namespaces import QUERY, RIM, qname, rim  # noqa: E402
from xds.registry import rows, tables  # noqa: E402
from xds.registry.query import stored_query  # noqa: E402
from xds.registry.register import provide_and_register  # noqa: E402
from xds.safexml import to_bytes  # noqa: E402
from xds.soap.documents import provide_and_register_request, read_provide_and_register  # noqa: E402
from xds.soap.envelope import envelope, parse_envelope, request_envelope  # noqa: E402
from xds.soap.mtom import read_mtom, write_mtom  # noqa: E402
from xds.soap.response import registry_response  # noqa: E402

REPOSITORY = "1.2.250.1.999.7.1"
APPROVED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
CLASS = Code("10", "1.2.250.1.213.1.1.4.1", "Compte rendu")


def patient(number: int) -> str:
    return f"{100000000 + number}^^^&1.2.250.1.213.1.4.10&ISO^NH"


def cda(number: int, size: int = 50_000) -> bytes:
    head = (f"<ClinicalDocument xmlns='urn:hl7-org:v3'><id root='1.2.250.1.999.1.{number}'/>"
            "<component><nonXMLBody><text>").encode()
    return head + b"x" * (size - len(head) - 40) + b"</text></nonXMLBody></component></ClinicalDocument>"


def entry(entry_uuid: str, unique_id: str, patient_id: str, data: bytes | None,
          creation: str) -> DocumentEntry:
    return DocumentEntry(
        entry_uuid=entry_uuid, unique_id=unique_id, patient_id=patient_id, mime_type="text/xml",
        title="Lettre de liaison", class_code=CLASS,
        type_code=Code("11490-0", "2.16.840.1.113883.6.1", "Lettre de liaison"),
        format_code=Code("urn:asip:ci-sis:ldl-ses:2017", "1.2.250.1.213.1.1.4.2.282"),
        healthcare_facility_type_code=Code("SA01", "1.2.250.1.71.4.2.4", "Public"),
        practice_setting_code=Code("ETABLISSEMENT", "1.2.250.1.213.1.1.4.9", "Etablissement"),
        confidentiality_codes=[Code("N", "2.16.840.1.113883.5.25", "Normal")],
        event_codes=[Code("IMP", "2.16.840.1.113883.5.4", "Hospitalisation")],
        authors=[Author(person="801234567897^DAVID^Charles^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS",
                        roles=["Médecin"])],
        creation_time=creation, service_start_time=creation, service_stop_time=creation,
        language_code="fr-FR", source_patient_id="IPP-7^^^&1.2.250.1.999&ISO",
        hash=hashlib.sha1(data).hexdigest() if data else "a" * 40,
        size=str(len(data)) if data else "50000", repository_unique_id=REPOSITORY)


def submission(number: int, patient_id: str, documents: list[DocumentEntry]) -> Submission:
    result = Submission(submission_sets=[SubmissionSet(
        "SubmissionSet01", unique_id=f"1.2.250.1.999.2.{number}", source_id="1.2.250.1.999",
        patient_id=patient_id, submission_time="20261206120000",
        content_type_code=Code("04", "1.2.250.1.213.2.2", "Hospitalisation"))],
        documents=documents)
    for index, document in enumerate(documents):
        result.associations.append(Association(
            f"as{index}", source="SubmissionSet01", target=document.entry_uuid,
            extra_slots={"SubmissionSetStatus": ["Original"]}))
    return result


def pnr_message(number: int) -> tuple[str, bytes]:
    data = cda(number)
    document = entry("Document01", f"1.2.250.1.999.1.{number}", patient(number % 1000), data,
                     "20261206120000")
    body, parts = provide_and_register_request(submission(number, document.patient_id,
                                                          [document]), {"Document01": data})
    content_type, chunks = write_mtom(to_bytes(request_envelope(ACTION_PNR, body, "http://x")),
                                      parts, ACTION_PNR)
    return content_type, b"".join(chunks)


def serve_pnr(conn, content_type: str, body: bytes) -> bytes:
    """What a server does with one ITI-41 request, to its response bytes."""
    package = read_mtom(content_type, body)
    request = parse_envelope(package.root)
    read, documents = read_provide_and_register(request.body, package.attachments)
    errors = provide_and_register(conn, read, documents, REPOSITORY)
    package.close()
    if any(error.is_error for error in errors):
        raise SystemExit(f"submission refused: {errors}")
    return to_bytes(envelope(response_action(ACTION_PNR), registry_response(errors),
                             relates_to=request.message_id))


def bench_submissions(directory: Path, count: int, synchronous: str, group: int) -> None:
    engine = make_engine(f"sqlite:///{directory / 'pnr.db'}", sqlite_synchronous=synchronous)
    migrate.ensure_current(engine)
    messages = [pnr_message(number) for number in range(count)]
    with engine.connect() as conn:
        serve_pnr(conn, *pnr_message(10**9))          # warm-up: compiled statements, caches
        started, cpu = time.perf_counter(), time.process_time()
        for start in range(0, count, group):
            if group == 1:
                serve_pnr(conn, *messages[start])   # its own transaction
                continue
            with conn.begin():      # one commit for the group; a savepoint per submission
                for content_type, body in messages[start:start + group]:
                    serve_pnr(conn, content_type, body)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    engine.dispose()
    print(f"ITI-41, {count} submissions of one {len(cda(0)) // 1000} kB CDA, SQLite "
          f"synchronous={synchronous}, {group} per commit: {count / wall:.0f} submissions/s "
          f"({wall / count * 1000:.2f} ms each, {cpu / count * 1000:.2f} ms CPU)")


def bulk_load(conn, documents: int, per_patient: int) -> None:
    """Registry rows for documents/per_patient patients, inserted in large batches."""
    batch: dict = {table: [] for table in tables.OBJECT_TABLES + (tables.document_values,)}
    for number in range(documents // per_patient):
        entries = [entry(f"D{index}", f"1.2.250.1.999.1.{number}.{index}", patient(number), None,
                         f"2026{1 + index % 12:02d}{1 + index % 28:02d}120000")
                   for index in range(per_patient)]
        stored, _ = rows.assign_uuids(submission(number, patient(number), entries))
        batch[tables.submission_sets] += [rows.submission_set_row(s) for s in stored.submission_sets]
        batch[tables.document_entries] += [rows.document_row(d) for d in stored.documents]
        batch[tables.document_values] += [v for d in stored.documents
                                          for v in rows.document_value_rows(d)]
        batch[tables.associations] += [rows.association_row(a) for a in stored.associations]
        if len(batch[tables.document_entries]) >= 5000 or number == documents // per_patient - 1:
            with conn.begin():
                for table, items in batch.items():
                    if items:
                        conn.execute(table.insert(), items)
                    items.clear()


def adhoc(query_id: str, parameters: dict[str, str], return_type: str = "LeafClass"):
    request = etree.Element(qname(QUERY, "AdhocQueryRequest"), nsmap={"query": QUERY, "rim": RIM})
    etree.SubElement(request, qname(QUERY, "ResponseOption"), returnType=return_type)
    query = etree.SubElement(request, rim("AdhocQuery"), id=query_id)
    for name, value in parameters.items():
        slot = etree.SubElement(query, rim("Slot"), name=name)
        etree.SubElement(etree.SubElement(slot, rim("ValueList")), rim("Value")).text = value
    return request


def query_kinds(conn, patients: int, per_patient: int):
    """Each measured query as a function of a random patient number -> request."""
    def find(number, return_type="LeafClass", **extra):
        return adhoc("urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d", {
            "$XDSDocumentEntryPatientId": f"'{patient(number)}'",
            "$XDSDocumentEntryStatus": f"('{APPROVED}')", **extra}, return_type)

    def uuid_of(number):
        table = tables.document_entries
        return conn.execute(table.select().with_only_columns(table.c.entry_uuid).where(
            table.c.unique_id == f"1.2.250.1.999.1.{number}.0")).scalar_one()

    return {
        "FindDocuments LeafClass": lambda n: find(n),
        "FindDocuments ObjectRef": lambda n: find(n, "ObjectRef"),
        "FindDocuments classCode+time": lambda n: find(n, **{
            "$XDSDocumentEntryClassCode": "('10^^1.2.250.1.213.1.1.4.1')",
            "$XDSDocumentEntryCreationTimeFrom": "'20260601'",
            "$XDSDocumentEntryEventCodeList": "('IMP^^2.16.840.1.113883.5.4')"}),
        "FindSubmissionSets": lambda n: adhoc("urn:uuid:f26abbcb-ac74-4422-8a30-edb644bbc1a9", {
            "$XDSSubmissionSetPatientId": f"'{patient(n)}'",
            "$XDSSubmissionSetStatus": f"('{APPROVED}')"}),
        "GetDocuments": lambda n: adhoc("urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4", {
            "$XDSDocumentEntryUniqueId": f"('1.2.250.1.999.1.{n}.0')"}),
        "GetAssociations": lambda n: adhoc("urn:uuid:a7ae438b-4bc2-4642-93e9-be891f7bb155", {
            "$uuid": f"('{uuid_of(n)}')"}),
        "GetSubmissionSetAndContents": lambda n: adhoc(
            "urn:uuid:e8e3cb2c-e39c-46b9-99e4-c12f57260b83",
            {"$XDSSubmissionSetUniqueId": f"'1.2.250.1.999.2.{n}'"}),
        "GetRelatedDocuments": lambda n: adhoc("urn:uuid:d90e5407-b356-4d91-a89f-873917b4b0e6", {
            "$XDSDocumentEntryEntryUUID": f"'{uuid_of(n)}'", "$AssociationTypes": f"('{RPLC}')"}),
    }


def percentile(values: list[float], rank: int) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * rank / 100) - 1)]


def bench_queries(database: Path, documents: int, per_patient: int, runs: int) -> None:
    """Bulk-load *database* unless it already exists (--database keeps it between runs)."""
    fresh = not database.exists()
    engine = make_engine(f"sqlite:///{database}", sqlite_synchronous="NORMAL")
    migrate.ensure_current(engine)
    started = time.perf_counter()
    if fresh:
        with engine.connect() as conn:
            bulk_load(conn, documents, per_patient)
    print(f"bulk load of {documents} DocumentEntries ({documents // per_patient} patients x "
          f"{per_patient}) in {time.perf_counter() - started:.1f} s" if fresh else
          f"reusing {database} ({documents} DocumentEntries)")
    patients = documents // per_patient
    randomly = random.Random(1)
    with engine.connect() as conn:
        for name, build in query_kinds(conn, patients, per_patient).items():
            requests = [build(randomly.randrange(patients)) for _ in range(runs)]
            walls, cpus = [], []
            for request in requests:
                begun, cpu = time.perf_counter(), time.thread_time()
                response = to_bytes(stored_query(conn, request))
                walls.append((time.perf_counter() - begun) * 1000)
                cpus.append((time.thread_time() - cpu) * 1000)
                conn.rollback()
            assert b"ResponseStatusType:Success" in response, response[:500]
            print(f"  {name:30} wall p50 {percentile(walls, 50):6.2f} p95 "
                  f"{percentile(walls, 95):6.2f} max {max(walls):6.2f} ms | CPU p50 "
                  f"{percentile(cpus, 50):6.2f} p95 {percentile(cpus, 95):6.2f} ms")
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submissions", type=int, default=1000)
    parser.add_argument("--synchronous", choices=("FULL", "NORMAL"), default="FULL")
    parser.add_argument("--group", type=int, default=1, help="submissions per commit")
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--per-patient", type=int, default=20)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--database", type=Path, help="keep the query database there, reuse it")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="xds-bench-") as directory:
        if options.submissions:
            bench_submissions(Path(directory), options.submissions, options.synchronous,
                              options.group)
        if options.documents:
            bench_queries(options.database or Path(directory) / "query.db", options.documents,
                          options.per_patient, options.runs)


if __name__ == "__main__":
    main()
