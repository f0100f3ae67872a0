"""
The built-in registry and repository behind the XDS.b endpoints: an
:class:`xds.server.handler.XDSHandler` whose every transaction runs in the
engine store's threads.

The functions of this package (register, provide and register, stored query,
retrieve) are synchronous functions of a SQLAlchemy connection; here each
runs through ``store.read`` (a thread, never the reactor), on a connection
outside any transaction, so that ITI-41 and ITI-42 open and commit their own
(one submission, whole or nothing) before the Deferred fires: the answer is
written after the commit. When the store also has ``write`` (the engine
serves through :class:`xds.registry.threads.RegistryThreads`), ITI-41 and
ITI-42 go there instead: the submissions waiting share one commit, each in a
savepoint of its own, each answered after that commit with its own errors.

A database failure is an answer, not a crash: a uniqueId another submission
took between check and insert is ``XDSDuplicateUniqueIdInRegistry``; a lost
connection, a locked or full database is ``XDSRegistryError`` (ITI-18, ITI-42)
or ``XDSRepositoryError`` (ITI-41, ITI-43) saying what failed and that
nothing was stored. The SOAP layer then answers the client with a
RegistryResponse carrying the code, and the listener keeps serving.

test-case-name: tests.xds.test_registry_handler
"""
from __future__ import annotations

import logging
from typing import Any, Callable

from lxml import etree
from sqlalchemy import exc as sql_errors
from twisted.internet import defer

from xds.metadata import errors as codes
from xds.metadata.errors import RegistryError
from xds.metadata.model import Submission
from xds.metadata.vocabulary import RESPONSE_FAILURE
from xds.registry import query, register, retrieve
from xds.server.handler import ProvideAndRegister, Retrieved, RetrievedDocument
from xds.soap.envelope import SOAPMessage
from xds.soap.response import RegistryResponse, status_for

log = logging.getLogger(__name__)


class StoreRegistryHandler:
    """ITI-41, ITI-42, ITI-18 and ITI-43 answered from the store's ``xds_*`` tables.

    *store* is anything with ``read(function, *args)`` running ``function(conn, *args)``
    in a thread and returning a Deferred (:class:`engine.store.store.Store`); if it has
    ``write(work, *args, failed=...)`` too (:class:`xds.registry.threads.RegistryThreads`),
    submissions go through it, grouped.
    *repository_unique_id* is this repository's OID, given to stored documents and checked
    by ITI-43; *max_results* bounds what one stored query may return.
    """

    def __init__(self, store: Any, repository_unique_id: str, *,
                 max_results: int = query.DEFAULT_MAX_RESULTS):
        self._store = store
        self._write = getattr(store, "write", None)
        self.repository_unique_id = repository_unique_id
        self.max_results = max_results

    # -- ITI-41 and ITI-42 ---------------------------------------------------------------

    def provide_and_register(self, request: ProvideAndRegister) -> defer.Deferred:
        """Store the documents and register their metadata in one transaction."""
        d = self._submit(register.provide_and_register_checked, codes.REPOSITORY_ERROR,
                         "store the documents and their metadata", request.submission,
                         request.documents, self.repository_unique_id)
        d.addCallback(lambda errors: list(request.warnings) + errors)
        return d.addCallback(_response, "ITI-41")

    def register(self, submission: Submission, message: SOAPMessage) -> defer.Deferred:
        """Register *submission*'s metadata (its documents are in another repository)."""
        return self._submit(register.register, codes.REGISTRY_ERROR, "register the submission",
                            submission).addCallback(_response, "ITI-42")

    def _submit(self, work: Callable, code: str, doing: str, *args: Any) -> defer.Deferred:
        """Run *work* as one submission: alone through ``read``, or in a group through
        ``write`` (a group that cannot be stored refuses each of its submissions)."""
        guarded = _guarded(work, code, doing)
        if self._write is None:
            return self._store.read(guarded, *args)
        return self._write(guarded, *args, failed=_refusal(code, doing))

    # -- ITI-18 and ITI-43 ---------------------------------------------------------------

    def stored_query(self, request: etree._Element, message: SOAPMessage) -> defer.Deferred:
        """The AdhocQueryResponse to *request*; a Failure response if the database fails."""
        return self._store.read(self._query, request)

    def _query(self, conn: Any, request: etree._Element) -> etree._Element:
        try:
            return query.stored_query(conn, request, self.max_results)
        except _database_errors(conn) as error:
            return query.adhoc_query_response([], [_database_error(
                conn, codes.REGISTRY_ERROR, "run the stored query", error)])

    def retrieve(self, request: etree._Element, message: SOAPMessage) -> defer.Deferred:
        """The documents *request* names that this repository holds, and errors for others."""
        return self._store.read(self._retrieve, request)

    def _retrieve(self, conn: Any, request: etree._Element) -> Retrieved:
        try:
            result = retrieve.retrieve_documents(conn, request, self.repository_unique_id)
        except _database_errors(conn) as error:
            failed = _database_error(conn, codes.REPOSITORY_ERROR, "read the documents", error)
            return Retrieved(RegistryResponse(RESPONSE_FAILURE, [failed]))
        documents = [RetrievedDocument(found.repository_unique_id, found.document_unique_id,
                                       found.mime_type, found.source, found.home_community_id)
                     for found in result.documents]
        return Retrieved(RegistryResponse(result.status, list(result.errors)), documents)


