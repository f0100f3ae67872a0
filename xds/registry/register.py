"""
Registering a submission (ITI-42 semantics) in the built-in registry, and
providing and registering one (ITI-41): the documents' bytes go to the
repository table in the same transaction as their metadata.

What validation cannot know without the registry is checked here: uniqueIds
already registered (``XDSDuplicateUniqueIdInRegistry``, or
``XDSNonIdenticalHash``/``Size`` for a document), association ends naming
registry objects that do not exist (``UnresolvedReferenceException``), and
the targets of RPLC, XFRM, APND, XFRM_RPLC and signs, which must be Approved
(``XDSRegistryDeprecatedDocumentError``) DocumentEntries of the same patient
(``XDSPatientIdDoesNotMatch``). An accepted RPLC or XFRM_RPLC deprecates the
replaced entry. ITI-41/42 have no partial success: a submission is stored
whole, in one transaction, or not at all.

The functions take a SQLAlchemy connection and run synchronously, in one of
the store's threads. On a connection outside a transaction each call is its
own transaction, committed when it returns; inside the caller's transaction
it is a savepoint, kept or rolled back whole, committed with the caller's.

test-case-name: tests.xds.test_registry_register
"""
from __future__ import annotations

from typing import Any, Mapping

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from xds.metadata import errors as codes
from xds.metadata.content import DocumentContent, check_documents
from xds.metadata.errors import RegistryError
from xds.metadata.model import Association, DocumentEntry, Submission, copied
from xds.metadata.validation import Actor, Profile, check_registered, validate
from xds.metadata.vocabulary import (
    APND, HAS_MEMBER, RPLC, SIGNS, STATUS_APPROVED, STATUS_DEPRECATED, XFRM, XFRM_RPLC,
)
from xds.registry import rows, tables
from xds.registry.sql import insert_rows, savepoint, select_in

#: Association types whose target is an existing DocumentEntry the new one relates to.
DOCUMENT_RELATIONS = (RPLC, XFRM, APND, XFRM_RPLC, SIGNS)
#: Of those, the ones that deprecate their target.
REPLACING = (RPLC, XFRM_RPLC)


class _Refused(Exception):
    """Leaves the submission's transaction, rolled back, with the errors that refused it."""

    def __init__(self, errors: list[RegistryError]):
        super().__init__(errors)
        self.errors = errors


def register(conn: Any, submission: Submission) -> list[RegistryError]:
    """Register *submission* (ITI-42); the errors, empty when it was stored.

    Warnings may come back with a stored submission: a caller tests
    ``any(e.is_error for e in errors)``.
    """
    return _in_transaction(conn, submission, Profile.REPOSITORY, [], validated=False)


def provide_and_register(conn: Any, submission: Submission,
                         documents: Mapping[str, DocumentContent],
                         repository_unique_id: str) -> list[RegistryError]:
    """Store the documents and register their metadata (ITI-41), or nothing.

    *documents* maps ``xds:Document/@id`` to the received content (an MTOM
    attachment or an inline document: anything with ``size``, ``sha1`` and
    ``read_bytes``). The repository adds hash, size and repositoryUniqueId to
    entries that lack them, after checking the ones the source sent.
    """
    errors = check_documents(submission, documents)
    if any(error.is_error for error in errors):
        return errors
    return errors + _provide(conn, submission, documents, repository_unique_id, validated=False)


def provide_and_register_checked(conn: Any, submission: Submission,
                                 documents: Mapping[str, DocumentContent],
                                 repository_unique_id: str) -> list[RegistryError]:
    """:func:`provide_and_register` for a request the XDS.b endpoint has read, validated
    and checked against its documents already (:class:`xds.server.handler.ProvideAndRegister`
    says so): only what needs the registry is checked here, each request validated once."""
    return _provide(conn, submission, documents, repository_unique_id, validated=True)


def _provide(conn: Any, submission: Submission, documents: Mapping[str, DocumentContent],
             repository_unique_id: str, *, validated: bool) -> list[RegistryError]:
    completed = copied(submission, documents=[
        _completed(entry, documents[entry.entry_uuid], repository_unique_id)
        for entry in submission.documents])
    stored = [_document_row(entry, documents[entry.entry_uuid]) for entry in completed.documents]
    return _in_transaction(conn, completed, Profile.DOCUMENT_SOURCE, stored, validated)


def _transaction(conn: Any) -> Any:
    """A transaction of its own, or a savepoint in the caller's."""
    return savepoint(conn) if conn.in_transaction() else conn.begin()


def _completed(entry: DocumentEntry, content: DocumentContent,
               repository_unique_id: str) -> DocumentEntry:
    return copied(entry, hash=entry.hash or content.sha1, size=entry.size or str(content.size),
                   repository_unique_id=repository_unique_id)


def _document_row(entry: DocumentEntry, content: Any) -> dict:
    return {"unique_id": entry.unique_id, "repository_unique_id": entry.repository_unique_id,
            "mime_type": entry.mime_type, "hash": content.sha1, "size": content.size,
            "content": content.read_bytes()}


