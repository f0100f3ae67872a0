"""
An :class:`xds.server.handler.XDSHandler` over the built-in registry/repository
(xds/registry) on a real store: each transaction runs in a thread, in a transaction of its
own, as the served registry will. For the tests of clients (``aiguillage xds``) over real
HTTP; ``test_store_handler_matches_the_protocol`` checks it against the Protocol.
"""
from __future__ import annotations

from typing import Any

from twisted.internet import threads

from xds.registry import query, register
from xds.registry.retrieve import retrieve_documents
from xds.server.handler import ProvideAndRegister, Retrieved, RetrievedDocument
from xds.soap.response import RegistryResponse, status_for

REPOSITORY_UNIQUE_ID = "1.2.250.1.999.7.1"


class StoreXDSHandler:
    """Answers ITI-41, ITI-42, ITI-18 and ITI-43 from the registry tables of ``engine``."""

    def __init__(self, engine: Any, repository_unique_id: str = REPOSITORY_UNIQUE_ID):
        self.engine = engine
        self.repository_unique_id = repository_unique_id

    def provide_and_register(self, request: ProvideAndRegister):
        return threads.deferToThread(self._provide, request)

    def _provide(self, request: ProvideAndRegister) -> RegistryResponse:
        with self.engine.connect() as conn:
            errors = register.provide_and_register(conn, request.submission, request.documents,
                                                   self.repository_unique_id)
            conn.commit()
        return RegistryResponse(status_for(errors), errors)

    def register(self, submission, message):
        def run() -> RegistryResponse:
            with self.engine.connect() as conn:
                errors = register.register(conn, submission)
                conn.commit()
            return RegistryResponse(status_for(errors), errors)

        return threads.deferToThread(run)

    def stored_query(self, request, message):
        def run():
            with self.engine.connect() as conn:
                return query.stored_query(conn, request)

        return threads.deferToThread(run)

    def retrieve(self, request, message):
        def run() -> Retrieved:
            with self.engine.connect() as conn:
                result = retrieve_documents(conn, request, self.repository_unique_id)
            return Retrieved(RegistryResponse(result.status, result.errors), [
                RetrievedDocument(d.repository_unique_id, d.document_unique_id, d.mime_type,
                                  d.source, d.home_community_id) for d in result.documents])

        return threads.deferToThread(run)
