"""The built-in registry's ITI-42 and ITI-41 sides, on SQLite and PostgreSQL: the IHE samples
stored, duplicates, patient mismatches, RPLC and deprecation, each submission whole or not at
all."""
from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest
from sqlalchemy import func, select

from tests.xds import builders
from tests.xds.registry_support import (
    PNR_SAMPLES, REGISTER_SAMPLES, REPOSITORY, fixed, pnr_sample, replacement, sample_body,
)
from xds.metadata import errors as codes
from xds.metadata.model import Association
from xds.metadata.reading import read_submission
from xds.metadata.vocabulary import STATUS_APPROVED, STATUS_DEPRECATED
from xds.registry import tables
from xds.registry.register import deprecate_documents, provide_and_register, register
from xds.registry.rows import is_uuid
from xds.soap.documents import InlineDocument


def codes_of(errors) -> list[str]:
    return [error.error_code for error in errors]


def counts(conn) -> dict[str, int]:
    return {table.name: conn.execute(select(func.count()).select_from(table)).scalar()
            for table in [*tables.OBJECT_TABLES, tables.documents]}


def entry(conn, unique_id: str):
    table = tables.document_entries
    return conn.execute(select(table).where(table.c.unique_id == unique_id)).one()


def provide(conn, submission=None, data=builders.DOCUMENT_BYTES):
    submission = submission or builders.submission()
    documents = {d.entry_uuid: InlineDocument(data) for d in submission.documents}
    return provide_and_register(conn, submission, documents, REPOSITORY)


@pytest.mark.parametrize("relative", PNR_SAMPLES)
def test_ihe_pnr_sample_is_stored_with_its_bytes(registry_engine, relative):
    """If the IHE ITI-41 sample (its sourceId fixed) is provided, then its metadata is
    registered under urn:uuid ids, completed by the repository, and its bytes are kept."""
    submission, documents = pnr_sample(relative)
    with registry_engine.connect() as conn:
        assert provide_and_register(conn, fixed(submission), documents, REPOSITORY) == []
        unique_id = submission.documents[0].unique_id
        row = entry(conn, unique_id)
        data = documents["Document01"].read_bytes()
        assert (row.status, row.repository_unique_id, row.size, row.hash) == (
            STATUS_APPROVED, REPOSITORY, len(data), hashlib.sha1(data).hexdigest())
        assert is_uuid(row.entry_uuid) and row.patient_id == submission.documents[0].patient_id
        stored = conn.execute(select(tables.documents.c.content)).scalar_one()
        assert bytes(stored) == data
        association = conn.execute(select(tables.associations)).one()
        assert association.target == row.entry_uuid and is_uuid(association.source)
        assert counts(conn) == {"xds_submission_sets": 1, "xds_document_entries": 1,
                                "xds_folders": 0, "xds_associations": 1, "xds_documents": 1}


@pytest.mark.parametrize("relative", REGISTER_SAMPLES)
def test_ihe_register_sample_is_registered(registry_engine, relative):
    """If the IHE ITI-42 sample (its sourceId fixed) is registered, then it is refused for
    lacking the three attributes a Repository adds; with them, its entry is there, no bytes."""
    submission = fixed(read_submission(sample_body(relative)))
    with registry_engine.connect() as conn:
        errors = register(conn, submission)
        assert [e.code_context.split(": ")[1].split()[0] for e in errors] == [
            "hash", "size", "repositoryUniqueId"]
        submission.documents[0] = replace(submission.documents[0], hash="a" * 40, size="10",
                                          repository_unique_id=REPOSITORY)
        assert register(conn, submission) == []
        row = entry(conn, submission.documents[0].unique_id)
        assert (row.repository_unique_id, row.hash, row.size) == (REPOSITORY, "a" * 40, 10)
        assert counts(conn)["xds_documents"] == 0


def test_sample_as_sent_is_stored_with_a_warning_naming_its_source_id(registry_engine):
    """If the IHE sample is provided as published (its sourceId '3670984664' is no OID),
    then it is stored, and the answer's one finding is a warning naming the value."""
    submission, documents = pnr_sample(PNR_SAMPLES[0])
    with registry_engine.connect() as conn:
        errors = provide_and_register(conn, submission, documents, REPOSITORY)
        assert [(e.error_code, e.is_error) for e in errors] == [
            (codes.REGISTRY_METADATA_ERROR, False)]
        assert "sourceId '3670984664' is not an OID" in errors[0].code_context
        assert counts(conn)["xds_document_entries"] == 1
        assert entry(conn, submission.documents[0].unique_id).status == STATUS_APPROVED