def _in_transaction(conn: Any, submission: Submission, profile: Profile,
                    document_rows: list[dict], validated: bool) -> list[RegistryError]:
    if validated and _stored_unasked(conn, submission, document_rows):
        return []
    try:
        with _transaction(conn):  # transaction boundary: one submission, whole or nothing
            warnings = _register(conn, submission, profile, validated)
            insert_rows(conn, tables.documents, document_rows)
            return warnings
    except _Refused as refused:
        return refused.errors
    except (IntegrityError, conn.dialect.loaded_dbapi.IntegrityError) as error:
        # Another submission took one of these uniqueIds between our check and our insert.
        return [RegistryError(codes.DUPLICATE_UNIQUE_ID_IN_REGISTRY,
                              f"a uniqueId of this submission was registered meanwhile: "
                              f"{getattr(error, 'orig', error)}")]


def _stored_unasked(conn: Any, submission: Submission, document_rows: list[dict]) -> bool:
    """Store a validated submission without asking the registry first whether its uniqueIds
    are taken: the tables' unique constraints say so. True when stored; False when a
    constraint refused it (rolled back: the caller checks everything, in order, and answers
    with the precise error) or when it relates to objects the registry must be asked about.

    What the checked path would find otherwise: a uniqueId held (a SubmissionSet's, a
    Folder's, a DocumentEntry's: each column is unique) and association ends outside the
    submission, or document relations (RPLC, XFRM, APND, signs), which are left to it.
    """
    local = {entry.entry_uuid for entry in [*submission.submission_sets, *submission.documents,
                                            *submission.folders, *submission.associations]}
    if any(a.association_type in DOCUMENT_RELATIONS or a.source not in local
           or a.target not in local for a in submission.associations):
        return False
    stored, _ = rows.assign_uuids(submission)
    try:
        with _transaction(conn):  # transaction boundary: one submission, whole or nothing
            _insert(conn, stored)
            insert_rows(conn, tables.documents, document_rows)
        return True
    except (IntegrityError, conn.dialect.loaded_dbapi.IntegrityError):
        return False


def _register(conn: Any, submission: Submission, profile: Profile,
              validated: bool) -> list[RegistryError]:
    """Check what the registry knows (everything, unless *validated* already), then insert."""
    known = _known_package_ids(conn, submission)
    findings = (check_registered(submission, known) if validated else
                validate(submission, actor=Actor.REGISTRY, profile=profile,
                         known_unique_ids=known))
    if any(finding.is_error for finding in findings):
        raise _Refused(findings)
    stored, _ = rows.assign_uuids(submission)
    problems = _duplicate_documents(conn, stored) + _reference_problems(conn, stored)
    if problems:
        raise _Refused(problems)
    _insert(conn, stored)
    _deprecate_replaced(conn, stored.associations)
    return findings


def _known_package_ids(conn: Any, submission: Submission) -> set[str]:
    known = set()
    for table, entries in ((tables.submission_sets, submission.submission_sets),
                           (tables.folders, submission.folders)):
        wanted = [entry.unique_id for entry in entries if entry.unique_id]
        known |= {row["unique_id"] for row in select_in(conn, table, ["unique_id"], "unique_id",
                                                          wanted)}
    return known


def _duplicate_documents(conn: Any, submission: Submission) -> list[RegistryError]:
    """A document uniqueId already registered: with other content, say which differs."""
    entries = {entry.unique_id: entry for entry in submission.documents}
    found = select_in(conn, tables.document_entries, ["unique_id", "hash", "size"], "unique_id",
                      list(entries))
    errors = []
    for row in found:
        entry, unique_id = entries[row["unique_id"]], row["unique_id"]
        if entry.hash and row["hash"] and entry.hash.lower() != row["hash"]:
            code, what = codes.NON_IDENTICAL_HASH, f"with hash {row['hash']}"
        elif entry.size and row["size"] is not None and int(entry.size) != row["size"]:
            code, what = codes.NON_IDENTICAL_SIZE, f"with size {row['size']}"
        else:
            code, what = codes.DUPLICATE_UNIQUE_ID_IN_REGISTRY, "already"
        errors.append(RegistryError(code, f"DocumentEntry uniqueId {unique_id!r} is {what}"
                                          " in the registry", unique_id))
    return errors


def _reference_problems(conn: Any, submission: Submission) -> list[RegistryError]:
    """Association ends outside the submission must exist; related documents must fit."""
    local = {entry.entry_uuid for entry in [*submission.submission_sets, *submission.documents,
                                            *submission.folders, *submission.associations]}
    outside = {end for a in submission.associations for end in (a.source, a.target)} - local
    existing = _existing_objects(conn, outside)
    errors = [RegistryError(codes.UNRESOLVED_REFERENCE,
                            f"association end {end!r} is no object of this submission or of the"
                            " registry", end) for end in sorted(outside - existing.keys())]
    patients = {entry.entry_uuid: entry.patient_id for entry in submission.documents}
    owners = {entry.entry_uuid: entry.patient_id
              for entry in [*submission.submission_sets, *submission.folders]}
    for association in submission.associations:
        if association.association_type in DOCUMENT_RELATIONS:
            errors += _relation_problems(association, patients, existing)
        elif association.association_type == HAS_MEMBER and association.source in owners:
            errors += _member_problems(association, owners[association.source], existing)
    return errors


