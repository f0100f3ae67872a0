"""The built-in registry as an XDSHandler (xds/registry/handler.py), on SQLite and PostgreSQL:
ITI-41/42/18/43 through the Deferred interface the endpoints call, and database failures (a
uniqueId taken meanwhile, a lost connection, a locked database) answered with the standard
error codes instead of failing the request."""
from __future__ import annotations

import hashlib
import inspect
from dataclasses import replace

import psycopg
import pytest
from sqlalchemy import create_engine, event, func, insert, select
from twisted.internet import defer

from engine.store import migrate
from engine.store.store import make_engine
from tests.dbs import PG_ADMIN_DSN, database
from tests.xds import builders
from tests.xds.registry_support import (
    PNR_SAMPLES, REPOSITORY, adhoc_query, fixed, pnr_sample, sample_body,
)
from tests.xds.standards import assert_valid
from tests.xds.test_registry_query import FIND_DOCUMENTS
from tests.xds.test_registry_retrieve import retrieve_request
from xds.metadata import errors as codes
from xds.metadata.reading import read_submission
from xds.metadata.vocabulary import (
    RESPONSE_FAILURE, RESPONSE_PARTIAL_SUCCESS, RESPONSE_SUCCESS,
)
from xds.namespaces import rim
from xds.registry import tables
from xds.registry.grouped import GroupCommitter, Queued
from xds.registry.handler import StoreRegistryHandler
from xds.server.handler import ProvideAndRegister, XDSHandler
from xds.soap.response import read_registry_response

class ConnectionStore:
    """The part of engine.store.store.Store the handler uses, on one given connection (or a
    new one from *engine* per call), run at once: the Deferred has fired when it returns."""

    def __init__(self, engine=None, conn=None):
        self.engine, self.conn, self.calls = engine, conn, 0

    def read(self, query, *args):
        self.calls += 1
        if self.conn is not None:
            return defer.maybeDeferred(query, self.conn, *args)
        with self.engine.connect() as conn:
            return defer.maybeDeferred(query, conn, *args)


class GroupStore(ConnectionStore):
    """ConnectionStore with ``write`` too, through a real GroupCommitter (the handler then
    submits as the served engine does, xds.registry.threads); its Deferred has fired when
    it returns (the Future is waited for)."""

    def __init__(self, engine):
        super().__init__(engine)
        self.committer = GroupCommitter(engine)

    def write(self, work, *args, failed=None):
        future = self.committer.queue(Queued(work, args, failed))
        try:
            return defer.succeed(future.result(timeout=60))
        except Exception as error:
            return defer.fail(error)

    def stop(self):
        self.committer.stop(timeout=60)


def result(d: defer.Deferred):
    """The result of a Deferred that has fired (failing the test with its failure)."""
    outcome = []
    d.addBoth(outcome.append)
    assert outcome, "the Deferred has not fired"
    if isinstance(outcome[0], defer.Failure):
        outcome[0].raiseException()
    return outcome[0]


def provide_request(relative=PNR_SAMPLES[1]) -> ProvideAndRegister:
    submission, documents = pnr_sample(relative)
    return ProvideAndRegister(fixed(submission), documents, message=None)


def codes_of(response) -> list[str]:
    return [error.error_code for error in response.errors]


def test_handler_matches_the_protocol():
    """If XDSHandler's methods change, then the built-in registry must follow."""
    for name, method in inspect.getmembers(XDSHandler, inspect.isfunction):
        if not name.startswith("_"):
            ours = getattr(StoreRegistryHandler, name)
            assert list(inspect.signature(ours).parameters) == \
                list(inspect.signature(method).parameters), name


def test_provide_query_retrieve_through_the_handler(registry_engine):
    """If a transaction ran on another connection than the store gave, or its answer were
    built wrong, then the sample would not be found and retrieved byte for byte."""
    store = ConnectionStore(registry_engine)
    handler = StoreRegistryHandler(store, REPOSITORY)
    request = provide_request()
    data = request.documents["Document01"].read_bytes()
    response = result(handler.provide_and_register(request))
    assert (response.status, response.errors) == (RESPONSE_SUCCESS, [])
    patient = request.submission.documents[0].patient_id
    answer = result(handler.stored_query(adhoc_query(FIND_DOCUMENTS, {
        "$XDSDocumentEntryPatientId": patient,
        "$XDSDocumentEntryStatus": ["urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"]}),
        None))
    assert_valid("query", answer)
    found = answer.find(rim("RegistryObjectList"))
    assert [child.tag for child in found] == [rim("ExtrinsicObject")]
    unique_id = request.submission.documents[0].unique_id
    retrieved = result(handler.retrieve(retrieve_request((REPOSITORY, unique_id),
                                                         (REPOSITORY, "1.2.3.404")), None))
    assert retrieved.response.status == RESPONSE_PARTIAL_SUCCESS
    assert codes_of(retrieved.response) == ["XDSDocumentUniqueIdError"]
    [document] = retrieved.documents
    assert (document.document_unique_id, document.repository_unique_id) == (unique_id,
                                                                           REPOSITORY)
    assert hashlib.sha1(document.source).hexdigest() == hashlib.sha1(data).hexdigest()
    assert store.calls == 3