def test_same_submission_twice_is_a_duplicate(registry_engine):
    """If a submission is provided twice, then the second is XDSDuplicateUniqueIdInRegistry."""
    with registry_engine.connect() as conn:
        assert provide(conn) == []
        assert codes_of(provide(conn)) == [codes.DUPLICATE_UNIQUE_ID_IN_REGISTRY]
        assert counts(conn)["xds_document_entries"] == 1


def test_reused_document_unique_id(registry_engine):
    """If a new SubmissionSet carries a registered document uniqueId, then it is refused:
    XDSDuplicateUniqueIdInRegistry for the same bytes, XDSNonIdenticalHash for others."""
    with registry_engine.connect() as conn:
        assert provide(conn) == []
        again = builders.submission()
        again.submission_sets[0].unique_id += ".2"
        assert codes_of(provide(conn, again)) == [codes.DUPLICATE_UNIQUE_ID_IN_REGISTRY]
        other = builders.submission()
        other.submission_sets[0].unique_id += ".3"
        other.documents[0] = builders.document_entry(data=b"other bytes")
        assert codes_of(provide(conn, other, b"other bytes")) == [codes.NON_IDENTICAL_HASH]
        assert counts(conn)["xds_submission_sets"] == 1


def test_patient_id_mismatch_is_refused(registry_engine):
    """If a DocumentEntry's patientId is not the SubmissionSet's, then the answer is
    XDSPatientIdDoesNotMatch and nothing is stored."""
    submission = builders.submission()
    submission.documents[0].patient_id = "999^^^&1.2.250.1.213.1.4.10&ISO^NH"
    with registry_engine.connect() as conn:
        assert codes_of(provide(conn, submission)) == [codes.PATIENT_ID_DOES_NOT_MATCH]
        assert set(counts(conn).values()) == {0}


def test_hash_mismatch_is_refused_before_storing(registry_engine):
    """If the bytes do not match the entry's hash, then nothing is stored."""
    with registry_engine.connect() as conn:
        errors = provide(conn, data=b"tampered")
        assert codes.REPOSITORY_METADATA_ERROR in codes_of(errors)
        assert set(counts(conn).values()) == {0}


def test_rplc_deprecates_the_replaced_entry(registry_engine):
    """If a new document replaces a registered one (RPLC), then the old entry is Deprecated,
    the new one Approved, and the RPLC association is kept."""
    with registry_engine.connect() as conn:
        original = builders.submission()
        assert provide(conn, original) == []
        old = entry(conn, original.documents[0].unique_id).entry_uuid
        assert provide(conn, replacement(original, old)) == []
        assert entry(conn, original.documents[0].unique_id).status == STATUS_DEPRECATED
        assert entry(conn, original.documents[0].unique_id + ".2").status == STATUS_APPROVED
        targets = conn.execute(select(tables.associations.c.target)).scalars().all()
        assert old in targets


def test_rplc_of_a_deprecated_entry_is_refused(registry_engine):
    """If an entry already replaced is replaced again, then the answer is
    XDSRegistryDeprecatedDocumentError and the second replacement is not stored."""
    with registry_engine.connect() as conn:
        original = builders.submission()
        assert provide(conn, original) == []
        old = entry(conn, original.documents[0].unique_id).entry_uuid
        assert provide(conn, replacement(original, old)) == []
        errors = provide(conn, replacement(original, old, number=3))
        assert codes_of(errors) == [codes.REGISTRY_DEPRECATED_DOCUMENT_ERROR]
        assert counts(conn)["xds_document_entries"] == 2


def test_rplc_across_patients_and_of_unknown_entries(registry_engine):
    """If an RPLC targets another patient's entry, then XDSPatientIdDoesNotMatch; if it
    targets no registry object, then UnresolvedReferenceException; nothing is stored."""
    with registry_engine.connect() as conn:
        original = builders.submission()
        assert provide(conn, original) == []
        old = entry(conn, original.documents[0].unique_id).entry_uuid
        other_patient = replacement(original, old)
        patient = "111^^^&1.2.250.1.213.1.4.10&ISO^NH"
        other_patient.submission_sets[0].patient_id = patient
        other_patient.documents[0].patient_id = patient
        assert codes_of(provide(conn, other_patient)) == [codes.PATIENT_ID_DOES_NOT_MATCH]
        unknown = replacement(original, "urn:uuid:00000000-0000-4000-8000-000000000999")
        assert codes_of(provide(conn, unknown)) == [codes.UNRESOLVED_REFERENCE]
        assert counts(conn)["xds_document_entries"] == 1
        assert entry(conn, original.documents[0].unique_id).status == STATUS_APPROVED