def _response(errors: list[RegistryError], transaction: str) -> RegistryResponse:
    """The answer to a submission; a refused one is logged with its first error."""
    response = RegistryResponse(status_for(errors), list(errors))
    if not response.succeeded:
        first = next(error for error in errors if error.is_error)
        log.info("shared record: %s refused (%d error(s)), first %s: %s", transaction,
                 len(errors), first.error_code, first.code_context)
    return response


def _guarded(work: Callable, code: str, doing: str) -> Callable:
    """*work* whose database failures become the errors of a refused submission."""
    refused = _refusal(code, doing)

    def run(conn: Any, *args: Any) -> list[RegistryError]:
        try:
            return work(conn, *args)
        except Exception as error:
            return refused(conn, error)
    return run


def _refusal(code: str, doing: str) -> Callable[[Any, BaseException], list[RegistryError]]:
    """``refused(conn, error)``: the errors of a submission the database failed (*conn*
    None when no connection could be had); any other error is raised again."""
    def refused(conn: Any, error: BaseException) -> list[RegistryError]:
        dbapi = None if conn is None else conn.dialect.loaded_dbapi
        if isinstance(error, (sql_errors.IntegrityError, *_integrity(dbapi))):
            # register.py turns a uniqueId taken meanwhile into this already; any other
            # constraint the tables hold is a uniqueId too (unique or primary key).
            return [RegistryError(codes.DUPLICATE_UNIQUE_ID_IN_REGISTRY,
                                  f"could not {doing}: a uniqueId of this submission is in the"
                                  f" registry already ({_cause(error)}); nothing was stored")]
        if isinstance(error, (sql_errors.DBAPIError, *_errors(dbapi))):
            return [_database_error(conn, code, doing, error, writing=True)]
        raise error
    return refused


def _integrity(dbapi: Any) -> tuple[type, ...]:
    return () if dbapi is None else (dbapi.IntegrityError,)


def _errors(dbapi: Any) -> tuple[type, ...]:
    return () if dbapi is None else (dbapi.Error,)


def _database_errors(conn: Any) -> tuple[type, ...]:
    """What a failing database raises: SQLAlchemy's errors, and the driver's own from the
    statements xds.registry runs on the raw cursor (engine.store.rawsql)."""
    return sql_errors.DBAPIError, conn.dialect.loaded_dbapi.Error


def _lost(conn: Any, error: Exception) -> bool:
    """Whether *error* lost the connection (SQLAlchemy knows; else ask the driver's)."""
    if getattr(error, "connection_invalidated", False):
        return True
    if conn is None:
        return False
    try:
        return bool(getattr(conn.connection.dbapi_connection, "closed", False))
    except Exception:
        return True


def _database_error(conn: Any, code: str, doing: str, error: Exception,
                    writing: bool = False) -> RegistryError:
    """The error a client gets when the database failed; the log gets the whole story."""
    log.error("shared record: could not %s: %s", doing, error)
    lost = " (connection to the database lost)" if _lost(conn, error) else ""
    stored = "nothing was stored; " if writing else ""
    return RegistryError(code, f"the shared record's database could not {doing}{lost}:"
                               f" {_cause(error)}; {stored}try again later")


def _cause(error: Exception) -> str:
    """The driver's first line, without SQLAlchemy's SQL and parameters."""
    text = str(getattr(error, "orig", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__