def test_same_submission_twice_is_a_duplicate(registry_engine, caplog):
    """If the second ITI-41 of the same uniqueIds were stored, then no duplicate error; the
    refusal is logged for the operator with its first error."""
    handler = StoreRegistryHandler(ConnectionStore(registry_engine), REPOSITORY)
    assert result(handler.provide_and_register(provide_request())).status == RESPONSE_SUCCESS
    caplog.set_level("INFO", logger="xds.registry.handler")
    again = result(handler.provide_and_register(provide_request()))
    assert again.status == RESPONSE_FAILURE
    assert set(codes_of(again)) == {codes.DUPLICATE_UNIQUE_ID_IN_REGISTRY}
    assert "shared record: ITI-41 refused (1 error(s)), first XDSDuplicateUniqueIdInRegistry: " \
        in caplog.text


def test_register_an_entry_of_another_repository(registry_engine):
    """If ITI-42 were not registered in a transaction of its own, then the entry would not
    be there for the next connection."""
    submission = fixed(read_submission(sample_body(
        "xds/examples/ihe/RegisterDocumentSet-bRequest_SOAP.xml")))
    submission.documents[0] = replace(submission.documents[0], hash="a" * 40, size="10",
                                      repository_unique_id="1.2.250.1.999.8")
    handler = StoreRegistryHandler(ConnectionStore(registry_engine), REPOSITORY)
    response = result(handler.register(submission, None))
    assert (response.status, response.errors) == (RESPONSE_SUCCESS, [])
    with registry_engine.connect() as conn:
        table = tables.document_entries
        assert conn.execute(select(table.c.repository_unique_id)).scalar_one() == \
            "1.2.250.1.999.8"


def test_unique_violation_in_the_repository_is_a_duplicate(registry_engine):
    """If the unique constraint's IntegrityError escaped, then the request would fail with a
    Receiver fault instead of XDSDuplicateUniqueIdInRegistry, and metadata might be kept."""
    request = provide_request()
    unique_id = request.submission.documents[0].unique_id
    with registry_engine.begin() as conn:  # bytes stored under that uniqueId, no metadata
        conn.execute(insert(tables.documents).values(
            unique_id=unique_id, repository_unique_id=REPOSITORY, mime_type="text/plain",
            hash="0" * 40, size=1, content=b"x"))
    handler = StoreRegistryHandler(ConnectionStore(registry_engine), REPOSITORY)
    response = result(handler.provide_and_register(request))
    assert response.status == RESPONSE_FAILURE
    assert codes_of(response) == [codes.DUPLICATE_UNIQUE_ID_IN_REGISTRY]
    assert "registered meanwhile" in response.errors[0].code_context
    with registry_engine.connect() as conn:
        counted = conn.execute(select(func.count()).select_from(tables.document_entries))
        assert counted.scalar() == 0


def migrated(backend: str, tmp_path):
    """A migrated database of one backend (for the failures only one of them has)."""
    with database(backend, tmp_path) as url:
        engine = make_engine(url)
        migrate.ensure_current(engine)
        yield engine
        engine.dispose()


@pytest.fixture
def lost_connection(tmp_path):
    """A connection whose PostgreSQL server process was terminated."""
    for engine in migrated("postgresql", tmp_path):
        with engine.connect() as conn:
            pid = conn.exec_driver_sql("select pg_backend_pid()").scalar()
            conn.commit()
            with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
                admin.execute("select pg_terminate_backend(%s)", (pid,))
            yield conn


def test_lost_connection_refuses_the_submission(lost_connection):
    """If OperationalError escaped, then the client would get a bare Receiver fault."""
    handler = StoreRegistryHandler(ConnectionStore(conn=lost_connection), REPOSITORY)
    response = result(handler.provide_and_register(provide_request()))
    assert response.status == RESPONSE_FAILURE
    assert codes_of(response) == [codes.REPOSITORY_ERROR]
    text = response.errors[0].code_context
    assert "store the documents" in text and "nothing was stored" in text
    assert "connection to the database lost" in text


def test_lost_connection_fails_query_and_retrieve_with_their_codes(lost_connection):
    """If a read's database failure were not an answer, then no valid Failure response."""
    handler = StoreRegistryHandler(ConnectionStore(conn=lost_connection), REPOSITORY)
    answer = result(handler.stored_query(adhoc_query(FIND_DOCUMENTS, {
        "$XDSDocumentEntryPatientId": builders.PATIENT,
        "$XDSDocumentEntryStatus": ["urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"]}),
        None))
    assert_valid("query", answer)
    read = read_registry_response(answer)
    assert (read.status, codes_of(read)) == (RESPONSE_FAILURE, [codes.REGISTRY_ERROR])
    assert "run the stored query" in read.errors[0].code_context