def test_deprecate_documents(registry_engine):
    """If an Approved entry is deprecated, then its status changes once, and a second call
    changes nothing."""
    with registry_engine.connect() as conn:
        assert provide(conn) == []
        uuid = entry(conn, builders.submission().documents[0].unique_id).entry_uuid
        assert deprecate_documents(conn, [uuid]) == 1
        assert deprecate_documents(conn, [uuid]) == 0
        assert entry(conn, builders.submission().documents[0].unique_id).status == (
            STATUS_DEPRECATED)


def test_register_needs_repository_attributes(registry_engine):
    """If an ITI-42 submission lacks repositoryUniqueId, then it is XDSRegistryMetadataError;
    with it, it is registered."""
    submission = builders.submission()
    with registry_engine.connect() as conn:
        assert codes_of(register(conn, submission)) == [codes.REGISTRY_METADATA_ERROR]
        submission.documents[0] = replace(submission.documents[0],
                                          repository_unique_id=REPOSITORY)
        assert register(conn, submission) == []


def test_unique_id_taken_meanwhile_is_a_duplicate(registry_engine, monkeypatch):
    """If another submission registers a document uniqueId between our check and our insert
    (the check is skipped here to stand for that), then the unique index refuses it: the
    answer is XDSDuplicateUniqueIdInRegistry and nothing of the second submission is kept."""
    from xds.registry import register as module
    with registry_engine.connect() as conn:
        assert provide(conn) == []
        monkeypatch.setattr(module, "_duplicate_documents", lambda conn, submission: [])
        again = builders.submission()
        again.submission_sets[0].unique_id += ".2"
        errors = provide(conn, again)
        assert codes_of(errors) == [codes.DUPLICATE_UNIQUE_ID_IN_REGISTRY]
        assert "meanwhile" in errors[0].code_context
        assert counts(conn) == {"xds_submission_sets": 1, "xds_document_entries": 1,
                                "xds_folders": 0, "xds_associations": 1, "xds_documents": 1}


def test_reference_to_another_patients_entry_is_refused(registry_engine):
    """If a SubmissionSet takes in (HasMember, Reference) a registered entry of another
    patient, then XDSPatientIdDoesNotMatch; of its own patient, it is registered."""
    with registry_engine.connect() as conn:
        assert provide(conn) == []
        registered = entry(conn, builders.submission().documents[0].unique_id).entry_uuid
        for number, patient, expected in ((2, "111^^^&1.2.250.1.213.1.4.10&ISO^NH",
                                           [codes.PATIENT_ID_DOES_NOT_MATCH]),
                                          (3, builders.PATIENT, [])):
            reference = builders.submission(documents=0)
            reference.submission_sets[0].unique_id += f".{number}"
            reference.submission_sets[0].patient_id = patient
            reference.associations.append(Association(
                "as01", source="SubmissionSet01", target=registered,
                extra_slots={"SubmissionSetStatus": ["Reference"]}))
            assert codes_of(register(conn, reference)) == expected
        assert counts(conn)["xds_submission_sets"] == 2


def test_inside_the_callers_transaction_nothing_is_kept_on_its_rollback(registry_engine):
    """If a submission stored inside the caller's transaction were committed by its own
    savepoint (the sqlite3 driver begins no transaction before a SAVEPOINT), then it would
    survive the caller's rollback; a refused one inside it leaves the caller's work alone."""
    with registry_engine.connect() as conn:
        with conn.begin() as outer:
            assert provide(conn) == []
            assert codes_of(provide(conn)) == [codes.DUPLICATE_UNIQUE_ID_IN_REGISTRY]
            assert counts(conn)["xds_document_entries"] == 1
            outer.rollback()
        assert counts(conn) == {"xds_submission_sets": 0, "xds_document_entries": 0,
                                "xds_folders": 0, "xds_associations": 0, "xds_documents": 0}