def _member_problems(association: Association, patient_id: str,
                     existing: dict[str, tuple[str, str, str]]) -> list[RegistryError]:
    """A SubmissionSet or Folder that takes in a registered entry shares its patient."""
    kind, _, patient = existing.get(association.target, ("", "", ""))
    if kind in ("DocumentEntry", "Folder") and patient != patient_id:
        return [RegistryError(codes.PATIENT_ID_DOES_NOT_MATCH,
                              f"HasMember {association.entry_uuid}: the registered {kind}"
                              f" {association.target} is about {patient!r}, not {patient_id!r}",
                              association.entry_uuid)]
    return []


def _relation_problems(association: Association, patients: dict[str, str],
                       existing: dict[str, tuple[str, str, str]]) -> list[RegistryError]:
    target = existing.get(association.target)
    where = association.entry_uuid
    if association.source not in patients:
        return [RegistryError(codes.REGISTRY_METADATA_ERROR,
                              f"{association.association_type} association {where}: its source"
                              f" {association.source!r} is not a DocumentEntry of this submission",
                              where)]
    if target is None:
        return []   # already reported as unresolved
    kind, status, patient = target
    if kind != "DocumentEntry":
        return [RegistryError(codes.REGISTRY_METADATA_ERROR,
                              f"{association.association_type} association {where}: its target"
                              f" {association.target!r} is a {kind}, not a DocumentEntry", where)]
    if status != STATUS_APPROVED:
        return [RegistryError(codes.REGISTRY_DEPRECATED_DOCUMENT_ERROR,
                              f"{association.association_type} association {where}: the target"
                              f" DocumentEntry {association.target} is not Approved ({status})",
                              where)]
    if patient != patients[association.source]:
        return [RegistryError(codes.PATIENT_ID_DOES_NOT_MATCH,
                              f"{association.association_type} association {where}: the target"
                              f" DocumentEntry's patientId {patient!r} differs from the new"
                              f" entry's {patients[association.source]!r}", where)]
    return []


def _existing_objects(conn: Any, uuids: set[str]) -> dict[str, tuple[str, str, str]]:
    """entryUUID -> (kind, status, patientId) for those registry objects that exist."""
    found: dict[str, tuple[str, str, str]] = {}
    if not uuids:
        return found
    wanted = sorted(uuids)
    for kind, table in (("DocumentEntry", tables.document_entries),
                        ("SubmissionSet", tables.submission_sets), ("Folder", tables.folders)):
        query = select(table.c.entry_uuid, table.c.status, table.c.patient_id).where(
            table.c.entry_uuid.in_(wanted))
        found.update({row.entry_uuid: (kind, row.status, row.patient_id)
                      for row in conn.execute(query)})
    table = tables.associations
    query = select(table.c.entry_uuid, table.c.status).where(table.c.entry_uuid.in_(wanted))
    found.update({row.entry_uuid: ("Association", row.status, "") for row in conn.execute(query)})
    return found


def _insert(conn: Any, submission: Submission) -> None:
    batches = (
        (tables.submission_sets, [rows.submission_set_row(s) for s in submission.submission_sets]),
        (tables.document_entries, [rows.document_row(d) for d in submission.documents]),
        (tables.document_values, [v for d in submission.documents
                                  for v in rows.document_value_rows(d)]),
        (tables.folders, [rows.folder_row(f) for f in submission.folders]),
        (tables.associations, [rows.association_row(a) for a in submission.associations]),
    )
    for table, batch in batches:
        insert_rows(conn, table, batch)


def _deprecate_replaced(conn: Any, associations: list[Association]) -> None:
    replaced = [a.target for a in associations if a.association_type in REPLACING]
    if replaced:
        _set_status(conn, replaced, STATUS_DEPRECATED)


def _set_status(conn: Any, entry_uuids: list[str], status: str) -> int:
    table = tables.document_entries
    return conn.execute(update(table).where(table.c.entry_uuid.in_(entry_uuids))
                        .values(status=status)).rowcount


def deprecate_documents(conn: Any, entry_uuids: list[str]) -> int:
    """Deprecate DocumentEntries by entryUUID (an operator's or a Metadata Update's act).

    One transaction; returns how many entries changed status.
    """
    table = tables.document_entries
    with _transaction(conn):  # transaction boundary: the whole deprecation
        return conn.execute(update(table).where(table.c.entry_uuid.in_(entry_uuids))
                            .where(table.c.status == STATUS_APPROVED)
                            .values(status=STATUS_DEPRECATED)).rowcount