def test_lost_connection_fails_retrieve(lost_connection):
    """If the retrieve's database failure escaped, then no XDSRepositoryError."""
    handler = StoreRegistryHandler(ConnectionStore(conn=lost_connection), REPOSITORY)
    retrieved = result(handler.retrieve(retrieve_request((REPOSITORY, "1.2.3")), None))
    assert retrieved.response.status == RESPONSE_FAILURE
    assert codes_of(retrieved.response) == [codes.REPOSITORY_ERROR]
    assert retrieved.documents == []


@pytest.fixture
def sqlite_engine(tmp_path):
    yield from migrated("sqlite", tmp_path)


def test_locked_sqlite_database_refuses_the_submission(sqlite_engine):
    """If SQLite's 'database is locked' escaped, then the client would get a bare fault;
    with it answered, nothing is half-stored and the next try succeeds."""
    registry_engine = sqlite_engine
    impatient = create_engine(registry_engine.url, connect_args={"timeout": 0.2})
    event.listen(impatient, "connect",
                 lambda dbapi, _: dbapi.execute("PRAGMA busy_timeout=200"))
    holder = registry_engine.raw_connection()
    try:
        holder.driver_connection.execute("BEGIN IMMEDIATE")
        handler = StoreRegistryHandler(ConnectionStore(impatient), REPOSITORY)
        response = result(handler.provide_and_register(provide_request()))
        assert response.status == RESPONSE_FAILURE
        assert codes_of(response) == [codes.REPOSITORY_ERROR]
        assert "database is locked" in response.errors[0].code_context
    finally:
        holder.driver_connection.rollback()
        holder.close()
    response = result(handler.provide_and_register(provide_request()))
    assert response.status == RESPONSE_SUCCESS
    impatient.dispose()


def test_grouped_submissions_keep_their_answers(registry_engine):
    """If the handler's grouped path lost a submission's own errors, then the duplicate
    would be answered as stored (or the first refused); reads do not go to the writer."""
    store = GroupStore(registry_engine)
    try:
        handler = StoreRegistryHandler(store, REPOSITORY)
        first = result(handler.provide_and_register(provide_request()))
        again = result(handler.provide_and_register(provide_request()))
    finally:
        store.stop()
    assert (first.status, first.errors) == (RESPONSE_SUCCESS, [])
    assert (again.status, set(codes_of(again))) == (RESPONSE_FAILURE,
                                                    {codes.DUPLICATE_UNIQUE_ID_IN_REGISTRY})
    assert store.committer.groups == 2 and store.calls == 0
    with registry_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(
            tables.document_entries)).scalar() == 1


def test_a_group_that_cannot_be_stored_refuses_each_with_its_code(tmp_path):
    """If a group's failure escaped the handler, then the client would get a bare fault:
    ITI-41 gets XDSRepositoryError, ITI-42 XDSRegistryError, both saying nothing was
    stored (here the database's path is a directory)."""
    store = GroupStore(create_engine(f"sqlite:///{tmp_path}"))
    try:
        handler = StoreRegistryHandler(store, REPOSITORY)
        provided = result(handler.provide_and_register(provide_request()))
        submission = fixed(read_submission(sample_body(
            "xds/examples/ihe/RegisterDocumentSet-bRequest_SOAP.xml")))
        registered = result(handler.register(submission, None))
    finally:
        store.stop()
    for response, code, doing in ((provided, codes.REPOSITORY_ERROR, "store the documents"),
                                  (registered, codes.REGISTRY_ERROR, "register")):
        assert response.status == RESPONSE_FAILURE
        assert codes_of(response) == [code]
        text = response.errors[0].code_context
        assert doing in text and "nothing was stored" in text, text


def test_lost_connection_in_a_group_refuses_the_submission(tmp_path):
    """If the group's connection was lost (its server process terminated while it waited in
    the pool), then the submission is refused saying so, and the next group is stored."""
    for engine in migrated("postgresql", tmp_path):
        impatient = create_engine(engine.url, pool_size=1, max_overflow=0)
        with impatient.connect() as conn:
            pid = conn.exec_driver_sql("select pg_backend_pid()").scalar()
            conn.commit()
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
            admin.execute("select pg_terminate_backend(%s)", (pid,))
        store = GroupStore(impatient)
        try:
            handler = StoreRegistryHandler(store, REPOSITORY)
            lost = result(handler.provide_and_register(provide_request()))
            again = result(handler.provide_and_register(provide_request()))
        finally:
            store.stop()
            impatient.dispose()
        assert (lost.status, codes_of(lost)) == (RESPONSE_FAILURE, [codes.REPOSITORY_ERROR])
        text = lost.errors[0].code_context
        assert "connection to the database lost" in text and "nothing was stored" in text, text
        assert (again.status, again.errors) == (RESPONSE_SUCCESS, [])
